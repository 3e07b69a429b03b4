"""What one client offers, the other offers in its own idiom (README "One contract, two shells"): event-name
patterns, the threaded ``with`` and ``events()``, cancellable futures, ``until_event``, ``wait_closed``, the
truth about coroutine handlers, a clean ``dir()``, the public names, timeouts checked where they are
passed, and logs that name their connection."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from typing import Any

import pytest

import asterisk_ami
from asterisk_ami import (
    AsteriskAmi,
    ClientState,
    ConnectTimeoutError,
    OriginateResult,
)
from asterisk_ami import asyncio as ami_asyncio
from asterisk_ami.live import LiveState
from asterisk_ami.testing import FakeAsterisk

from ..helpers import free_port, wait_until
from .test_lifecycle_contract import SHELLS, options, run

PLUMBING = (
    "deliver",
    "call_handler",
    "emit_event",
    "frame_handlers",
    "handler_failed",
    "handler_returned",
    "handler_stalled",
    "handlers_for",
    "running_handler",
    "handlers_version",
)
QUEUE_EVENTS = ("QueueMemberStatus", "QueueCallerJoin", "queueparams", "Hangup", "AgentCalled")


@pytest.mark.parametrize("shell", SHELLS)
def test_patterns_match_in_any_case_and_exact_names_stay_exact(fake: FakeAsterisk, shell: str) -> None:
    if shell == "threaded":
        with AsteriskAmi(**options(fake)) as ami:
            got: list[str] = []
            exact: list[str] = []
            ami.on_pattern("queue*", lambda frame: got.append(frame["event"]))
            ami.on("hangup", lambda frame: exact.append(frame["event"]))  # not Asterisk's spelling: never fires
            stream = ami.events("Queue*", "Agent?alled")
            for name in QUEUE_EVENTS:
                fake.push_event(name)
            names = [stream.get(5)["event"] for _ in range(4)]  # type: ignore[index]
            assert names == ["QueueMemberStatus", "QueueCallerJoin", "queueparams", "AgentCalled"]
            wait_until(lambda: len(got) == 3, 5, "the pattern handler")
            assert got == ["QueueMemberStatus", "QueueCallerJoin", "queueparams"] and exact == []
            with pytest.raises(ValueError, match="wildcard"):
                ami.on_pattern("Hangup", print)
        return

    async def main() -> None:
        async with ami_asyncio.AsteriskAmi(**options(fake)) as ami:
            got: list[str] = []
            ami.on("Queue*", lambda frame: got.append(frame["event"]))  # on() takes a pattern too
            stream = ami.events("QUEUE*", "Agent?alled")
            for name in QUEUE_EVENTS:
                await asyncio.to_thread(fake.push_event, name)
            names = [(await stream.__anext__())["event"] for _ in range(4)]
            assert names == ["QueueMemberStatus", "QueueCallerJoin", "queueparams", "AgentCalled"]
            assert got == ["QueueMemberStatus", "QueueCallerJoin", "queueparams"]

    run(main())


def test_threaded_with_logs_in_and_raises_as_asyncio_connect_does() -> None:
    with pytest.raises(ConnectionRefusedError), AsteriskAmi(host="127.0.0.1", port=free_port()):
        pass
    with FakeAsterisk(accounts={"admin": "secret"}, banner=None, login_delay=5) as silent:
        with pytest.raises(ConnectTimeoutError), AsteriskAmi(**options(silent, connect_timeout=0.3)):
            pass
        ami = AsteriskAmi(**options(silent, reconnect=True, reconnect_after=50))
        with pytest.raises(ConnectTimeoutError, match=r"within 0\.5 s"):  # with reconnect: the wait's own bound
            ami.connect_and_wait(timeout=0.5)
        assert ami.state == "disconnected"


def test_threaded_events_iterator_closes_and_ends_with_disconnect(fake: FakeAsterisk) -> None:
    ami = AsteriskAmi(**options(fake))
    ami.connect_and_wait(5)
    with ami.events("UserEvent") as stream:
        fake.push_event("UserEvent", UserEvent="a")
        assert stream.get(5)["userevent"] == "a"  # type: ignore[index]
        with pytest.raises(TimeoutError):
            stream.get(0.05)
    assert stream.closed and stream.get() is None
    other = ami.events()
    ami.disconnect()
    leftover = list(other)  # iteration ends (with what came before the Goodbye): no hang
    assert all(frame.get("event") for frame in leftover)
    assert other.closed and ami.wait_closed(5)


@pytest.mark.parametrize("shell", SHELLS)
def test_until_event_completes_with_the_event_carrying_the_action_id(fake: FakeAsterisk, shell: str) -> None:
    def responder(frame: dict[str, Any], session: Any) -> list[dict[str, str]]:
        action_id = str(frame["actionid"])
        return [{"Response": "Success"}, {"Event": "Done", "ActionID": action_id, "Result": "ok"}]

    fake.respond("Work", responder)
    if shell == "threaded":
        with AsteriskAmi(**options(fake)) as ami:
            result = ami.action({"Action": "Work"}, timeout=5, until_event="Done").result(5)
            assert result.complete is not None and result.complete["result"] == "ok"
        return

    async def main() -> None:
        async with ami_asyncio.AsteriskAmi(**options(fake)) as ami:
            result = await ami.action({"Action": "Work"}, timeout=5, until_event="Done")
            assert result.complete is not None and result.complete["result"] == "ok"

    run(main())


def test_asyncio_tells_the_truth_about_its_coroutine_handlers(fake: FakeAsterisk) -> None:
    async def main() -> None:
        async with ami_asyncio.AsteriskAmi(**options(fake)) as ami:
            started = asyncio.Event()
            finished: list[str] = []

            async def slow(frame: dict[str, Any]) -> None:
                started.set()
                await asyncio.sleep(0.2)
                finished.append(str(frame["event"]))

            ami.on("UserEvent", slow)
            assert ami.complete
            await asyncio.to_thread(fake.push_event, "UserEvent")
            await asyncio.wait_for(started.wait(), 5)
            assert not ami.complete
            await asyncio.wait_for(ami.wait_for_complete(), 5)
            assert ami.complete and finished == ["UserEvent"]
            started.clear()
            await asyncio.to_thread(fake.push_event, "UserEvent")
            await asyncio.wait_for(started.wait(), 5)
            ami.cancel()
            await asyncio.sleep(0)
            await asyncio.wait_for(ami.wait_for_complete(), 5)
            assert finished == ["UserEvent"]  # the second one was cancelled

    run(main())


@pytest.mark.parametrize("shell", SHELLS)
def test_dir_shows_the_api_not_the_machinery(shell: str) -> None:
    ami: Any = AsteriskAmi() if shell == "threaded" else ami_asyncio.AsteriskAmi()
    public = {n for n in dir(ami) if not n.startswith("_")}
    assert not public & set(PLUMBING), public & set(PLUMBING)
    assert {"connect", "send", "action", "request", "originate", "events", "disconnect", "destroy"} <= public
    assert {"on", "once", "on_pattern", "add_login_actions", "wait_closed", "stats", "state"} <= public
    assert not {n for n in dir(LiveState) if not n.startswith("_")} & set(PLUMBING)


def test_the_contract_names_are_importable_from_the_package() -> None:
    for name in (
        "OriginateResult",
        "ClientState",
        "LoggedIn",
        "LoginRefused",
        "Closed",
        "FramesReceived",
        "ConnectResult",
        "Stopped",
        "WriteTimeoutError",
        "WriteBufferFullError",
        "ActionNotSentError",
    ):
        assert name in asterisk_ami.__all__ and hasattr(asterisk_ami, name)
    assert OriginateResult.__module__ == "asterisk_ami.originate" and ClientState.CONNECTED == "connected"


@pytest.mark.parametrize("shell", SHELLS)
def test_timeouts_are_checked_where_the_user_passed_them(fake: FakeAsterisk, shell: str) -> None:
    bad: list[tuple[object, type[Exception]]] = [("5", TypeError), (-1, ValueError), (math.nan, ValueError)]
    if shell == "threaded":
        with AsteriskAmi(**options(fake)) as ami:
            for value, kind in bad:
                with pytest.raises(kind, match="timeout"):
                    ami.action({"Action": "Ping"}, timeout=value)  # type: ignore[arg-type]
                with pytest.raises(kind, match="timeout"):
                    ami.request({"Action": "Ping"}, timeout=value)  # type: ignore[arg-type]
                with pytest.raises(kind, match="timeout"):
                    ami.originate("Local/1@x", application="Wait", timeout=value)
            with pytest.raises(TypeError, match="timeout"):
                ami.disconnect(timeout="1")  # type: ignore[arg-type]
            assert ami.stats["pending_actions"] == 0
        with pytest.raises(ValueError, match="connect_timeout"):
            AsteriskAmi(connect_timeout=-1)
        return

    async def main() -> None:
        async with ami_asyncio.AsteriskAmi(**options(fake)) as ami:
            for value, kind in bad:
                with pytest.raises(kind, match="timeout"):
                    await ami.request({"Action": "Ping"}, timeout=value)  # type: ignore[arg-type]
                with pytest.raises(kind, match="timeout"):
                    await ami.originate("Local/1@x", application="Wait", timeout=value)

    run(main())


@pytest.mark.parametrize("shell", SHELLS)
def test_every_log_line_names_its_connection_and_debug_is_per_client(
    fake: FakeAsterisk, shell: str, caplog: pytest.LogCaptureFixture
) -> None:
    library = logging.getLogger("asterisk_ami")
    level = library.level
    with caplog.at_level(logging.DEBUG, logger="asterisk_ami"):
        if shell == "threaded":
            with AsteriskAmi(**options(fake, identifier="pbx-a", debug=True)) as ami:
                ami.request({"Action": "Ping"}, timeout=5)
        else:

            async def main() -> None:
                async with ami_asyncio.AsteriskAmi(**options(fake, identifier="pbx-a", debug=True)) as ami:
                    await ami.request({"Action": "Ping"}, timeout=5)

            run(main())
    label = f"{fake.host}:{fake.port} pbx-a"
    ours = [r for r in caplog.records if r.name.startswith("asterisk_ami") and r.name != "asterisk_ami.testing"]
    assert ours and all(getattr(r, "ami_connection", None) == label for r in ours), [r.getMessage() for r in ours]
    assert all(r.getMessage().startswith(f"[{label}] ") for r in ours)
    assert any("logged in" in r.getMessage() for r in ours)
    assert library.level == level  # debug=True left the process-wide logger alone
    assert "secret" not in caplog.text


def test_state_is_a_str_enum_shared_by_both_shells() -> None:
    assert AsteriskAmi().state is ClientState.DISCONNECTED
    assert ami_asyncio.AsteriskAmi().state is ClientState.DISCONNECTED


def test_threaded_wait_closed_reports_whether_the_client_stopped(fake: FakeAsterisk) -> None:
    ami = AsteriskAmi(**options(fake))
    assert ami.wait_closed(0)  # never ran
    ami.connect_and_wait(5)
    assert not ami.wait_closed(0.05)
    stopper = threading.Thread(target=ami.disconnect)
    stopper.start()
    assert ami.wait_closed(5) and ami.state == "disconnected"
    stopper.join(5)
