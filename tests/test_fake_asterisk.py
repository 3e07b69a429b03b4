"""``asterisk_ami.testing.FakeAsterisk`` and the ``fake_asterisk`` pytest fixture.

Driven two ways: raw sockets (byte-exact checks against what Asterisk 22 writes, using
tests/data/asterisk22-session.bin as the reference) and the real ``AsteriskAmi`` client.
Items named E1..E29 are the edge cases of docs/ami-protocol-notes.md. Every wait has a timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asterisk_ami import ActionError, ActionTimeoutError, AmiProtocol, AsteriskAmi
from asterisk_ami.testing import (
    CommandOutput,
    EventList,
    FakeAsterisk,
    FakeSession,
    encode_frame,
    recorded_frames,
    strings_to_mask,
)

SESSION_BIN = Path(__file__).parent / "data" / "asterisk22-session.bin"
CORPUS = SESSION_BIN.read_bytes()
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
FULLY_BOOTED = re.compile(
    rb"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: \d+\r\nLastReload: \d+\r\nStatus: Fully Booted\r\n\r\n"
)
TIMEOUT = 5.0


def corpus_frames() -> list[bytes]:
    """The corpus split into raw frames (without their terminating empty line), banner removed."""
    body = CORPUS[len(BANNER) :]
    return [f for f in body.split(b"\r\n\r\n") if f]


def corpus_frame(prefix: bytes) -> bytes:
    return next(f for f in corpus_frames() if f.startswith(prefix))


def header_items(frame: bytes) -> list[tuple[str, str]]:
    """The headers of a raw frame as written: (name, value) in order."""
    items = []
    for line in frame.decode().split("\r\n"):
        name, _, value = line.partition(": ")
        items.append((name, value))
    return items


class Raw:
    """A raw AMI connection: bytes out, bytes in, with timeouts."""

    def __init__(self, fake: FakeAsterisk, banner: bytes | None = BANNER) -> None:
        self.sock = socket.create_connection((fake.host, fake.port), timeout=TIMEOUT)
        self.buf = b""
        if banner is not None:
            assert self.read_exact(len(banner)) == banner

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def read_exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            assert self._fill(), f"EOF after {self.buf!r}"
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def frame(self) -> bytes:
        """The next frame, with its terminating empty line."""
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(), f"EOF after {self.buf!r}"
        end = self.buf.index(b"\r\n\r\n") + 4
        data, self.buf = self.buf[:end], self.buf[end:]
        return data

    def action(self, data: bytes) -> bytes:
        self.send(data)
        return self.frame()

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        data, self.buf = self.buf, b""
        return data

    def login(self, username: str = "admin", secret: str = "secret", events: str = "on") -> bytes:
        login = f"Action: Login\r\nActionID: l1\r\nUsername: {username}\r\nSecret: {secret}\r\nEvents: {events}\r\n"
        self.send(login.encode() + b"\r\n")
        answer = self.frame()
        assert answer == b"Response: Success\r\nActionID: l1\r\nMessage: Authentication accepted\r\n\r\n"
        if strings_to_mask(events) & 1:
            assert FULLY_BOOTED.fullmatch(self.frame())
        return answer

    def close(self) -> None:
        self.sock.close()


def events_of(session: FakeSession) -> bool | str:
    return session.events_on  # read afresh (no narrowing from earlier asserts)


@pytest.fixture
def fake() -> Iterator[FakeAsterisk]:
    with FakeAsterisk(accounts={"admin": "secret", "bob": "pw"}) as server:
        yield server


@pytest.fixture
def raw(fake: FakeAsterisk) -> Iterator[Raw]:
    conn = Raw(fake)
    conn.login()
    yield conn
    conn.close()


@contextlib.contextmanager
def client(fake: FakeAsterisk, frames: list[dict[str, Any]] | None = None, **options: Any) -> Iterator[AsteriskAmi]:
    """A logged-in ``AsteriskAmi``; ``frames`` collects every frame it receives."""
    ami = AsteriskAmi(**{**fake.client_options("admin"), **options})
    logged_in = threading.Event()
    ami.on("ami_login", lambda ok, frame: logged_in.set() if ok else None)
    if frames is not None:
        ami.on("ami_data", frames.append)
    ami.connect()
    try:
        assert logged_in.wait(TIMEOUT), "the client did not log in"
        yield ami
    finally:
        ami.disconnect()


# -- banner, login, logoff (E1, E3, E14, E15, E16, E18) ---------------------------------------------------


def test_banner_and_login_are_byte_exact_as_asterisk_22(fake: FakeAsterisk) -> None:
    conn = Raw(fake)
    conn.send(b"Action: Login\r\nActionID: 1\r\nUsername: admin\r\nSecret: secret\r\n\r\n")
    assert conn.frame() == corpus_frame(b"Response: Success\r\nActionID: 1\r\n") + b"\r\n\r\n"
    assert FULLY_BOOTED.fullmatch(conn.frame())
    (session,) = fake.wait_for_clients(1, timeout=TIMEOUT)
    assert session.username == "admin" and session.logged_in and session.events_on is True
    assert fake.login_count == 1
    conn.close()


def test_custom_banner_and_no_banner() -> None:
    with FakeAsterisk(banner="Asterisk Call Manager/13.0.0") as fake:
        Raw(fake, banner=b"Asterisk Call Manager/13.0.0\r\n").close()
    with FakeAsterisk(banner=None) as fake:
        conn = Raw(fake, banner=None)
        conn.send(b"Action: Login\r\nUsername: admin\r\nSecret: secret\r\nEvents: off\r\n\r\n")
        assert conn.frame() == b"Response: Success\r\nMessage: Authentication accepted\r\n\r\n"  # no ActionID sent
        conn.close()


def test_line_end_lf_plays_a_bare_lf_server_but_sends_raw_bytes_as_given() -> None:
    with FakeAsterisk(line_end="\n", send_fully_booted=False) as fake:
        fake.respond("Bytes", b"Response: Success\r\nActionID: b\r\n\r\n")
        fake.respond("Frame", {"Response": "Success", "X": "1"})
        conn = Raw(fake, banner=b"Asterisk Call Manager/11.0.0\n")
        conn.send(b"Action: Login\r\nActionID: l1\r\nUsername: admin\r\nSecret: secret\r\n\r\n")
        conn.send(b"Action: Frame\r\nActionID: f\r\n\r\nAction: Bytes\r\nActionID: b\r\n\r\n")
        expected = (
            b"Response: Success\nActionID: l1\nMessage: Authentication accepted\n\n"
            b"Response: Success\nActionID: f\nX: 1\n\n"
            b"Response: Success\r\nActionID: b\r\n\r\n"
        )
        assert conn.read_exact(len(expected)) == expected
        fake.push_event("Hangup", Channel="PJSIP/100")
        hangup = b"Event: Hangup\nChannel: PJSIP/100\n\n"
        assert conn.read_exact(len(hangup)) == hangup
        conn.close()
    with pytest.raises(ValueError):
        FakeAsterisk(line_end="\r")


def test_login_with_events_off_or_without_system_gets_no_fully_booted(fake: FakeAsterisk) -> None:
    for events, expected in (("off", False), ("call", "call"), ("system,call", "system,call")):
        conn = Raw(fake)
        conn.login(events=events)  # checks FullyBooted is there exactly when the mask has system
        conn.send(b"Action: Ping\r\nActionID: p\r\n\r\n")
        assert conn.frame().startswith(b"Response: Success\r\nActionID: p\r\nPing: Pong\r\n")
        (session,) = [s for s in fake.sessions if s.logged_in]
        assert session.events_on == expected
        conn.close()
        fake.wait_for(lambda: not fake.sessions, timeout=TIMEOUT)


def test_send_fully_booted_option() -> None:
    with FakeAsterisk(send_fully_booted=False) as fake:
        conn = Raw(fake)
        conn.send(b"Action: Login\r\nActionID: l\r\nUsername: ADMIN\r\nSecret: secret\r\n\r\n")  # user: any case
        assert conn.frame() == b"Response: Success\r\nActionID: l\r\nMessage: Authentication accepted\r\n\r\n"
        conn.send(b"Action: Ping\r\n\r\n")
        assert conn.frame().startswith(b"Response: Success\r\nPing: Pong\r\n")
        conn.close()


@pytest.mark.parametrize(
    "login",
    [
        b"Action: Login\r\nActionID: l1\r\nUsername: admin\r\nSecret: wrong\r\n\r\n",
        b"Action: Login\r\nActionID: l1\r\nUsername: nobody\r\nSecret: secret\r\n\r\n",
        b"Action: Login\r\nActionID: l1\r\nSecret: secret\r\n\r\n",
        b"Action: Login\r\nActionID: l1\r\nUsername: admin\r\nAuthType: MD5\r\nKey: 00\r\n\r\n",  # no challenge
    ],
)
def test_login_failure_answers_then_closes(fake: FakeAsterisk, login: bytes) -> None:
    conn = Raw(fake)
    conn.send(login)
    assert conn.read_to_eof() == b"Response: Error\r\nActionID: l1\r\nMessage: Authentication failed\r\n\r\n"
    fake.wait_for(lambda: not fake.sessions, timeout=TIMEOUT)
    assert fake.login_count == 0


def test_auth_fail_delay_and_login_delay() -> None:
    with FakeAsterisk(auth_fail_delay=0.2, login_delay=0.1) as fake:
        conn = Raw(fake)
        start = time.monotonic()
        conn.send(b"Action: Login\r\nUsername: admin\r\nSecret: bad\r\n\r\n")
        assert conn.read_to_eof() == b"Response: Error\r\nMessage: Authentication failed\r\n\r\n"
        assert time.monotonic() - start >= 0.3
        conn = Raw(fake)
        start = time.monotonic()
        conn.login()
        assert time.monotonic() - start >= 0.1
        conn.close()


def test_md5_challenge_and_login(fake: FakeAsterisk) -> None:
    conn = Raw(fake)
    answer = conn.action(b"Action: Challenge\r\nAuthType: MD5\r\nActionID: c1\r\n\r\n")
    match = re.fullmatch(rb"Response: Success\r\nActionID: c1\r\nChallenge: (\d{1,9})\r\n\r\n", answer)
    assert match, answer
    challenge = match.group(1).decode()
    again = conn.action(b"Action: Challenge\r\nAuthType: md5\r\n\r\n")
    assert again == f"Response: Success\r\nChallenge: {challenge}\r\n\r\n".encode()  # kept per session
    assert conn.action(b"Action: Challenge\r\nActionID: c3\r\n\r\n") == (
        b"Response: Error\r\nActionID: c3\r\nMessage: Must specify AuthType\r\n\r\n"
    )
    key = hashlib.md5((challenge + "secret").encode()).hexdigest()
    conn.send(f"Action: Login\r\nActionID: l\r\nAuthType: MD5\r\nUsername: admin\r\nKey: {key}\r\n\r\n".encode())
    assert conn.frame() == b"Response: Success\r\nActionID: l\r\nMessage: Authentication accepted\r\n\r\n"
    conn.close()
    conn = Raw(fake)
    conn.action(b"Action: Challenge\r\nAuthType: MD5\r\n\r\n")
    conn.send(
        f"Action: Login\r\nActionID: l\r\nAuthType: MD5\r\nUsername: admin\r\nKey: {key.upper()}\r\n\r\n".encode()
    )
    assert conn.read_to_eof() == b"Response: Error\r\nActionID: l\r\nMessage: Authentication failed\r\n\r\n"


def test_fixed_challenge_matches_corpus_format() -> None:
    with FakeAsterisk(challenge="157458701") as fake:
        conn = Raw(fake)
        answer = conn.action(b"Action: Challenge\r\nActionID: ch\r\nAuthType: MD5\r\n\r\n")
        assert answer == corpus_frame(b"Response: Success\r\nActionID: ch\r\n") + b"\r\n\r\n"
        conn.close()


def test_client_md5_login(fake: FakeAsterisk) -> None:
    with client(fake, auth="md5") as ami:
        assert ami.request({"Action": "Ping"}, timeout=TIMEOUT)["ping"] == "Pong"
    login = fake.wait_for_action("Login", timeout=TIMEOUT)
    assert login["authtype"] == "MD5" and "secret" not in login


def test_permission_denied_before_login_and_logoff_before_login(fake: FakeAsterisk) -> None:
    conn = Raw(fake)
    for action in (b"Ping", b"Command\r\nCommand: core show version", b"Originate", b"Bogus"):
        assert conn.action(b"Action: " + action + b"\r\nActionID: x\r\n\r\n") == (
            b"Response: Error\r\nActionID: x\r\nMessage: Permission denied\r\n\r\n"
        )
    conn.send(b"Action: Logoff\r\nActionID: bye\r\n\r\n")
    assert conn.read_to_eof() == b"Response: Goodbye\r\nActionID: bye\r\nMessage: Thanks for all the fish.\r\n\r\n"


def test_logoff_says_goodbye_and_closes(fake: FakeAsterisk, raw: Raw) -> None:
    raw.send(b"Action: Logoff\r\nActionID: o\r\n\r\n")
    assert raw.read_to_eof() == b"Response: Goodbye\r\nActionID: o\r\nMessage: Thanks for all the fish.\r\n\r\n"
    fake.wait_for(lambda: not fake.sessions, timeout=TIMEOUT)


def test_second_login_on_a_session_is_acknowledged(raw: Raw) -> None:
    assert raw.action(b"Action: Login\r\nUsername: admin\r\nSecret: secret\r\n\r\n") == (
        b"Response: Success\r\nMessage: Already authenticated\r\n\r\n"
    )


# -- built-in actions (E6, E9, E17, E19) ---------------------------------------------------------------


def test_ping_format_and_action_id_omitted_when_none_sent(raw: Raw) -> None:
    answer = raw.action(b"Action: Ping\r\nActionID: p1\r\n\r\n")
    assert re.fullmatch(rb"Response: Success\r\nActionID: p1\r\nPing: Pong\r\nTimestamp: \d+\.\d{6}\r\n\r\n", answer)
    answer = raw.action(b"Action: Ping\r\n\r\n")
    assert re.fullmatch(rb"Response: Success\r\nPing: Pong\r\nTimestamp: \d+\.\d{6}\r\n\r\n", answer)


def test_header_names_any_case_first_action_id_blanks_skipped_bare_lf(raw: Raw) -> None:
    answer = raw.action(b"aCtIoN: ping\r\nactionid:   a1 \r\nActionID: a2\r\n\r\n")
    assert answer.startswith(b"Response: Success\r\nActionID: a1 \r\nPing: Pong\r\n")
    answer = raw.action(b"Action: Ping\nActionID: lf\n\n")  # E23: LF alone ends lines too
    assert answer.startswith(b"Response: Success\r\nActionID: lf\r\nPing: Pong\r\n")


def test_unknown_action_matches_corpus(raw: Raw) -> None:
    expected = corpus_frame(b"Response: Error\r\nActionID: bog") + b"\r\n\r\n"
    assert raw.action(b"Action: Bogus\r\nActionID: bog\r\n\r\n") == expected
    assert raw.action(b"Action: Foo\r\n\r\n") == (
        b"Response: Error\r\nMessage: Invalid/unknown command: Foo. Use Action: ListCommands to show available "
        b"commands.\r\n\r\n"
    )


def test_missing_action(raw: Raw) -> None:
    assert raw.action(b"Foo: bar\r\nActionID: m\r\n\r\n") == (
        b"Response: Error\r\nActionID: m\r\nMessage: Missing action in request\r\n\r\n"
    )


def test_line_too_long_boundary(fake: FakeAsterisk, raw: Raw) -> None:
    # E21: 1022 bytes + CRLF (1024) pass; 1023 + CRLF does not, and the whole message is not run.
    ok = b"Variable: " + b"x" * (1022 - len(b"Variable: "))
    raw.send(b"Action: Ping\r\nActionID: ok\r\n" + ok + b"\r\n\r\n")
    assert raw.frame().startswith(b"Response: Success\r\nActionID: ok\r\nPing: Pong")
    too_long = ok + b"x"
    raw.send(b"Action: Ping\r\nActionID: long\r\n" + too_long + b"\r\n\r\n")
    assert (
        raw.frame() == b"Response: Error\r\nActionID: long\r\nMessage: Failed to parse message: line too long\r\n\r\n"
    )
    raw.send(b"Action: Ping\r\nActionID: huge\r\nVariable: " + b"y" * 5000 + b"\r\n\r\n")
    assert raw.frame().endswith(b"Message: Failed to parse message: line too long\r\n\r\n")
    assert raw.action(b"Action: Ping\r\nActionID: after\r\n\r\n").startswith(b"Response: Success\r\nActionID: after")
    assert [a["actionid"] for a in fake.actions if a.get("action") == "Ping"] == ["ok", "after"]


def test_too_many_header_lines(raw: Raw) -> None:
    lines = b"".join(b"Variable: v%d=1\r\n" % i for i in range(127))
    raw.send(b"Action: Ping\r\nActionID: t\r\n" + lines + b"\r\n")
    assert raw.frame() == (
        b"Response: Error\r\nActionID: t\r\nMessage: Too many lines in message or allocation failure\r\n\r\n"
    )


def test_events_action(fake: FakeAsterisk, raw: Raw) -> None:
    assert raw.action(b"Action: Events\r\nActionID: e\r\nEventMask: off\r\n\r\n") == (
        b"Response: Success\r\nActionID: e\r\nEvents: Off\r\n\r\n"
    )
    (session,) = fake.sessions
    assert (session.event_mask, session.events_on) == (0, False)
    assert fake.push_event("Hangup", Channel="PJSIP/100-0001") == 0
    assert raw.action(b"Action: Events\r\nEventMask: call,system\r\n\r\n") == b"Response: Success\r\nEvents: On\r\n\r\n"
    assert events_of(session) == "system,call"
    assert raw.action(b"Action: Events\r\nActionID: bad\r\nEventMask:\r\n\r\n") == (
        b"Response: Error\r\nActionID: bad\r\nMessage: Invalid event mask\r\n\r\n"
    )
    assert fake.push_event("Hangup", Privilege="call,all", Channel="c") == 1
    assert raw.frame() == b"Event: Hangup\r\nPrivilege: call,all\r\nChannel: c\r\n\r\n"
    assert fake.push_event("AgentLogin", Privilege="agent,all") == 0
    assert raw.action(b"Action: Events\r\nEventMask: on\r\n\r\n") == b"Response: Success\r\nEvents: On\r\n\r\n"
    assert events_of(session) is True


def test_an_account_is_sent_only_what_its_read_line_allows() -> None:
    with FakeAsterisk(accounts={"admin": "secret", "bob": "pw"}, read={"BOB": "system,agent"}) as fake:
        bob = Raw(fake)
        bob.login("bob", "pw", events="on")
        (session,) = fake.sessions
        assert events_of(session) == "system,agent"  # Events: on, as Asterisk: never more than read
        assert fake.push_event("Hangup", Privilege="call,all", Channel="c") == 0
        assert fake.push_event("QueueMemberStatus", Privilege="agent,all", Queue="q") == 1
        assert bob.frame() == b"Event: QueueMemberStatus\r\nPrivilege: agent,all\r\nQueue: q\r\n\r\n"
        assert bob.action(b"Action: Events\r\nEventMask: call,agent\r\n\r\n") == (
            b"Response: Success\r\nEvents: On\r\n\r\n"
        )
        assert events_of(session) == "agent"
        answer = bob.action(b"Action: Command\r\nActionID: u\r\nCommand: manager show user bob\r\n\r\n")
        assert b"Output: " + b"read perm".rjust(18) + b": system,agent\r\n" in answer  # as Asterisk 22 prints it
        assert b"Output: " + b"secret".rjust(18) + b": <Set>\r\n" in answer and b"pw" not in answer
        admin = bob.action(b"Action: Command\r\nCommand: manager show user admin\r\n\r\n")
        assert b"read perm: system,call,log," in admin and b",message,all\r\n" in admin
        nobody = bob.action(b"Action: Command\r\nCommand: manager show user carol\r\n\r\n")
        assert b"Output: There is no manager called carol\r\n" in nobody
        bob.close()


def test_strings_to_mask() -> None:
    assert strings_to_mask("") == -1
    assert strings_to_mask("off") == strings_to_mask("no") == 0
    assert strings_to_mask("on") == strings_to_mask("YES") == 0x7FFFFFFF
    assert strings_to_mask("3") == 3
    assert strings_to_mask("system,call") == 3
    assert strings_to_mask("System") == 0  # Asterisk compares class names case-sensitively


# -- Command output (E13) ----------------------------------------------------------------------------


def test_command_output_byte_exact(fake: FakeAsterisk, raw: Raw) -> None:
    expected = corpus_frame(b"Response: Success\r\nActionID: cmd\r\n") + b"\r\n\r\n"
    lines = [v for k, v in header_items(expected[:-4]) if k == "Output"]
    fake.respond_command("core show channels", "\n".join(lines) + "\n")
    assert raw.action(b"Action: Command\r\nActionID: cmd\r\nCommand: core  show channels\r\n\r\n") == expected


def test_command_formats_and_errors(fake: FakeAsterisk, raw: Raw) -> None:
    fake.respond_command("core show version", "Asterisk 22.0.0 built by x\n\nline: 3\n")
    assert raw.action(b"Action: Command\r\nActionID: 9\r\nCommand: core show version\r\n\r\n") == (
        b"Response: Success\r\nActionID: 9\r\nMessage: Command output follows\r\nOutput: Asterisk 22.0.0 built by x\r\n"
        b"Output: \r\nOutput: line: 3\r\n\r\n"
    )
    fake.respond_command("old", "Asterisk 11.25.3 built by root\n", legacy=True)
    assert raw.action(b"Action: Command\r\nActionID: 9\r\nCommand: old\r\n\r\n") == (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: 9\r\n"
        b"Asterisk 11.25.3 built by root\n--END COMMAND--\r\n\r\n"
    )
    fake.respond_command("old2", "text", legacy=True)
    assert raw.action(b"Action: Command\r\nCommand: old2\r\n\r\n") == (
        b"Response: Follows\r\nPrivilege: Command\r\ntext--END COMMAND--\r\n\r\n"
    )
    assert raw.action(b"Action: Command\r\nActionID: f\r\nCommand: foo\r\n\r\n") == (
        b"Response: Error\r\nActionID: f\r\nMessage: Command output follows\r\n"
        b"Output: No such command 'foo' (type 'core show help foo' for other possible commands)\r\n\r\n"
    )
    assert raw.action(b"Action: Command\r\nActionID: n\r\n\r\n") == (
        b"Response: Error\r\nActionID: n\r\nMessage: No command provided\r\n\r\n"
    )


def test_command_output_through_the_client(fake: FakeAsterisk) -> None:
    fake.respond_command("core show version", "Asterisk 22.0.0 built by ...\nline2")
    fake.respond_command("old", "Asterisk 11\nline2\n", legacy=True)
    with client(fake) as ami:
        assert ami.request({"Action": "Command", "Command": "core show version"}, timeout=TIMEOUT).output == [
            "Asterisk 22.0.0 built by ...",
            "line2",
        ]
        assert ami.request({"Action": "Command", "Command": "old"}, timeout=TIMEOUT).output == ["Asterisk 11", "line2"]
        with pytest.raises(ActionError) as info:
            ami.request({"Action": "Command", "Command": "foo"}, timeout=TIMEOUT)
        assert info.value.result.output == [
            "No such command 'foo' (type 'core show help foo' for other possible commands)"
        ]


# -- respond() ----------------------------------------------------------------------------------------


def test_respond_frame_echoes_action_id(fake: FakeAsterisk, raw: Raw) -> None:
    fake.respond("QueueStatus", {"Response": "Success", "Message": "Queue status will follow"})
    assert raw.action(b"Action: queuestatus\r\nActionID: q\r\n\r\n") == (
        b"Response: Success\r\nActionID: q\r\nMessage: Queue status will follow\r\n\r\n"
    )
    assert (
        raw.action(b"Action: QueueStatus\r\n\r\n") == b"Response: Success\r\nMessage: Queue status will follow\r\n\r\n"
    )
    fake.respond("X", {"Response": "Success", "Variable": ["A=1", "B=2"], "Skip": None, "ActionID": None, "End": 1})
    assert raw.action(b"Action: X\r\nActionID: y\r\n\r\n") == (
        b"Response: Success\r\nVariable: A=1\r\nVariable: B=2\r\nActionID: y\r\nEnd: 1\r\n\r\n"
    )
    fake.respond("X", {"Response": "Success", "ActionID": "other"})  # an explicit ActionID is kept
    assert raw.action(b"Action: X\r\nActionID: y\r\n\r\n") == b"Response: Success\r\nActionID: other\r\n\r\n"
    fake.reset_responses("x")
    assert raw.action(b"Action: X\r\n\r\n").startswith(b"Response: Error\r\nMessage: Invalid/unknown command: X.")


def test_respond_event_list_matches_corpus(fake: FakeAsterisk, raw: Raw) -> None:
    frames = corpus_frames()
    start = frames.index(corpus_frame(b"Response: Success\r\nActionID: csc\r\n"))
    end = frames.index(corpus_frame(b"Event: CoreShowChannelsComplete\r\nActionID: csc\r\n"))
    events = [dict(kv for kv in header_items(f) if kv[0] != "ActionID") for f in frames[start + 1 : end]]
    assert len(events) == 6
    fake.respond(
        "CoreShowChannels",
        EventList(events=events, complete_event="CoreShowChannelsComplete", message="Channels will follow"),
    )
    raw.send(b"Action: CoreShowChannels\r\nActionID: csc\r\n\r\n")
    expected = [f + b"\r\n\r\n" for f in frames[start : end + 1]]
    assert [raw.frame() for _ in expected] == expected


def test_event_list_options(raw: Raw, fake: FakeAsterisk) -> None:
    fake.respond(
        "Status",
        EventList(
            [{"Channel": "c1", "ActionID": None}, {"Event": "Other"}],
            "StatusComplete",
            "Channel status will follow",
            event="Status",
            list_flag="Start",
            complete_headers={"Items": 2},
        ),
    )
    raw.send(b"Action: Status\r\nActionID: st\r\n\r\n")
    assert [raw.frame() for _ in range(4)] == [
        b"Response: Success\r\nActionID: st\r\nEventList: Start\r\nMessage: Channel status will follow\r\n\r\n",
        b"Event: Status\r\nChannel: c1\r\nActionID: st\r\n\r\n",
        b"Event: Other\r\nActionID: st\r\n\r\n",
        b"Event: StatusComplete\r\nActionID: st\r\nEventList: Complete\r\nListItems: 2\r\nItems: 2\r\n\r\n",
    ]


def test_respond_callable_list_bytes_and_none(fake: FakeAsterisk, raw: Raw) -> None:
    seen: list[tuple[dict[str, Any], FakeSession]] = []

    def originate(action: dict[str, Any], session: FakeSession) -> Any:
        seen.append((action, session))
        return [
            {"Response": "Success", "Message": "Originate successfully queued"},
            b"Event: Raw\r\n\r\n",
            {"Event": "OriginateResponse", "Privilege": "call,all", "ActionID": None, "Response": "Success"},
        ]

    fake.respond("Originate", originate)
    raw.send(b"Action: Originate\r\nActionID: o7\r\nChannel: PJSIP/100\r\n\r\n")
    assert [raw.frame() for _ in range(3)] == [
        b"Response: Success\r\nActionID: o7\r\nMessage: Originate successfully queued\r\n\r\n",
        b"Event: Raw\r\n\r\n",
        b"Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: o7\r\nResponse: Success\r\n\r\n",
    ]
    ((action, session),) = seen
    assert action == {"action": "Originate", "actionid": "o7", "channel": "PJSIP/100"}
    assert session is fake.sessions[0] and session.actions[-1] is action
    # None: no answer at all; the next action's answer is the next thing on the wire
    fake.respond("Originate", None)
    fake.respond("Hangup", lambda action, session: None)
    raw.send(b"Action: Originate\r\nActionID: n1\r\n\r\nAction: Hangup\r\nActionID: n2\r\n\r\n")
    assert raw.action(b"Action: Ping\r\nActionID: p\r\n\r\n").startswith(b"Response: Success\r\nActionID: p\r\n")
    fake.respond("Command", CommandOutput("all commands"))
    assert raw.action(b"Action: Command\r\nCommand: anything\r\n\r\n").endswith(b"Output: all commands\r\n\r\n")
    assert fake.responder_errors == []


def test_responder_errors_are_logged_not_fatal(fake: FakeAsterisk, raw: Raw, caplog: pytest.LogCaptureFixture) -> None:
    def broken(action: dict[str, Any], session: FakeSession) -> Any:
        raise RuntimeError("boom")

    fake.respond("Broken", broken)

    def wrong(action: dict[str, Any], session: FakeSession) -> Any:
        return 42  # not a Reply

    fake.respond("Wrong", wrong)
    with caplog.at_level(logging.ERROR, logger="asterisk_ami.testing"):
        raw.send(b"Action: Broken\r\n\r\nAction: Wrong\r\n\r\n")
        assert raw.action(b"Action: Ping\r\nActionID: p\r\n\r\n").startswith(b"Response: Success\r\nActionID: p")
    assert [type(e) for e in fake.responder_errors] == [RuntimeError, TypeError]
    assert len([r for r in caplog.records if r.name == "asterisk_ami.testing"]) == 2
    with pytest.raises(ValueError):
        fake.respond("Login", {"Response": "Success"})


def test_respond_through_the_client(fake: FakeAsterisk) -> None:
    fake.respond(
        "CoreShowChannels",
        EventList(
            [{"Channel": "PJSIP/1"}, {"Channel": "PJSIP/2"}], "CoreShowChannelsComplete", event="CoreShowChannel"
        ),
    )
    fake.respond("Originate", lambda action, session: {"Response": "Error", "Message": f"no {action['channel']}"})
    fake.respond("Hold", None)
    with client(fake) as ami:
        result = ami.request({"Action": "CoreShowChannels"}, timeout=TIMEOUT)
        assert [e["channel"] for e in result.events] == ["PJSIP/1", "PJSIP/2"]
        assert result.complete is not None and result.complete["listitems"] == "2"
        with pytest.raises(ActionError, match="no PJSIP/9"):
            ami.request({"Action": "Originate", "Channel": "PJSIP/9"}, timeout=TIMEOUT)
        with pytest.raises(ActionTimeoutError):
            ami.request({"Action": "Hold"}, timeout=0.2)
        assert ami.request({"Action": "Ping"}, timeout=TIMEOUT)["ping"] == "Pong"
    assert fake.wait_for_action("Originate", timeout=TIMEOUT)["channel"] == "PJSIP/9"


def test_wait_for_action(fake: FakeAsterisk, raw: Raw) -> None:
    fake.respond("Originate", {"Response": "Success"})
    raw.send(b"Action: Originate\r\nActionID: 1\r\n\r\nAction: Ping\r\n\r\nAction: originate\r\nActionID: 2\r\n\r\n")
    assert fake.wait_for_action("Originate", timeout=TIMEOUT)["actionid"] == "1"
    assert fake.wait_for_action("ORIGINATE", timeout=TIMEOUT)["actionid"] == "2"
    with pytest.raises(TimeoutError, match="Originate"):
        fake.wait_for_action("Originate", timeout=0.05)
    assert fake.wait_for_action(timeout=TIMEOUT)["action"] == "Login"
    assert [a["action"] for a in fake.actions] == ["Login", "Originate", "Ping", "originate"]
    assert fake.sessions[0].actions == fake.actions

    def later() -> None:
        raw.send(b"Action: Originate\r\nActionID: 3\r\n\r\n")

    threading.Timer(0.05, later).start()
    assert fake.wait_for_action("Originate", timeout=TIMEOUT)["actionid"] == "3"


# -- pushing -------------------------------------------------------------------------------------------


def test_push_event_and_push_raw_reach_the_client(fake: FakeAsterisk) -> None:
    hangups: list[dict[str, Any]] = []
    done = threading.Event()
    with client(fake) as ami:
        ami.on("Hangup", hangups.append)
        ami.on("Done", lambda frame: done.set())
        fake.wait_for_clients(1, timeout=TIMEOUT)
        assert fake.push_event("Hangup", Channel="PJSIP/100-0001", Cause="16") == 1
        assert fake.push_event({"Event": "Hangup", "Cause-txt": "Normal Clearing"}, Uniqueid="1.2") == 1
        assert fake.push_raw(b"Event: Hangup\r\nChannel: spl") == 1
        assert fake.push_raw(b"it\r\n\r") == 1
        assert fake.push_raw(b"\nEvent: Done\r\n\r\n") == 1
        assert done.wait(TIMEOUT)
    assert hangups == [
        {"event": "Hangup", "channel": "PJSIP/100-0001", "cause": "16"},
        {"event": "Hangup", "causetxt": "Normal Clearing", "uniqueid": "1.2"},
        {"event": "Hangup", "channel": "split"},
    ]


def test_push_goes_only_to_logged_in_sessions(fake: FakeAsterisk, raw: Raw) -> None:
    waiting = Raw(fake)  # connected, not logged in
    fake.wait_for(lambda: len(fake.sessions) == 2, timeout=TIMEOUT)
    assert fake.push_event("Test", Value="é") == 1
    assert raw.frame() == "Event: Test\r\nValue: é\r\n\r\n".encode()
    assert fake.push_raw(b"Event: X\r\nName: \xc2\xe8\r\n\r\n") == 1  # E28: bytes as they are
    assert raw.frame() == b"Event: X\r\nName: \xc2\xe8\r\n\r\n"
    assert waiting.action(b"Action: Ping\r\n\r\n") == b"Response: Error\r\nMessage: Permission denied\r\n\r\n"
    session = fake.sessions[0]
    assert session.send_frame({"Event": "Direct", "Value": b"\xff"}) is True
    assert raw.frame() == b"Event: Direct\r\nValue: \xff\r\n\r\n"
    waiting.close()


# -- failures: drop, stall, vanishing clients ----------------------------------------------------------


@pytest.mark.parametrize("rst", [False, True])
def test_drop_closes_every_connection(fake: FakeAsterisk, rst: bool) -> None:
    conn = Raw(fake)
    conn.login()
    closes: list[bool] = []
    closed = threading.Event()

    def on_close(had_error: bool) -> None:
        closes.append(had_error)
        closed.set()

    with client(fake) as ami:
        ami.on("ami_socket_close", on_close)
        fake.wait_for_clients(2, timeout=TIMEOUT)
        assert fake.drop(rst=rst) == 2
        assert fake.sessions == []
        assert closed.wait(TIMEOUT)
        assert closes == [rst]
    if rst:
        with pytest.raises(ConnectionResetError):
            conn.read_to_eof()
    else:
        assert conn.read_to_eof() == b""
    conn = Raw(fake)  # still accepting
    conn.login()
    conn.close()


def test_stall_stops_answers_until_resumed(fake: FakeAsterisk, raw: Raw) -> None:
    fake.stall(True)
    assert fake.stalled
    raw.send(b"Action: Ping\r\nActionID: s\r\n\r\n")
    late = socket.create_connection((fake.host, fake.port), timeout=TIMEOUT)
    raw.sock.settimeout(0.2)
    late.settimeout(0.2)
    with pytest.raises(TimeoutError):
        raw.frame()
    with pytest.raises(TimeoutError):
        late.recv(100)  # no banner from a hung server
    assert fake.push_event("StillPushed") == 1
    assert raw.frame() == b"Event: StillPushed\r\n\r\n"
    raw.sock.settimeout(TIMEOUT)
    late.settimeout(TIMEOUT)
    fake.stall(False)
    assert raw.frame().startswith(b"Response: Success\r\nActionID: s\r\nPing: Pong\r\n")
    assert late.recv(100) == BANNER
    late.close()


def test_stall_makes_client_requests_time_out(fake: FakeAsterisk) -> None:
    with client(fake) as ami:
        fake.stall()
        with pytest.raises(ActionTimeoutError):
            ami.request({"Action": "Ping"}, timeout=0.2)
        fake.stall(False)
        assert ami.request({"Action": "Ping"}, timeout=TIMEOUT)["ping"] == "Pong"


def test_vanishing_clients_never_break_the_server(fake: FakeAsterisk, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="asterisk_ami.testing"):
        for _ in range(3):
            conn = Raw(fake)
            conn.login()
            conn.send(b"Action: Ping\r\nActionID: half")  # half a message
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # RST
        fake.push_raw(b"Event: IntoTheVoid\r\n\r\n" * 1000)
        fake.wait_for(lambda: not fake.sessions, timeout=TIMEOUT)
        conn = Raw(fake)
        conn.login()
        assert conn.action(b"Action: Ping\r\nActionID: ok\r\n\r\n").startswith(b"Response: Success\r\nActionID: ok")
        conn.close()
    assert [r for r in caplog.records if r.name == "asterisk_ami.testing"] == []


def test_authlimit_closes_before_the_banner_and_authtimeout() -> None:
    with FakeAsterisk(authlimit=1, authtimeout=0.3) as fake:
        first = Raw(fake)
        fake.wait_for(lambda: len(fake.sessions) == 1, timeout=TIMEOUT)
        second = Raw(fake, banner=None)
        assert second.read_to_eof() == b""  # E3: EOF with zero bytes
        assert fake.rejected_count == 1
        start = time.monotonic()
        assert first.read_to_eof() == b""  # E24: not logged in within authtimeout
        assert time.monotonic() - start < TIMEOUT
        fake.wait_for(lambda: not fake.sessions, timeout=TIMEOUT)
        third = Raw(fake)
        third.login()
        third.close()


# -- replay --------------------------------------------------------------------------------------------


def test_replay_of_the_recorded_session_through_the_client(fake: FakeAsterisk) -> None:
    expected = AmiProtocol().receive_data(CORPUS)[1:]  # every frame after the login answer
    assert len(expected) == 498
    frames: list[dict[str, Any]] = []
    done = threading.Event()
    with client(fake, frames=frames) as ami:
        ami.on("ami_data", lambda frame: done.set() if len(frames) >= 2 + len(expected) else None)
        fake.wait_for_clients(1, timeout=TIMEOUT)
        sent = fake.replay(SESSION_BIN)
        assert done.wait(TIMEOUT)
    assert sent == len(CORPUS) - CORPUS.index(b"Event: FullyBooted")
    assert frames[0]["message"] == "Authentication accepted" and frames[1]["event"] == "FullyBooted"
    assert frames[2 : 2 + len(expected)] == expected


def test_replay_bytes_in_chunks_and_repeated(fake: FakeAsterisk, raw: Raw) -> None:
    payload = CORPUS[CORPUS.index(b"Event: FullyBooted") :]
    assert fake.replay(CORPUS, chunk_size=7) == len(payload)
    assert raw.read_exact(len(payload)) == payload
    assert fake.replay(payload, skip_login=False, repeat=3) == 3 * len(payload)
    assert raw.read_exact(3 * len(payload)) == payload * 3


def test_replay_is_fast_enough_for_benchmarks(fake: FakeAsterisk, raw: Raw) -> None:
    payload = CORPUS[CORPUS.index(b"Event: FullyBooted") :]
    total = 0
    received = threading.Event()

    def reader() -> None:
        nonlocal total
        while total < 50 * len(payload):
            chunk = raw.sock.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
        received.set()

    thread = threading.Thread(target=reader)
    thread.start()
    start = time.monotonic()
    fake.replay(payload, skip_login=False, repeat=50)  # ~10 MB, ~25,000 frames
    assert received.wait(TIMEOUT)
    thread.join(TIMEOUT)
    assert total == 50 * len(payload)
    assert time.monotonic() - start < 2.0


# -- lifecycle -----------------------------------------------------------------------------------------


def fake_threads(fake: FakeAsterisk) -> list[threading.Thread]:
    """The threads of ``fake``: named fake-asterisk-accept-PORT and fake-asterisk-session-PORT-N."""
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith("fake-asterisk-") and t.name.split("-")[3] == str(fake.port)
    ]


def test_close_leaves_no_thread_behind() -> None:
    before = threading.active_count()
    fake = FakeAsterisk().start()
    with client(fake) as ami:
        assert ami.request({"Action": "Ping"}, timeout=TIMEOUT)["ping"] == "Pong"
    conns = [Raw(fake) for _ in range(3)]
    conns[0].login()
    fake.wait_for(lambda: len(fake.sessions) == 3, timeout=TIMEOUT)
    fake.stall()  # even stalled sessions end
    assert len(fake_threads(fake)) == 4  # accept thread + 3 sessions
    fake.close()
    fake.close()  # twice is fine
    assert fake_threads(fake) == []
    assert threading.active_count() <= before
    for conn in conns:
        assert conn.read_to_eof() == b""
    with pytest.raises(RuntimeError):
        fake.start()


def test_close_with_a_client_that_does_not_read() -> None:
    fake = FakeAsterisk().start()
    conn = Raw(fake)
    conn.login()
    (session,) = fake.wait_for_clients(1, timeout=TIMEOUT)
    before = threading.active_count()
    result: list[int] = []
    big = b"x" * (64 << 20)  # far more than the socket buffers hold: the write blocks
    pusher = threading.Thread(target=lambda: result.append(fake.push_raw(big)))
    pusher.start()
    fake.wait_for(lambda: session._wlock.locked(), timeout=TIMEOUT)
    start = time.monotonic()
    fake.close()
    pusher.join(TIMEOUT)
    assert not pusher.is_alive() and result == [0]
    assert time.monotonic() - start < 3.0
    assert fake_threads(fake) == []
    assert threading.active_count() <= before - 2  # accept and session threads
    conn.close()


def test_url_and_repr_never_show_secrets() -> None:
    with FakeAsterisk(accounts={"admin": "s3cr3t-value"}) as fake:
        assert fake.url == f"ami://127.0.0.1:{fake.port}"
        assert isinstance(fake.port, int) and fake.port > 0 and fake.host == "127.0.0.1"
        for text in (fake.url, repr(fake), str(fake)):
            assert "s3cr3t" not in text
        conn = Raw(fake)
        conn.login(secret="s3cr3t-value")
        assert "s3cr3t" not in repr(fake.sessions[0])
        conn.close()


def test_event_list_and_command_output_render() -> None:
    assert EventList([], "XComplete", message=None).render(None) == (
        b"Response: Success\r\nEventList: start\r\n\r\nEvent: XComplete\r\nEventList: Complete\r\nListItems: 0\r\n\r\n"
    )
    assert encode_frame({"Event": "E", "V": ["a", "b"], "N": None, "B": b"\xff", "I": 3}) == (
        b"Event: E\r\nV: a\r\nV: b\r\nB: \xff\r\nI: 3\r\n\r\n"
    )
    assert recorded_frames(CORPUS).startswith(b"Event: FullyBooted\r\n")
    assert recorded_frames(CORPUS, skip_login=False).startswith(b"Response: Success\r\nActionID: 1\r\n")
    assert CommandOutput("", success=False).render("1") == (
        b"Response: Error\r\nActionID: 1\r\nMessage: Command output follows\r\nOutput: \r\n\r\n"
    )


# -- the pytest plugin -------------------------------------------------------------------------------------


def test_fixture_from_the_installed_plugin(fake_asterisk: FakeAsterisk) -> None:
    assert isinstance(fake_asterisk, FakeAsterisk)
    with client(fake_asterisk) as ami:
        assert ami.request({"Action": "Ping"}, timeout=TIMEOUT)["ping"] == "Pong"


@pytest.mark.fake_asterisk(banner="Asterisk Call Manager/13.0.0", accounts={"bob": "pw"})
def test_fixture_marker_options(fake_asterisk: FakeAsterisk) -> None:
    conn = Raw(fake_asterisk, banner=b"Asterisk Call Manager/13.0.0\r\n")
    conn.login("bob", "pw")
    conn.close()


def test_plugin_is_registered(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("asterisk_ami")
