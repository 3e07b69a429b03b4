"""Server-side event filters: the expressions, the session's rules, both shells against FakeAsterisk's
Filter (which applies them as Asterisk does), and ``asterisk-ami events --event``."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from asterisk_ami import AsteriskAmi, FilterRejected, FramesReceived, LoggedIn, LoginActionsWanted
from asterisk_ami.errors import EventFilterError, HeaderInjectionError, InvalidMessageError, MessageTooLargeError
from asterisk_ami.filters import FilterSet, filter_message, name_filter
from asterisk_ami.options import AmiOptions
from asterisk_ami.protocol import ActionIdGenerator, AmiProtocol
from asterisk_ami.session import AmiSession, SessionState
from asterisk_ami.testing import FakeAsterisk

from .cli_helpers import args_for, run_cli, start_cli
from .helpers import MakeClient, Recorder, wait_until

T0 = 1000.0


# -- the expressions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "headers"),
    [
        ("Event: Newchannel", {"Filter": "Event: Newchannel"}),
        ("!Channel: DAHDI/", {"Filter": "!Channel: DAHDI/"}),
        ("name(Hangup)", {"MatchCriteria": "name(Hangup)", "Filter": ""}),
        (
            "action(exclude),header(Channel),method(starts_with) = Local/",
            {"MatchCriteria": "action(exclude),header(Channel),method(starts_with)", "Filter": "Local/"},
        ),
        ("eventfilter(name(Newchannel)) =", {"MatchCriteria": "name(Newchannel)", "Filter": ""}),  # manager.conf
        (
            "eventfilter(header(Channel), method(regex)) = (PJ)?SIP/(james|jim)-",
            {"MatchCriteria": "header(Channel),method(regex)", "Filter": "(PJ)?SIP/(james|jim)-"},
        ),
        (  # a value that ends in ")" after a manager.conf line's own parentheses
            "eventfilter(action(include),header(Channel),method(regex)) = ^(PJSIP|SIP)",
            {"MatchCriteria": "action(include),header(Channel),method(regex)", "Filter": "^(PJSIP|SIP)"},
        ),
    ],
)
def test_both_syntaxes_become_filter_actions(expression: str, headers: dict[str, str]) -> None:
    assert filter_message(expression) == {"Action": "Filter", "Operation": "Add", **headers}


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("", ValueError),
        ("   ", ValueError),
        ("name()", ValueError),
        ("method(fuzzy) = x", ValueError),
        ("action(maybe),name(X)", ValueError),
        ("name(A),name(B)", ValueError),
        ("name(A) header(B)", ValueError),
        ("Event: A\r\nAction: Logoff", HeaderInjectionError),
        ("Event: " + "x" * 1100, MessageTooLargeError),  # Asterisk reads 1024 bytes a line: refused now
        ("eventfilter(name(A)) junk", ValueError),
    ],
)
def test_a_bad_expression_is_refused_when_the_client_is_made(expression: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        AsteriskAmi(event_filters=[expression])


def test_a_filter_the_encoding_cannot_write_is_refused_when_the_client_is_made() -> None:
    with pytest.raises(InvalidMessageError, match="cannot be written in ascii"):
        AsteriskAmi(event_filters=["Event: caf\u00e9"], ami_encoding="ascii")


def test_event_filters_is_a_list_not_one_string() -> None:
    with pytest.raises(TypeError):
        AsteriskAmi(event_filters="Event: Hangup")
    assert AmiOptions(event_filters=["Event: A", "name(B)"]).event_filters == ("Event: A", "name(B)")


def allows(filters: list[tuple[str, str]], event: str, **headers: str) -> bool:
    fs = FilterSet()
    for criteria, value in filters:
        assert fs.add(criteria, value) is None
    pairs = [("Event", event), *headers.items()]
    payload = "".join(f"{k}: {v}\r\n" for k, v in pairs) + "\r\n"
    return fs.allows(event, pairs, payload)


def test_the_rules_of_asterisks_filters() -> None:
    assert allows([], "Anything")  # no filters: everything
    inc = [("", "Event: Newchannel")]
    assert allows(inc, "Newchannel") and not allows(inc, "Hangup")  # include only
    exc = [("", "!Channel: DAHDI/")]
    assert allows(exc, "Hangup", Channel="PJSIP/1") and not allows(exc, "Hangup", Channel="DAHDI/1")
    both = [
        ("name(Newchannel)", ""),
        ("name(Hangup)", ""),
        ("action(exclude),header(Channel),method(starts_with)", "Local/"),
    ]
    assert allows(both, "Hangup", Channel="PJSIP/1")
    assert not allows(both, "Hangup", Channel="Local/x@y;1")  # included, then excluded
    assert not allows(both, "VarSet", Channel="PJSIP/1")
    assert allows([("header(Channel),method(regex)", "(PJ)?SIP/(james|jim)-")], "X", Channel="PJSIP/jim-01")
    assert not allows([("header(Channel),method(exact)", "PJSIP/1")], "X", Channel="PJSIP/10")
    assert not allows([("header(Uniqueid)", "")], "X", Channel="PJSIP/1")  # the header must be there
    fs = FilterSet()
    assert fs.add("", "Event: (((") == "Filter did not compile.  Check the syntax of the filter given."
    assert fs.add("bogus(x)", "") == "Filter was formatted incorrectly.  Check the syntax of the filter given."


def test_a_name_filter_lets_exactly_that_name_through_in_any_case() -> None:
    legacy = [("", name_filter("hangup"))]  # legacy syntax: every Asterisk version has it
    assert allows(legacy, "Hangup") and allows(legacy, "HANGUP")
    assert not allows(legacy, "HangupRequest") and not allows(legacy, "SoftHangupRequest")
    assert not allows(legacy, "UserEvent", UserEvent="Event: Hangup")


# -- the session -------------------------------------------------------------------------------------------


def sent(session: AmiSession) -> list[dict[str, Any]]:
    data = session.data_to_send()
    return AmiProtocol().receive_data(b"Response: x\r\n\r\n" + data)[1:] if data else []  # type: ignore[return-value]


def logged_in_session(**options: Any) -> tuple[AmiSession, list[dict[str, Any]]]:
    opts = AmiOptions(username="admin", password="secret", **options)
    session = AmiSession(opts, T0, ActionIdGenerator("t"), login_hook=True)
    sent(session)  # the Login
    queued = session.send({"Action": "Ping"}, T0)
    session.receive_data(b"Response: Success\r\nActionID: t-1\r\n\r\n", T0)
    assert [type(e) for e in session.events_received()] == [FramesReceived, LoggedIn, LoginActionsWanted]
    session.login_actions([{"Action": "CoreShowChannels"}], T0)
    actions = sent(session)
    assert actions[-1]["actionid"] == queued
    return session, actions


def test_filters_go_right_after_the_login_before_login_actions_and_queued_ones() -> None:
    session, actions = logged_in_session(event_filters=["Event: Hangup", "name(Newchannel)"])
    assert [(a["action"], a.get("filter"), a.get("matchcriteria")) for a in actions] == [
        ("Filter", "Event: Hangup", None),
        ("Filter", "", "name(Newchannel)"),
        ("CoreShowChannels", None, None),
        ("Ping", None, None),
    ]
    assert all(a["operation"] == "Add" for a in actions[:2])
    # accepted: nothing to report beyond the frames
    session.receive_data(
        b"Response: Success\r\nActionID: %s\r\nMessage: Success\r\n\r\n" % actions[0]["actionid"].encode(), T0
    )
    assert [type(e) for e in session.events_received()] == [FramesReceived]


def test_a_refused_filter_is_reported_and_the_session_stays_open(caplog: pytest.LogCaptureFixture) -> None:
    session, actions = logged_in_session(event_filters=["Event: (((", "name(Hangup)"])
    refusal = b"Response: Error\r\nActionID: %s\r\nMessage: Filter did not compile.  Check the syntax of the filter given.\r\n\r\n"
    with caplog.at_level(logging.ERROR, logger="asterisk_ami"):
        session.receive_data(refusal % actions[0]["actionid"].encode(), T0)
    frames, rejected = session.events_received()
    assert isinstance(frames, FramesReceived) and isinstance(rejected, FilterRejected)
    error = rejected.error
    assert isinstance(error, EventFilterError) and error.expression == "Event: ((("
    assert "did not compile" in str(error) and error.frame is not None
    assert "refused the event filter 'Event: ((('" in caplog.text
    assert session.state is SessionState.OPEN
    # the other filter got no answer within connect_timeout: that is reported too
    session.handle_timeout(T0 + 11)
    [late] = session.events_received()
    assert isinstance(late, FilterRejected) and late.error.expression == "name(Hangup)"
    assert "no answer" in str(late.error) and session.state is SessionState.OPEN


def test_a_refusal_without_a_message_still_says_why() -> None:
    session, actions = logged_in_session(event_filters=["name(Hangup)"])
    session.receive_data(b"Response: Error\r\nActionID: %s\r\n\r\n" % actions[0]["actionid"].encode(), T0)
    [rejected] = [e for e in session.events_received() if isinstance(e, FilterRejected)]
    assert str(rejected.error).endswith("'name(Hangup)': Response: Error")


def test_a_filter_in_flight_when_the_connection_drops_is_not_reported() -> None:
    session, _ = logged_in_session(event_filters=["Event: Hangup"])
    session.connection_lost(None)
    assert not [e for e in session.events_received() if isinstance(e, FilterRejected)]


# -- both shells against FakeAsterisk ----------------------------------------------------------------------


@pytest.fixture
def make_client(make_any_client: MakeClient) -> MakeClient:
    return make_any_client


def names_received(rec: Recorder) -> list[str]:
    return [f["event"] for f in rec.frames if f.get("event") in ("Hangup", "Newchannel", "VarSet", "Marker")]


def push_round(fake: FakeAsterisk, tag: str) -> None:
    fake.push_event("VarSet", Channel="PJSIP/1", Variable="X", Value=tag)
    fake.push_event("Newchannel", Channel=f"PJSIP/{tag}")
    fake.push_event("Newchannel", Channel=f"Local/{tag}@x;1")
    fake.push_event("Hangup", Channel=f"PJSIP/{tag}")
    fake.push_event("Marker")  # let through by the last filter: the round is over when it arrives


def test_filtered_events_never_arrive_also_after_a_reconnect(fake: FakeAsterisk, make_client: MakeClient) -> None:
    filters = [
        "name(Newchannel)",
        "Event: Hangup",
        "action(exclude),header(Channel),method(starts_with) = Local/",
        "name(Marker)",
    ]
    ami = make_client(event_filters=filters, reconnect=True, reconnect_after=20)
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    fake.wait_for(lambda: sum(1 for a in fake.actions if a.get("action") == "Filter") == 4)
    ami.request({"Action": "Ping"}, timeout=5)  # the filters were answered before this
    push_round(fake, "a")
    rec.wait_frames(lambda f: f.get("event") == "Marker")
    assert names_received(rec) == ["Newchannel", "Hangup", "Marker"]
    assert [f["channel"] for f in rec.frames if f.get("event") == "Newchannel"] == ["PJSIP/a"]
    rec.frames.clear()
    assert fake.drop() == 1  # a new session: Asterisk forgot the filters, the client writes them again
    rec.wait_for("ami_login", n=2)
    fake.wait_for(lambda: sum(1 for a in fake.actions if a.get("action") == "Filter") == 8)
    ami.request({"Action": "Ping"}, timeout=5)
    push_round(fake, "b")
    rec.wait_frames(lambda f: f.get("event") == "Marker")
    assert names_received(rec) == ["Newchannel", "Hangup", "Marker"]
    assert rec.count("ami_socket_error") == 0


def test_a_refused_filter_is_an_ami_socket_error_and_the_connection_stays(
    fake: FakeAsterisk, make_client: MakeClient
) -> None:
    ami = make_client(event_filters=["Event: (((", "name(Hangup)"])
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_socket_error")
    [(error,)] = rec.args("ami_socket_error")
    assert isinstance(error, EventFilterError) and error.expression == "Event: ((("
    assert "did not compile" in str(error)
    assert ami.connected and ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"
    time.sleep(0.1)
    assert rec.count("ami_socket_close") == 0
    fake.push_event("Hangup", Channel="PJSIP/1")
    fake.push_event("VarSet", Channel="PJSIP/1")  # the good filter still holds
    fake.push_event("Hangup", Channel="PJSIP/2")
    rec.wait_frames(lambda f: f.get("channel") == "PJSIP/2")
    assert [f["event"] for f in rec.frames if f.get("event") in ("Hangup", "VarSet")] == ["Hangup", "Hangup"]


# -- the command line --------------------------------------------------------------------------------------


def test_events_with_event_names_asks_asterisk_for_only_those(fake: FakeAsterisk, secret: str) -> None:
    proc = start_cli(
        "events", *args_for(fake), "--event", "hangup", "--event", "Newchannel", "--count", "2", secret=secret
    )
    try:
        fake.wait_for_clients(1, timeout=20)
        session = fake.sessions[0]
        wait_until(lambda: len(session.filters.includes) == 2, 10, "the two filters")
        # Asterisk (here FakeAsterisk) filters: these are never sent to the command
        assert fake.push_event("VarSet", Channel="PJSIP/1") == 0
        assert fake.push_event("HangupRequest", Channel="PJSIP/1") == 0
        assert fake.push_event("Newchannel", Channel="PJSIP/1") == 1
        assert fake.push_event("Hangup", Channel="PJSIP/1") == 1
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert [json.loads(line)["event"] for line in out.splitlines()] == ["Newchannel", "Hangup"]
    filters = [a["filter"] for a in fake.actions if a.get("action") == "Filter"]
    assert filters == [name_filter("hangup"), name_filter("Newchannel")]


@pytest.mark.parametrize("name", ["a\nb", " "])
def test_a_bad_event_name_is_a_usage_error(name: str) -> None:
    done = run_cli("events", "--host", "127.0.0.1", "--port", "1", "--event", name)
    assert done.code == 2 and len(done.err.strip().splitlines()) == 1 and "Traceback" not in done.err
