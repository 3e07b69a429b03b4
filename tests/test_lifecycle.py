"""The sans-IO client lifecycle (asterisk_ami/lifecycle.py) driven by hand with a fake clock: no socket,
no thread, no sleep. Every rule both shells follow is checked here once."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest

from asterisk_ami import (
    ActionNotSentError,
    AuthenticationError,
    ClientState,
    Closed,
    ConnectionLostError,
    ConnectResult,
    FramesReceived,
    LoggedIn,
    NotConnectedError,
    OpenTransport,
    Stopped,
    WriteBufferFullError,
    WriteTimeoutError,
)
from asterisk_ami.actions import ActionDone
from asterisk_ami.lifecycle import HOLD_SECONDS, RETRY_LOG_SECONDS, ClientLifecycle
from asterisk_ami.logs import connection_logger
from asterisk_ami.options import AmiOptions
from asterisk_ami.protocol import AmiProtocol
from asterisk_ami.reconnect import ReconnectPolicy

T0 = 1000.0
BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def make(**options: Any) -> ClientLifecycle:
    opts = AmiOptions(**{"username": "admin", "password": "secret", "host": "pbx", "port": 5038, **options})
    return ClientLifecycle(opts, connection_logger(opts.label), policy=ReconnectPolicy(opts.reconnect_after))


def written(core: ClientLifecycle) -> list[dict[str, Any]]:
    data = core.data_to_send()
    return AmiProtocol().receive_data(b"Response: x\r\n\r\n" + data)[1:] if data else []  # type: ignore[return-value]


def kinds(events: list[Any]) -> list[type]:
    return [type(e) for e in events]


def login(core: ClientLifecycle, now: float = T0 + 0.1, extra: bytes = b"") -> list[Any]:
    [action] = [a for a in written(core) if a["action"] == "Login"]
    answer = (
        b"Response: Success\r\nActionID: %s\r\nMessage: Authentication accepted\r\n\r\n" % action["actionid"].encode()
    )
    core.receive_data(BANNER + answer + extra, now)
    return core.events_received()


def started(**options: Any) -> ClientLifecycle:
    core = make(**options)
    assert core.start(T0)
    assert kinds(core.events_received()) == [OpenTransport]
    return core


def connected(**options: Any) -> ClientLifecycle:
    core = started(**options)
    login(core)
    written(core)
    return core


def test_start_asks_for_a_transport_and_the_login_makes_the_client_connected() -> None:
    core = make()
    assert core.state is ClientState.DISCONNECTED
    assert core.start(T0) and core.state is ClientState.CONNECTING
    assert kinds(core.events_received()) == [OpenTransport]
    assert not core.start(T0)  # a second connect() is ignored
    events = login(core, extra=b"Event: FullyBooted\r\n\r\n")
    assert kinds(events) == [FramesReceived, LoggedIn, ConnectResult, FramesReceived]
    assert events[2].error is None and core.state is ClientState.CONNECTED
    assert core.banner == "Asterisk Call Manager/11.0.0" and core.protocol_version == "11.0.0"
    assert core.stats()["logins"] == 1


def test_a_lost_connection_waits_the_policys_delay_as_a_deadline_then_opens_another() -> None:
    core = connected(reconnect=True, reconnect_after=500)
    core.connection_lost(ConnectionResetError(104, "reset"), T0 + 1)
    events = core.events_received()
    assert Closed in kinds(events) and Stopped not in kinds(events)
    assert core.state is ClientState.RECONNECT_WAIT and core.next_deadline() == T0 + 1.5
    core.handle_timeout(T0 + 1.4)
    assert core.events_received() == [] and core.state is ClientState.RECONNECT_WAIT
    core.handle_timeout(T0 + 1.5)
    assert kinds(core.events_received()) == [OpenTransport] and core.state is ClientState.CONNECTING
    assert core.stats()["reconnects"] == 1


def test_a_refused_login_stops_for_good_whatever_reconnect_says_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = started(reconnect=True, reconnect_after=10)
    [action] = written(core)
    with caplog.at_level(logging.INFO, logger="asterisk_ami"):
        core.receive_data(
            BANNER
            + b"Response: Error\r\nActionID: %s\r\nMessage: Authentication failed\r\n\r\n"
            % action["actionid"].encode(),
            T0,
        )
        core.connection_lost(None, T0)
    events = core.events_received()
    result = next(e for e in events if isinstance(e, ConnectResult))
    assert isinstance(result.error, AuthenticationError)
    assert isinstance(events[-1], Stopped) and isinstance(events[-1].error, AuthenticationError)
    assert core.state is ClientState.DISCONNECTED and core.next_deadline() is None
    lines = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1 and "not reconnecting" in lines[0].getMessage()
    assert "[pbx:5038]" in lines[0].getMessage() and lines[0].ami_connection == "pbx:5038"  # type: ignore[attr-defined]
    assert "secret" not in caplog.text


def test_send_with_no_connection_raises_with_the_last_connections_end_as_its_cause() -> None:
    core = make()
    with pytest.raises(NotConnectedError, match="connect\\(\\) was not called"):
        core.send({"Action": "Ping"}, T0)
    with pytest.raises(ValueError):  # a bad message says so first, connected or not
        core.send({"Action": "Ping", "X": "a\r\nb"}, T0)
    core = connected(reconnect=True)
    reset = ConnectionResetError(104, "reset")
    core.connection_lost(reset, T0 + 1)
    with pytest.raises(NotConnectedError, match="waiting to reconnect") as caught:
        core.send({"Action": "Ping"}, T0 + 1)
    assert caught.value.__cause__ is reset


def test_timeouts_are_checked_where_they_are_passed_and_action_timeout_is_the_default() -> None:
    core = connected(action_timeout=3.0)
    for bad, kind in (("5", TypeError), (-1, ValueError), (math.nan, ValueError), (True, TypeError)):
        with pytest.raises(kind, match="timeout"):
            core.send({"Action": "Ping"}, T0, waiter="w", timeout=bad)
    core.send({"Action": "Ping"}, T0, waiter="w")
    assert core.next_deadline() == T0 + 3.0
    core.send({"Action": "Ping"}, T0, waiter="w", timeout=1)
    assert core.next_deadline() == T0 + 1.0


def test_disconnect_while_logging_in_writes_the_queue_then_logs_off() -> None:
    core = started()
    ids = [core.send({"Action": "UserEvent", "UserEvent": f"e{i}"}, T0) for i in range(3)]
    core.disconnect(T0, 5.0)
    events = login(core)
    assert LoggedIn in kinds(events)
    actions = written(core)
    assert [a.get("actionid") for a in actions[:3]] == ids and actions[3]["action"] == "Logoff"


def test_disconnect_gives_up_waiting_for_the_login_and_says_what_was_not_sent(caplog: pytest.LogCaptureFixture) -> None:
    core = started()
    core.send({"Action": "UserEvent", "UserEvent": "plain"}, T0)
    core.send({"Action": "Ping", "ActionID": "p1"}, T0, waiter="w")
    core.disconnect(T0, 2.0)
    assert core.next_deadline() == T0 + 2.0
    core.handle_timeout(T0 + 2.0)
    assert core.close_expected
    with caplog.at_level(logging.WARNING, logger="asterisk_ami"):
        core.connection_lost(None, T0 + 2.0)
    events = core.events_received()
    done = next(e for e in events if isinstance(e, ActionDone))
    assert isinstance(done.outcome, ActionNotSentError) and "disconnect() gave up" in str(done.outcome)
    assert isinstance(done.outcome, ConnectionLostError | NotConnectedError)
    assert "1 action(s) given to send() were never written" in caplog.text
    assert isinstance(events[-1], Stopped) and core.state is ClientState.DISCONNECTED


def test_frames_after_the_login_are_held_for_a_waiting_caller_until_it_uses_the_client() -> None:
    core = started()
    core.wait_for_login(True)
    events = login(core, extra=b"Event: FullyBooted\r\n\r\n")
    assert kinds(events) == [FramesReceived, LoggedIn, ConnectResult]  # FullyBooted waits
    core.wait_for_login(False)
    core.connect_returned(T0 + 0.2)
    assert core.next_deadline() == T0 + 0.2 + HOLD_SECONDS
    core.receive_data(b"Event: Newchannel\r\n\r\n", T0 + 0.2)
    assert core.events_received() == []
    core.release(T0 + 0.25)  # the caller made a stream, say
    held = core.events_received()
    assert [f["event"] for e in held for f in e.frames] == ["FullyBooted", "Newchannel"]
    core.receive_data(b"Event: Hangup\r\n\r\n", T0 + 0.3)
    assert kinds(core.events_received()) == [FramesReceived]  # nothing held any more


def test_held_frames_go_at_the_latest_hold_seconds_after_connect_returned() -> None:
    core = started()
    core.wait_for_login(True)
    login(core, extra=b"Event: FullyBooted\r\n\r\n")
    core.wait_for_login(False)
    core.connect_returned(T0 + 1)
    core.handle_timeout(T0 + 1 + HOLD_SECONDS)
    assert [f["event"] for e in core.events_received() for f in e.frames] == ["FullyBooted"]


def test_keepalive_waits_while_the_shell_holds_reading_back_and_deadlines_still_fire() -> None:
    core = connected(ping_interval=0.2, ping_timeout=0.2)
    core.set_reading(True, T0 + 0.1)
    core.send({"Action": "Ping", "ActionID": "late"}, T0 + 0.1, waiter="w", timeout=0.3)
    assert core.next_deadline() == pytest.approx(T0 + 0.4)  # the action's, not a keepalive's
    core.handle_timeout(T0 + 1.5)
    events = core.events_received()
    assert kinds(events) == [ActionDone] and core.state is ClientState.CONNECTED  # no "no answer to Ping"
    core.set_reading(False, T0 + 1.5)
    assert core.next_deadline() == pytest.approx(T0 + 1.7)


def test_a_write_blocked_for_write_timeout_kills_the_connection() -> None:
    core = connected(write_timeout=2.0, reconnect=True)
    core.set_writing_blocked(True, T0)
    assert core.next_deadline() == T0 + 2.0
    core.handle_timeout(T0 + 2.0)
    assert core.close_expected
    core.connection_lost(None, T0 + 2.0)
    closed = next(e for e in core.events_received() if isinstance(e, Closed))
    assert isinstance(closed.error, WriteTimeoutError) and core.state is ClientState.RECONNECT_WAIT


def test_send_refuses_past_max_write_bytes_and_queues_nothing() -> None:
    core = started(max_write_bytes=100)
    core.send({"Action": "UserEvent", "UserEvent": "x" * 60}, T0)  # under the mark: queued for the login
    with pytest.raises(WriteBufferFullError, match="drain"):
        core.send({"Action": "UserEvent", "UserEvent": "y"}, T0)
    assert core.has_room(backlog=0) is False
    connected_core = connected(max_write_bytes=100)
    with pytest.raises(WriteBufferFullError):
        connected_core.send({"Action": "Ping"}, T0, backlog=100)  # what the transport still holds counts


def test_failed_attempts_warn_once_then_at_most_once_a_minute_with_the_count(caplog: pytest.LogCaptureFixture) -> None:
    core = started(reconnect=True, reconnect_after=1000)
    now = T0
    with caplog.at_level(logging.DEBUG, logger="asterisk_ami"):
        for _ in range(30):  # 30 refused attempts, 1 s apart: 29 s
            core.connection_lost(ConnectionRefusedError(111, "Connection refused"), now)
            core.events_received()
            now += 1.0
            core.handle_timeout(now)
            core.events_received()
        warned = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warned) == 1 and "cannot connect" in warned[0].getMessage()
        now += RETRY_LOG_SECONDS
        core.connection_lost(ConnectionRefusedError(111, "Connection refused"), now)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2 and "30 failed attempts since the last warning" in warned[1]
    assert sum("cannot connect (attempt" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG) == 29
