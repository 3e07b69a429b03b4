"""Action correlation and result assembly (sans-IO): event lists, command output, errors, timeouts."""

from __future__ import annotations

import itertools
import json
from concurrent.futures import Future

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asterisk_ami.actions import ActionResult, ActionTracker, PendingAction
from asterisk_ami.errors import ActionError, PermissionDeniedError
from asterisk_ami.protocol import AmiProtocol, Frame

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def frames_of(data: bytes) -> list[Frame]:
    return AmiProtocol().receive_data(BANNER + data)


def track(
    action_id: str = "a1", name: str = "Ping", deadline: float | None = None
) -> tuple[ActionTracker, Future[ActionResult]]:
    tracker = ActionTracker()
    future: Future[ActionResult] = Future()
    tracker.add(PendingAction(action_id, name, future, None, deadline))
    return tracker, future


def run(tracker: ActionTracker, frames: list[Frame]) -> ActionResult | ActionError | None:
    outcome = None
    for frame in frames:
        done = tracker.feed(frame)
        if done is not None and done.outcome is not None:
            outcome = done.outcome
    return outcome


EVENT_LIST = (
    b"Response: Success\r\nActionID: a1\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n"
    b"Event: CoreShowChannel\r\nActionID: a1\r\nChannel: Local/100@default-00000001;1\r\n\r\n"
    b"Event: Newexten\r\nChannel: other\r\n\r\n"
    b"Event: CoreShowChannel\r\nActionID: a1\r\nChannel: Local/100@default-00000001;2\r\n\r\n"
    b"Event: CoreShowChannelsComplete\r\nActionID: a1\r\nEventList: Complete\r\nListItems: 2\r\n\r\n"
)


def test_plain_response_completes() -> None:
    tracker, _ = track()
    result = run(tracker, frames_of(b"Response: Success\r\nActionID: a1\r\nPing: Pong\r\n\r\n"))
    assert isinstance(result, ActionResult)
    assert result["ping"] == "Pong"
    assert result.events == [] and result.output == [] and result.complete is None
    assert len(tracker) == 0


def test_event_list_collects_only_its_events() -> None:
    # E12: start response, items with the ActionID, a *Complete event with ListItems
    tracker, _ = track(name="CoreShowChannels")
    frames = frames_of(EVENT_LIST)
    # not complete before the Complete event
    assert run(tracker, frames[:-1]) is None
    result = run(tracker, frames[-1:])
    assert isinstance(result, ActionResult)
    assert [e["channel"] for e in result.events] == ["Local/100@default-00000001;1", "Local/100@default-00000001;2"]
    assert result.complete is not None and result.complete["listitems"] == "2"
    assert result["message"] == "Channels will follow"
    assert len(tracker) == 0


def test_event_list_start_in_other_case() -> None:
    tracker, _ = track(name="FAXSessions")
    data = (
        b"Response: Success\r\nActionID: a1\r\nEventList: Start\r\n\r\n"
        b"Event: FAXSessionsEntry\r\nActionID: a1\r\n\r\n"
        b"Event: FAXSessionsComplete\r\nActionID: a1\r\nEventList: Complete\r\n\r\n"
    )
    result = run(tracker, frames_of(data))
    assert isinstance(result, ActionResult) and len(result.events) == 1


def test_failing_list_action_completes_at_once_with_error() -> None:
    tracker, _ = track(name="Status")
    outcome = run(tracker, frames_of(b"Response: Error\r\nActionID: a1\r\nMessage: No such channel\r\n\r\n"))
    assert isinstance(outcome, ActionError)
    assert "No such channel" in str(outcome)
    assert outcome.frame is not None and outcome.frame["message"] == "No such channel"
    assert len(tracker) == 0


def test_permission_denied_has_its_own_error_with_the_action_name() -> None:
    tracker, _ = track(name="Originate")
    error = run(tracker, frames_of(b"Response: Error\r\nActionID: a1\r\nMessage: Permission denied\r\n\r\n"))
    assert isinstance(error, PermissionDeniedError) and isinstance(error, ActionError)
    assert error.action == "Originate"
    assert str(error) == "Originate: Permission denied"
    assert error.frame is not None and error.frame["message"] == "Permission denied"
    assert error.result is not None and not error.result.ok


def test_other_errors_stay_plain_action_errors() -> None:
    tracker, _ = track(name="Hangup")
    error = run(tracker, frames_of(b"Response: Error\r\nActionID: a1\r\nMessage: No such channel\r\n\r\n"))
    assert type(error) is ActionError and str(error) == "Hangup: No such channel"


def test_originate_response_event_is_not_taken_for_the_response() -> None:
    tracker, _ = track(name="Originate")
    event = frames_of(b"Event: OriginateResponse\r\nActionID: a1\r\nResponse: Failure\r\nReason: 0\r\n\r\n")
    assert run(tracker, event) is None
    assert "a1" in tracker


def test_other_clients_action_ids_are_ignored() -> None:
    tracker, _ = track()
    assert run(tracker, frames_of(b"Response: Success\r\nActionID: someone-else-1\r\n\r\n")) is None
    assert "a1" in tracker


def test_command_output_14_plus() -> None:
    tracker, _ = track(name="Command")
    data = b"Response: Success\r\nActionID: a1\r\nMessage: Command output follows\r\nOutput: Asterisk 22\r\n\r\n"
    result = run(tracker, frames_of(data))
    assert isinstance(result, ActionResult) and result.output == ["Asterisk 22"]


def test_command_output_pre14() -> None:
    tracker, _ = track(name="Command")
    data = b"Response: Follows\r\nPrivilege: Command\r\nActionID: a1\r\nAsterisk 11\nline 2\n--END COMMAND--\r\n\r\n"
    result = run(tracker, frames_of(data))
    assert isinstance(result, ActionResult) and result.output == ["Asterisk 11", "line 2"]


def test_command_error_keeps_output() -> None:
    tracker, _ = track(name="Command")
    data = (
        b"Response: Error\r\nActionID: a1\r\nMessage: Command output follows\r\n"
        b"Output: No such command 'foo' (type 'core show help foo' for other possible commands)\r\n\r\n"
    )
    outcome = run(tracker, frames_of(data))
    assert isinstance(outcome, ActionError)
    assert outcome.result.output == ["No such command 'foo' (type 'core show help foo' for other possible commands)"]
    assert "No such command 'foo'" in str(outcome)


def test_expire_and_deadlines() -> None:
    tracker, _ = track(deadline=10.0)
    tracker.add(PendingAction("a2", "Ping", None, None, 20.0))
    tracker.add(PendingAction("a3", "Ping", None, None, None))
    assert tracker.next_deadline() == 10.0
    assert tracker.expire(9.9) == []
    assert [e.action_id for e in tracker.expire(15.0)] == ["a1"]
    assert tracker.next_deadline() == 20.0
    # a late response for an expired action is dropped cleanly
    assert run(tracker, frames_of(b"Response: Success\r\nActionID: a1\r\n\r\n")) is None
    assert [e.action_id for e in tracker.drain()] == ["a2", "a3"]
    assert len(tracker) == 0 and tracker.next_deadline() is None


def test_result_to_dict_is_json_ready() -> None:
    tracker, _ = track(name="CoreShowChannels")
    result = run(tracker, frames_of(EVENT_LIST))
    assert isinstance(result, ActionResult)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["response"]["response"] == "Success"
    assert len(data["events"]) == 2 and data["complete"]["event"] == "CoreShowChannelsComplete"


unrelated = st.sampled_from(
    [
        b"Event: Newexten\r\nChannel: x\r\n\r\n",
        b"Event: OriginateResponse\r\nActionID: other-7\r\nResponse: Success\r\n\r\n",
        b"Response: Success\r\nActionID: a1\r\nEventList: start\r\n\r\n",  # a duplicate start is ignored
        b"Response: Success\r\nActionID: other-7\r\n\r\n",
        b"Event: CoreShowChannel\r\nActionID: other-7\r\n\r\n",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(unrelated, max_size=12), st.data())
def test_event_list_with_random_interleavings_and_splits(noise: list[bytes], data: st.DataObject) -> None:
    own = [
        b"Response: Success\r\nActionID: a1\r\nEventList: start\r\n\r\n",
        b"Event: Status\r\nActionID: a1\r\nChannel: c1\r\n\r\n",
        b"Event: Status\r\nActionID: a1\r\nChannel: c2\r\n\r\n",
        b"Event: StatusComplete\r\nActionID: a1\r\nEventList: Complete\r\nListItems: 2\r\n\r\n",
    ]
    stream: list[bytes] = []
    pieces = list(noise)
    for item in own:
        k = data.draw(st.integers(0, len(pieces)))
        stream += pieces[:k]
        pieces = pieces[k:]
        stream.append(item)
    stream += pieces
    blob = BANNER + b"".join(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=8)))
    points = [0, *cuts, len(blob)]
    proto = AmiProtocol()
    tracker, _ = track(name="Status")
    outcome = None
    for a, b in itertools.pairwise(points):
        outcome = run(tracker, proto.receive_data(blob[a:b])) or outcome
    assert isinstance(outcome, ActionResult)
    assert [e["channel"] for e in outcome.events] == ["c1", "c2"]


@pytest.mark.parametrize("word", ["Success", "Goodbye", "Pong", "Follows"])
def test_non_error_responses_are_ok(word: str) -> None:
    assert ActionResult({"response": word}).ok
    assert not ActionResult({"response": "Error"}).ok
