"""Property tests of action-result assembly (``ActionTracker`` fed by ``AmiProtocol``), sans-IO.

Random actions (plain answers, errors, event lists, Command output in both Asterisk formats) are
rendered to the bytes Asterisk writes, interleaved at random with unrelated events and other actions'
frames (order within each action kept), and cut at random byte offsets. Each tracked action must end
with exactly its own response, events and output lines, in order.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asterisk_ami.actions import ActionResult, ActionTracker, PendingAction
from asterisk_ami.errors import ActionError
from asterisk_ami.protocol import AmiProtocol, Frame

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
END_COMMAND = "--END COMMAND--"

# header values: any text without CR, LF or NUL (Asterisk 14+ escapes those), multibyte included
value_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=12).filter(
    lambda s: END_COMMAND not in s
)
# a legacy command body line is written verbatim: it must not hold the end marker
body_line = value_text


def encode(headers: list[tuple[str, str]]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers).encode() + b"\r\n"


def parsed(headers: list[tuple[str, str]]) -> Frame:
    """The frame the parser must give for distinct ``headers``."""
    return {k.lower().replace("-", ""): v for k, v in headers}


@dataclass
class Action:
    """One action's answer: the frames (bytes) Asterisk writes, and the result they must assemble to."""

    action_id: str
    kind: str
    frames: list[bytes] = field(default_factory=list)
    response: Frame = field(default_factory=dict)
    events: list[Frame] = field(default_factory=list)
    complete: Frame | None = None
    output: list[str] = field(default_factory=list)


@st.composite
def actions(draw: st.DrawFn, action_id: str) -> Action:
    kind = draw(st.sampled_from(["plain", "error", "list", "command", "legacy", "command_error"]))
    a = Action(action_id, kind)
    if kind in ("plain", "error"):
        headers = [("Response", "Success" if kind == "plain" else "Error"), ("ActionID", action_id)]
        headers.append(("Message", draw(value_text)))
        a.frames.append(encode(headers))
        a.response = parsed(headers)
    elif kind == "list":
        start = [
            ("Response", "Success"),
            ("ActionID", action_id),
            ("EventList", draw(st.sampled_from(["start", "Start"]))),
        ]
        start.append(("Message", "Channels will follow"))
        a.frames.append(encode(start))
        a.response = parsed(start)
        for n, data in enumerate(draw(st.lists(value_text, max_size=6))):
            item = [("Event", "CoreShowChannel"), ("ActionID", action_id), ("Item", str(n)), ("Data", data)]
            a.frames.append(encode(item))
            a.events.append(parsed(item))
        end = [
            ("Event", "CoreShowChannelsComplete"),
            ("ActionID", action_id),
            ("EventList", "Complete"),
            ("ListItems", str(len(a.events))),
        ]
        a.frames.append(encode(end))
        a.complete = parsed(end)
    elif kind in ("command", "command_error"):
        lines = draw(st.lists(value_text, max_size=6))
        headers = [
            ("Response", "Success" if kind == "command" else "Error"),
            ("ActionID", action_id),
            ("Message", "Command output follows"),
        ]
        headers += [("Output", line) for line in lines]
        a.frames.append(encode(headers))
        a.response = parsed(headers[:3])
        a.output = lines
    else:  # legacy: Response: Follows, a bare-LF body, --END COMMAND--
        lines = draw(st.lists(body_line, max_size=6))
        head = "Response: Follows\r\nPrivilege: Command\r\n" + f"ActionID: {action_id}\r\n"
        body = "".join(line + "\n" for line in lines)
        a.frames.append((head + body + END_COMMAND + "\r\n\r\n").encode())
        a.response = {"response": "Follows", "privilege": "Command", "actionid": action_id}
        a.output = lines
    return a


@st.composite
def noise(draw: st.DrawFn) -> bytes:
    """A frame for no tracked action: an unrelated event, another client's response or list item."""
    kind = draw(st.sampled_from(["event", "response", "list_item", "originate"]))
    other = f"other-{draw(st.integers(0, 3))}"
    if kind == "event":
        return encode([("Event", "Newexten"), ("Channel", draw(value_text)), ("AppData", draw(value_text))])
    if kind == "response":
        return encode([("Response", "Success"), ("ActionID", other), ("Message", draw(value_text))])
    if kind == "list_item":
        return encode([("Event", "CoreShowChannel"), ("ActionID", other), ("EventList", "Complete")])
    return encode([("Event", "OriginateResponse"), ("ActionID", other), ("Response", "Failure")])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Action], bytes, list[int]]:
    tracked = [draw(actions(f"a{n}")) for n in range(draw(st.integers(1, 5)))]
    streams: list[list[bytes]] = [list(a.frames) for a in tracked]
    streams += [[draw(noise())] for _ in range(draw(st.integers(0, 8)))]
    # a random merge that keeps each stream's own order
    out: list[bytes] = []
    while any(streams):
        live = [s for s in streams if s]
        out.append(draw(st.sampled_from(live)).pop(0))
    data = BANNER + b"".join(out)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=12))))
    return tracked, data, cuts


def feed(tracker: ActionTracker, data: bytes, cuts: list[int]) -> list[Frame]:
    proto = AmiProtocol()
    frames: list[Frame] = []
    last = 0
    for cut in [*cuts, len(data)]:
        frames += proto.receive_data(data[last:cut])
        last = cut
    assert proto.pending_bytes == 0
    for frame in frames:
        done = tracker.feed(frame)
        if done is None or done.outcome is None:
            continue
        future = done.entry.waiter
        assert future is not None and not future.done()
        if isinstance(done.outcome, ActionError):
            future.set_exception(done.outcome)
        else:
            future.set_result(done.outcome)
    return frames


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_each_action_gets_exactly_its_own_frames(scenario: tuple[list[Action], bytes, list[int]]) -> None:
    tracked, data, cuts = scenario
    tracker = ActionTracker()
    futures: dict[str, Future[ActionResult]] = {}
    for a in tracked:
        future: Future[ActionResult] = Future()
        futures[a.action_id] = future
        tracker.add(PendingAction(a.action_id, "Command" if "command" in a.kind else a.kind, future, None, None))
    frames = feed(tracker, data, cuts)
    assert len(tracker) == 0
    # every frame came out whole: nothing lost or merged by the cuts
    assert len(frames) == data.count(b"\r\n\r\n")
    for a in tracked:
        future = futures[a.action_id]
        assert future.done()
        if a.kind in ("error", "command_error"):
            exc = future.exception(0)
            assert isinstance(exc, ActionError)
            assert exc.frame is not None and exc.frame["actionid"] == a.action_id
            result = exc.result
        else:
            result = future.result(0)
        assert isinstance(result, ActionResult)
        assert {k: v for k, v in result.items() if k != "output"} == a.response
        assert result.events == a.events
        assert result.complete == a.complete
        assert result.output == a.output


@settings(max_examples=200, deadline=None)
@given(
    st.lists(value_text, max_size=8),
    st.lists(st.integers(0, 400), max_size=10),
    st.booleans(),
)
def test_command_output_both_formats_same_lines(lines: list[str], cuts: list[int], legacy: bool) -> None:
    if legacy:
        body = "".join(line + "\n" for line in lines)
        data = f"Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\n{body}{END_COMMAND}\r\n\r\n".encode()
    else:
        head = "Response: Success\r\nActionID: c1\r\nMessage: Command output follows\r\n"
        data = (head + "".join(f"Output: {line}\r\n" for line in lines) + "\r\n").encode()
    data = BANNER + data
    tracker = ActionTracker()
    future: Future[ActionResult] = Future()
    tracker.add(PendingAction("c1", "Command", future, None, None))
    feed(tracker, data, sorted({c for c in cuts if c <= len(data)}))
    assert future.result(0).output == lines
