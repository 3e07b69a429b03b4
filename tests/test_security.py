"""Hostile input and secrets: header injection is refused on every path that writes to the socket,
the password never shows in logs, reprs, exceptions or events, and an oversized frame stays bounded."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from asterisk_ami import (
    ActionError,
    AsteriskAmi,
    FrameTooLargeError,
    HeaderInjectionError,
    InvalidMessageError,
)
from asterisk_ami.testing import FakeAsterisk

from .cli_helpers import conn_args, run_cli
from .helpers import SOCKET_EVENTS, MakeClient, Recorder, rss_bytes

SECRET = "Pw-9f8e7d6c5b4a"
WRONG = "Wrong-Pw-1a2b3c4d"
BAD_CHARS = ("\r", "\n", "\x00")
# what each bad character would inject if it were written: a whole second action
PAYLOADS = [f"x{bad}Action: Injected" for bad in BAD_CHARS] + ["x\r\n\r\nAction: Injected\r\nActionID: inj"]


def injected(fake: FakeAsterisk) -> list[dict[str, Any]]:
    """Actions the fake received that carry the injected text anywhere."""
    return [a for a in fake.actions if "Injected" in repr(a) or a.get("action") == "Injected"]


def flush(ami: AsteriskAmi, fake: FakeAsterisk) -> None:
    """A Ping answered after the refused writes: anything written before it has reached the fake."""
    assert ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"


# -- header injection ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS, ids=["CR", "LF", "NUL", "CRLFCRLF"])
def test_injection_refused_on_every_write_path(fake: FakeAsterisk, make_client: MakeClient, payload: str) -> None:
    ami = make_client()
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    count = len(fake.actions)
    attempts: list[Callable[[], object]] = [
        lambda: ami.send({"Action": "UserEvent", "UserEvent": payload}),  # value
        lambda: ami.send({"Action": "UserEvent", payload.replace(":", "-"): "v"}),  # key
        lambda: ami.send({"Action": payload}),
        lambda: ami.send({"Action": "UserEvent", "Variable": ["A=1", payload]}),  # list value
        lambda: ami.send({"Action": "UserEvent", "Variable": ("A=1", f"B={payload}")}),  # tuple value
        lambda: ami.send({"Action": "Ping", "ActionID": payload}),
        lambda: ami.action({"Action": "UserEvent", "UserEvent": payload}),
        lambda: ami.action({"Action": "UserEvent", "Variable": [payload]}),
        lambda: ami.request({"Action": "UserEvent", "UserEvent": payload}, timeout=5),
        lambda: ami.request({"Action": "UserEvent", payload.replace(":", "-"): "v"}, timeout=5),
    ]
    for attempt in attempts:
        with pytest.raises(HeaderInjectionError) as info:
            attempt()
        if "header name" not in str(info.value):
            assert "Injected" not in str(info.value)  # a value is never echoed (a key is named, by design)
    flush(ami, fake)
    assert injected(fake) == []
    assert len(fake.actions) == count + 1  # only the flushing Ping
    assert rec.count("ami_socket_close") == 0 and ami.stats["pending_actions"] == 0


def test_values_that_would_go_out_as_python_reprs_never_reach_the_server(
    fake: FakeAsterisk, make_client: MakeClient
) -> None:
    ami = make_client()
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    count = len(fake.actions)
    attempts: list[Callable[[], object]] = [
        lambda: ami.send({"Action": "Setvar", "Variable": "HOLD", "Value": b"Secret-1"}),
        lambda: ami.send({"Action": "Originate", "Variable": {"HOLD": "Secret-1"}}),
        lambda: ami.send({"Action": "Originate", "Variable": ["A=1", {"Secret-1"}]}),
        lambda: ami.send({"Action": "Ping", 5: "Secret-1"}),  # type: ignore[dict-item]
        lambda: ami.action({"Action": "Originate", "Codecs": object()}),
        lambda: ami.request({"Action": "Setvar", "Value": bytearray(b"Secret-1")}, timeout=5),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidMessageError) as info:
            attempt()
        assert "Secret-1" not in str(info.value)
    flush(ami, fake)
    assert len(fake.actions) == count + 1  # only the flushing Ping
    assert ami.stats["pending_actions"] == 0


@pytest.mark.parametrize("bad", BAD_CHARS, ids=["CR", "LF", "NUL"])
@pytest.mark.parametrize("option", ["username", "password", "events"])
def test_injection_in_login_options_never_reaches_the_server(
    fake: FakeAsterisk, make_client: MakeClient, caplog: pytest.LogCaptureFixture, option: str, bad: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="asterisk_ami")
    value = {"username": "admin", "password": SECRET, "events": "call"}[option] + bad + "Action: Injected"
    # refused at construction, naming the option but never echoing its value (it may be the secret)
    with pytest.raises(HeaderInjectionError) as info:
        make_client(**{option: value}, reconnect=True, reconnect_after=20)
    assert option in str(info.value)
    assert "Injected" not in str(info.value) and SECRET not in str(info.value)
    assert injected(fake) == []
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "headers",
    [
        ["UserEvent=x\rAction: Injected"],
        ["UserEvent=x\nAction: Injected"],
        ["Variable=A=1", "Variable=x\r\n\r\nAction: Injected"],
    ],
    ids=["CR", "LF", "repeated-key"],
)
def test_cli_action_injection_is_a_usage_error(fake: FakeAsterisk, headers: list[str]) -> None:
    done = run_cli("action", *conn_args(fake.host, fake.port, "admin"), "UserEvent", *headers, secret=SECRET)
    assert done.code == 2, (done.code, done.err)
    assert "Traceback" not in done.err and SECRET not in done.err + done.out
    assert injected(fake) == []
    assert not any(a.get("action") == "UserEvent" for a in fake.actions)


def test_cli_action_name_injection_is_a_usage_error(fake: FakeAsterisk) -> None:
    done = run_cli("action", *conn_args(fake.host, fake.port, "admin"), "Ping\r\n\r\nAction: Injected", secret=SECRET)
    assert done.code == 2, (done.code, done.err)
    assert injected(fake) == []


# -- secrets ---------------------------------------------------------------------------------------------------


class EverythingSeen:
    """Every argument of every event a client emitted, as text."""

    def __init__(self, ami: AsteriskAmi) -> None:
        self.texts: list[str] = []
        for name in (*SOCKET_EVENTS, "ami_data", "error"):
            ami.on(name, self._make(name))

    def _make(self, name: str) -> Callable[..., None]:
        def handler(*args: Any) -> None:
            self.texts.append(f"{name} {args!s} {args!r}")

        return handler


def test_password_never_in_logs_reprs_exceptions_or_events(
    fake: FakeAsterisk, make_client: MakeClient, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    texts: list[str] = []
    exceptions: list[BaseException] = []
    caplog.set_level(logging.DEBUG)  # every logger, the fake's too
    fake.respond("Fails", {"Response": "Error", "Message": "nope"})
    for auth in ("plain", "md5"):
        # good login, an error answer, an injection refused, a dropped link, a reconnect
        ami = make_client(debug=True, auth=auth, reconnect=True, reconnect_after=20, max_frame_bytes=4096)
        seen = EverythingSeen(ami)
        rec = Recorder(ami)
        ami.connect()
        rec.wait_for("ami_login")
        texts += [repr(ami), repr(ami.options), str(ami.options)]
        with pytest.raises(ActionError) as action_error:
            ami.request({"Action": "Fails", "Note": "x"}, timeout=5)
        exceptions.append(action_error.value)
        with pytest.raises(HeaderInjectionError) as inj:
            ami.send({"Action": "Login", "Username": "admin", "Secret": SECRET + "\r\n"})
        exceptions.append(inj.value)
        fake.drop(rst=True)
        rec.wait_for("ami_login", 2)
        fake.push_raw(b"Event: Huge\r\nData: " + b"x" * 10_000)  # FrameTooLargeError, then reconnect
        rec.wait_for("ami_login", 3)
        exceptions += [args[0] for args in rec.args("ami_socket_error")]
        ami.disconnect()
        texts += [repr(ami), *seen.texts]
    # a refused login, plain and md5
    for auth in ("plain", "md5"):
        ami = make_client(debug=True, auth=auth, password=WRONG, reconnect=True, reconnect_after=20)
        seen = EverythingSeen(ami)
        rec = Recorder(ami)
        ami.connect()
        rec.wait_for("ami_socket_close")
        exceptions += [args[0] for args in rec.args("ami_socket_error")]
        texts += [repr(ami), repr(ami.options), *seen.texts]
    texts += [f"{e!s} {e!r} {e.args!r} {getattr(e, 'frame', '')!r}" for e in exceptions]
    texts += [caplog.text, *(r.getMessage() for r in caplog.records), capfd.readouterr().err]
    assert any("send" in t and "Login" in t for t in texts), "debug logging did not log the login"
    assert any("***" in t for t in texts), "the login was not logged with its secret redacted"
    for secret in (SECRET, WRONG):
        leaks = [t for t in texts if secret in t]
        assert leaks == [], leaks[:3]
    assert any(isinstance(e, FrameTooLargeError) for e in exceptions)


# -- oversized frames -------------------------------------------------------------------------------------------


def test_oversized_frame_is_typed_error_and_memory_stays_bounded(fake: FakeAsterisk, make_client: MakeClient) -> None:
    limit = 64 * 1024
    ami = make_client(max_frame_bytes=limit)
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    (session,) = fake.wait_for_clients(1)
    sent = [0]
    chunk = b"x" * (1 << 20)

    def push() -> None:  # a 64 MB header line that never ends
        if not session.send_raw(b"Event: Endless\r\nData: "):
            return
        for _ in range(64):
            if not session.send_raw(chunk):
                return
            sent[0] += len(chunk)

    rss_before = rss_bytes()
    pusher = threading.Thread(target=push, name="test-pusher", daemon=True)
    pusher.start()
    rec.wait_for("ami_socket_close", timeout=10)
    growth = rss_bytes() - rss_before
    pusher.join(10)
    assert not pusher.is_alive()
    errors = [args[0] for args in rec.args("ami_socket_error")]
    assert len(errors) == 1 and isinstance(errors[0], FrameTooLargeError), errors
    assert rec.args("ami_socket_close") == [(True,)]
    assert sent[0] < 64 * len(chunk), "the client read the whole endless frame instead of stopping"
    assert not any(f.get("event") == "Endless" for f in rec.frames)
    assert growth < 16_000_000, f"RSS grew {growth / 1e6:.1f} MB for a frame limited to {limit} bytes"
    assert ami.state == "disconnected"


def test_a_secret_the_encoding_cannot_write_is_refused_without_quoting_it() -> None:
    with pytest.raises(InvalidMessageError) as info:
        AsteriskAmi(username="admin", password="s\u00e9cret-\u00e5", ami_encoding="ascii")
    assert "password" in str(info.value) and "\u00e9" not in str(info.value) and "\u00e5" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
