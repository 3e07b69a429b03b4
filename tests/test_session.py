"""The sans-IO session (asterisk_ami/session.py) driven by hand: bytes in, bytes and events out, ``now``
passed in. No socket, thread or clock, the way websockets tests its handshake."""

from __future__ import annotations

from typing import Any

import pytest

from asterisk_ami import (
    ActionError,
    ActionResult,
    AuthenticationError,
    ClientState,
    Closed,
    ConnectionLostError,
    Failed,
    FramesReceived,
    LoggedIn,
    LoginActionsWanted,
    LoginRefused,
    ServerClosed,
    TimedOut,
)
from asterisk_ami.actions import ActionDone
from asterisk_ami.errors import ActionTimeoutError, ConnectTimeoutError, FrameTooLargeError, NotConnectedError
from asterisk_ami.options import AmiOptions
from asterisk_ami.protocol import ActionIdGenerator, AmiProtocol, md5_key
from asterisk_ami.session import AmiSession, SessionState

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
T0 = 1000.0


def make(**options: Any) -> AmiSession:
    opts = AmiOptions(**{"username": "admin", "password": "secret", **options})
    return AmiSession(opts, T0, ActionIdGenerator("t"))


def sent(session: AmiSession) -> list[dict[str, Any]]:
    """The actions the session wants written, parsed back."""
    data = session.data_to_send()
    if not data:
        return []
    return AmiProtocol().receive_data(b"Response: x\r\n\r\n" + data)[1:]  # type: ignore[return-value]


def answer(session: AmiSession, data: bytes, now: float = T0 + 0.1) -> list[Any]:
    session.receive_data(data, now)
    return session.events_received()


def logged_in(**options: Any) -> AmiSession:
    session = make(**options)
    [login] = sent(session)
    answer(session, BANNER + b"Response: Success\r\nActionID: %s\r\nMessage: ok\r\n\r\n" % login["actionid"].encode())
    return session


def close(session: AmiSession, error: BaseException | None = None) -> list[Any]:
    assert session.close_expected or error is not None or session.state is not SessionState.CLOSED
    session.connection_lost(error)
    return session.events_received()


# -- login ------------------------------------------------------------------------------------------------


def test_plain_login_is_written_at_once_and_its_answer_opens_the_session() -> None:
    session = make(events="call,system")
    assert session.state is SessionState.LOGIN_SENT
    [login] = sent(session)
    assert login == {
        "action": "Login",
        "actionid": "t-1",
        "username": "admin",
        "secret": "secret",
        "events": "call,system",
    }
    events = answer(session, BANNER + b"Response: Success\r\nActionID: t-1\r\nMessage: Authentication accepted\r\n\r\n")
    assert [type(e) for e in events] == [FramesReceived, LoggedIn]
    assert events[0].frames == [events[1].frame]
    assert session.state is SessionState.OPEN and session.logged_in
    assert session.banner == "Asterisk Call Manager/11.0.0" and session.protocol_version == "11.0.0"


def test_frames_after_the_login_answer_in_the_same_read_come_after_logged_in() -> None:
    session = make()
    sent(session)
    events = answer(
        session,
        BANNER + b"Response: Success\r\nActionID: t-1\r\n\r\nEvent: FullyBooted\r\nStatus: Fully Booted\r\n\r\n",
    )
    assert [type(e) for e in events] == [FramesReceived, LoggedIn, FramesReceived]
    assert events[2].frames == [{"event": "FullyBooted", "status": "Fully Booted"}]


def test_refused_login_is_fatal_and_closes() -> None:
    session = make()
    sent(session)
    events = answer(session, b"Response: Error\r\nActionID: t-1\r\nMessage: Authentication failed\r\n\r\n")
    assert [type(e) for e in events] == [FramesReceived, LoginRefused]
    assert isinstance(events[1].error, AuthenticationError) and "Authentication failed" in str(events[1].error)
    assert session.close_expected and session.state is SessionState.CLOSED
    assert close(session) == [Closed(had_error=True, fatal=True)]


def test_md5_login_sends_the_key_never_the_secret() -> None:
    session = make(auth="md5")
    assert session.state is SessionState.CHALLENGE_SENT
    [challenge] = sent(session)
    assert challenge == {"action": "Challenge", "authtype": "MD5", "actionid": "t-1c"}
    events = answer(session, BANNER + b"Response: Success\r\nActionID: t-1c\r\nChallenge: 840724201\r\n\r\n")
    assert [type(e) for e in events] == [FramesReceived]
    assert session.state is SessionState.LOGIN_SENT
    [login] = sent(session)
    assert login["key"] == md5_key("840724201", "secret") and "secret" not in login
    events = answer(session, b"Response: Success\r\nActionID: t-1\r\nMessage: ok\r\n\r\n")
    assert isinstance(events[-1], LoggedIn)


def test_refused_challenge_is_fatal() -> None:
    session = make(auth="md5")
    sent(session)
    events = answer(session, b"Response: Error\r\nActionID: t-1c\r\nMessage: Must specify AuthType\r\n\r\n")
    assert isinstance(events[-1], LoginRefused) and "challenge" in str(events[-1].error).lower()
    assert sent(session) == []  # no Login after a refused challenge
    assert close(session)[-1] == Closed(had_error=True, fatal=True)


def test_login_deadline_is_connect_timeout_after_creation() -> None:
    session = make(connect_timeout=3.0)
    assert session.next_deadline() == T0 + 3.0
    session.handle_timeout(T0 + 2.9)
    assert session.events_received() == [] and not session.close_expected
    session.handle_timeout(T0 + 3.0)
    [timed_out] = session.events_received()
    assert isinstance(timed_out, TimedOut) and isinstance(timed_out.error, ConnectTimeoutError)
    assert close(session) == [Closed(had_error=False, fatal=False)]


def test_a_login_that_cannot_be_written_is_fatal() -> None:
    session = make(password="x" * 2000)  # longer than one AMI line
    [failed] = session.events_received()
    assert isinstance(failed, Failed) and session.close_expected
    assert "x" * 20 not in str(failed.error)
    assert close(session)[-1] == Closed(had_error=True, fatal=True)


# -- the pre-login queue and correlation ----------------------------------------------------------------------


def test_actions_sent_before_login_are_written_in_order_right_after_it() -> None:
    session = make()
    sent(session)
    first = session.send({"Action": "Ping"}, T0, waiter="w1")
    second = session.send({"Action": "Status"}, T0)
    assert sent(session) == []  # held until the login is answered
    answer(session, b"Response: Success\r\nActionID: t-1\r\n\r\n")
    assert [(a["action"], a["actionid"]) for a in sent(session)] == [("Ping", first), ("Status", second)]
    events = answer(session, b"Response: Success\r\nActionID: %s\r\nPing: Pong\r\n\r\n" % first.encode())
    assert [type(e) for e in events] == [FramesReceived, ActionDone]
    done = events[1]
    assert done.entry.waiter == "w1" and isinstance(done.outcome, ActionResult) and done.outcome["ping"] == "Pong"


def test_login_actions_come_right_after_the_login_answer_before_the_queued_ones() -> None:
    opts = AmiOptions(username="admin", password="secret")
    session = AmiSession(opts, T0, ActionIdGenerator("t"), login_hook=True)
    sent(session)
    queued = session.send({"Action": "Ping"}, T0)
    events = answer(session, b"Response: Success\r\nActionID: t-1\r\n\r\nEvent: FullyBooted\r\n\r\n")
    # the hook is an event the shell answers (outside any lock); the frames after the login still come
    assert [type(e) for e in events] == [FramesReceived, LoggedIn, LoginActionsWanted, FramesReceived]
    assert sent(session) == []  # nothing queued jumps ahead of the login actions
    during = session.send({"Action": "Ping", "ActionID": "during"}, T0)  # a provider may send() itself
    assert sent(session) == []
    session.login_actions(
        [{"Action": "CoreShowChannels", "ActionID": "live-1"}, {"Action": "Bad", "Value": "a\r\nb"}], T0
    )
    # the action with CR/LF in a value is logged and left out; the rest are written in order
    assert [(a["action"], a["actionid"]) for a in sent(session)] == [
        ("CoreShowChannels", "live-1"),
        ("Ping", queued),
        ("Ping", during),
    ]
    assert session.send({"Action": "Ping", "ActionID": "after"}, T0) == "after"
    assert [a["actionid"] for a in sent(session)] == ["after"]


def test_event_lists_and_errors_complete_their_action() -> None:
    session = logged_in()
    calls: list[Any] = []
    listed = session.send({"Action": "CoreShowChannels"}, T0, waiter="list", callback=calls.append)
    failed = session.send({"Action": "Bogus"}, T0, waiter="bad")
    sent(session)
    events = answer(
        session,
        b"Response: Success\r\nActionID: %(l)s\r\nEventList: start\r\n\r\n"
        b"Event: CoreShowChannel\r\nActionID: %(l)s\r\nChannel: A\r\n\r\n"
        b"Response: Error\r\nActionID: %(b)s\r\nMessage: Invalid/unknown command\r\n\r\n"
        b"Event: CoreShowChannelsComplete\r\nActionID: %(l)s\r\nEventList: Complete\r\nListItems: 1\r\n\r\n"
        % {b"l": listed.encode(), b"b": failed.encode()},
    )
    dones = [e for e in events if isinstance(e, ActionDone)]
    assert [d.entry.waiter for d in dones] == ["list", "bad", "list"]
    assert dones[0].outcome is None and dones[0].response is not None  # the list started: callback only
    assert isinstance(dones[1].outcome, ActionError)
    result = dones[2].outcome
    assert isinstance(result, ActionResult) and [e["channel"] for e in result.events] == ["A"]
    assert sum(len(e.frames) for e in events if isinstance(e, FramesReceived)) == 4
    assert session.pending_actions == 0


def test_the_same_action_id_twice_in_flight_is_refused() -> None:
    session = logged_in()
    session.send({"Action": "Ping", "ActionID": "same"}, T0, waiter=1)
    with pytest.raises(ValueError, match="same"):
        session.send({"Action": "Ping", "ActionID": "same"}, T0, waiter=2)


def test_action_timeout_is_a_deadline() -> None:
    session = logged_in()
    action_id = session.send({"Action": "Originate"}, T0, waiter="w", timeout=5.0)
    assert session.next_deadline() == T0 + 5.0
    session.handle_timeout(T0 + 5.0)
    [done] = session.events_received()
    assert isinstance(done, ActionDone) and isinstance(done.outcome, ActionTimeoutError)
    assert action_id in str(done.outcome) and session.pending_actions == 0
    # a late answer is an ordinary frame
    events = answer(session, b"Response: Success\r\nActionID: %s\r\n\r\n" % action_id.encode(), T0 + 6)
    assert [type(e) for e in events] == [FramesReceived]


def test_cancel_drops_the_entry() -> None:
    session = logged_in()
    action_id = session.send({"Action": "Ping"}, T0, waiter="w")
    assert session.cancel(action_id) and session.pending_actions == 0
    assert not session.cancel(action_id)


# -- keepalive, logoff, close ------------------------------------------------------------------------------


def test_keepalive_ping_after_silence_and_timeout_without_an_answer() -> None:
    session = logged_in(ping_interval=10.0, ping_timeout=2.0)
    last_rx = T0 + 0.1
    assert session.next_deadline() == last_rx + 10.0
    session.handle_timeout(last_rx + 9.9)
    assert sent(session) == []
    session.handle_timeout(last_rx + 10.0)
    [ping] = sent(session)
    assert ping["action"] == "Ping"
    assert session.next_deadline() == last_rx + 12.0
    session.handle_timeout(last_rx + 12.0)
    [timed_out] = session.events_received()
    assert isinstance(timed_out, TimedOut) and "keepalive" in str(timed_out.error)
    assert session.close_expected


def test_any_byte_answers_the_keepalive() -> None:
    session = logged_in(ping_interval=10.0, ping_timeout=2.0)
    session.handle_timeout(T0 + 10.1)
    sent(session)
    answer(session, b"Event: X\r\n", T0 + 11)  # not even a whole frame
    session.handle_timeout(T0 + 12.5)
    assert not session.close_expected and session.next_deadline() == T0 + 21


def test_logoff_then_goodbye_then_eof() -> None:
    session = logged_in(logoff_timeout=2.0)
    session.logoff(T0 + 1)
    assert session.state is SessionState.LOGGING_OFF
    assert [a["action"] for a in sent(session)] == ["Logoff"]
    assert session.next_deadline() == T0 + 3
    answer(session, b"Response: Goodbye\r\nMessage: Thanks for all the fish.\r\n\r\n", T0 + 1.1)
    session.receive_eof()
    assert session.events_received() == [ServerClosed()]
    assert close(session) == [Closed(had_error=False, fatal=False)]


def test_logoff_deadline_closes_without_an_error() -> None:
    session = logged_in(logoff_timeout=2.0)
    session.logoff(T0 + 1)
    session.handle_timeout(T0 + 3)
    assert session.close_expected and session.events_received() == []


def test_logoff_before_the_login_is_answered_waits_for_it_and_writes_the_queue_first() -> None:
    session = make()
    [login] = sent(session)
    queued = [session.send({"Action": "UserEvent", "UserEvent": f"e{i}"}, T0) for i in range(3)]
    session.logoff(T0)
    assert not session.close_expected and sent(session) == []
    with pytest.raises(NotConnectedError):  # nothing new after disconnect()
        session.send({"Action": "Ping"}, T0)
    answer(session, b"Response: Success\r\nActionID: %s\r\n\r\n" % login["actionid"].encode())
    assert [(a["action"], a["actionid"]) for a in sent(session)][:3] == [("UserEvent", q) for q in queued]
    assert session.state is SessionState.LOGGING_OFF


def test_abort_fails_what_was_never_written_with_the_reason() -> None:
    session = make()
    sent(session)
    session.send({"Action": "Ping", "ActionID": "p1"}, T0, waiter="w")
    session.abort("destroy() closed the connection")
    [done, closed] = close(session)
    assert isinstance(done.outcome, NotConnectedError) and "p1" in str(done.outcome)
    assert "never written" in str(done.outcome) and "destroy()" in str(done.outcome)
    assert isinstance(closed, Closed) and not closed.fatal


def test_a_refused_login_fails_the_queued_waiters_with_authentication_error() -> None:
    session = make()
    [login] = sent(session)
    session.send({"Action": "Ping"}, T0, waiter="w1")
    session.send({"Action": "Ping"}, T0, waiter="w2")
    answer(session, b"Response: Error\r\nActionID: %s\r\nMessage: Authentication failed\r\n\r\n" % login["actionid"].encode())
    events = close(session)
    errors = [e.outcome for e in events if isinstance(e, ActionDone)]
    assert len(errors) == 2 and all(isinstance(e, AuthenticationError) for e in errors)
    assert errors[0] is not errors[1]  # one exception per waiter: tracebacks never pile up
    assert isinstance(events[-1], Closed) and events[-1].fatal and isinstance(events[-1].error, AuthenticationError)


def test_a_written_action_fails_with_connection_lost_and_the_cause_chained() -> None:
    session = logged_in()
    session.send({"Action": "Ping"}, T0, waiter="w")
    reset = ConnectionResetError(104, "reset")
    done = next(e for e in close(session, reset) if isinstance(e, ActionDone))
    assert isinstance(done.outcome, ConnectionLostError) and done.outcome.__cause__ is reset


def test_keepalive_waits_while_reading_is_held_back() -> None:
    session = logged_in(ping_interval=1.0, ping_timeout=0.5)
    session.pause_keepalive()
    assert session.next_deadline() is None
    session.handle_timeout(T0 + 100)
    assert sent(session) == [] and not session.close_expected
    session.resume_keepalive(T0 + 100)
    assert session.next_deadline() == T0 + 101  # the silence counts from the resume


def test_a_close_with_actions_in_flight_fails_every_one_of_them() -> None:
    session = logged_in()
    waiters = [f"w{i}" for i in range(100)]
    for w in waiters:
        session.send({"Action": "Ping"}, T0, waiter=w)
    events = close(session, ConnectionResetError(104, "reset"))
    assert isinstance(events[0], Failed) and isinstance(events[0].error, ConnectionResetError)
    dones = [e for e in events if isinstance(e, ActionDone)]
    assert [d.entry.waiter for d in dones] == waiters
    assert all(isinstance(d.outcome, ConnectionLostError) for d in dones)
    assert events[-1] == Closed(had_error=True, fatal=False)
    with pytest.raises(NotConnectedError):
        session.send({"Action": "Ping"}, T0)
    assert session.next_deadline() is None


def test_a_connect_timeout_is_a_timeout_not_an_error() -> None:
    events = close(make(), TimeoutError("timed out"))
    assert isinstance(events[0], TimedOut) and events[-1] == Closed(had_error=False, fatal=False)


def test_eof_inside_a_frame_still_ends_the_session() -> None:
    session = logged_in()
    answer(session, b"Event: Hangup\r\nChannel: PJSIP/1")
    session.receive_eof()
    assert session.events_received() == [ServerClosed()]
    assert close(session)[-1] == Closed(had_error=False, fatal=False)


def test_a_protocol_error_closes_with_an_error() -> None:
    session = logged_in(max_frame_bytes=100)
    events = answer(session, b"Event: X\r\nBig: " + b"v" * 200)
    assert isinstance(events[0], Failed) and isinstance(events[0].error, FrameTooLargeError)
    assert close(session)[-1] == Closed(had_error=True, fatal=False)
    assert answer(session, b"Event: After\r\n\r\n") == []  # nothing after the close


def test_client_state_is_a_str() -> None:
    assert ClientState.CONNECTED == "connected" and str(ClientState.RECONNECT_WAIT) == "reconnect_wait"
    assert f"{ClientState.DISCONNECTED}" == "disconnected"
