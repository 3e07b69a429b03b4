"""The relay's wire format on NATS (stable; README "Many PBXes: the relay" documents it).

Subjects, for a PBX named ``<pbx>`` (operator-chosen, ``[A-Za-z0-9_-]``):

* ``ami.<pbx>.ev``: a batch of event frames, in order: the payload is a JSON array of frames, each the same
  JSON object as one line of ``asterisk-ami events``;
* ``ami.<pbx>.ev.<Event>``: with ``per_frame``, one frame per message, the payload that one JSON object;
* ``ami.<pbx>.ctl``: control messages, a JSON object with ``type`` ``connected`` or ``disconnected``;
* ``ami.<pbx>.action``: actions, by request/reply (never captured by the stream).

Headers of every stream message: ``Ami-Version`` (``1``), ``Ami-Pbx``, ``Ami-Epoch`` (a number that grows
with every AMI login of that PBX), ``Ami-Seq`` (the first frame's sequence number; for a control message
the last number given so far in that epoch, 0 for ``connected``), ``Ami-Seq-Last`` (the last frame's
number; numbers grow by one per frame within an epoch, from 1) and ``Nats-Msg-Id``
(``<pbx>:<epoch>:<first>-<last>``, or ``<pbx>:<epoch>:<type>`` for control messages), so that a publish
retried after a NATS reconnect is stored once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..actions import ActionResult
from ..errors import (
    ActionError,
    ActionTimeoutError,
    AmiError,
    ConnectionLostError,
    InvalidMessageError,
    NotConnectedError,
)
from ..protocol import Frame
from .errors import ActionNotAllowedError, RelayError

VERSION = "1"
PREFIX = "ami"
# header names
H_VERSION = "Ami-Version"
H_PBX = "Ami-Pbx"
H_EPOCH = "Ami-Epoch"
H_SEQ = "Ami-Seq"
H_SEQ_LAST = "Ami-Seq-Last"
H_MSG_ID = "Nats-Msg-Id"
H_AFTER_SEQ = "Ami-After-Seq"  # on an action's reply: the last event number read before its response
H_TIMEOUT = "Ami-Timeout"  # on an action request: seconds (default: the relay's action_timeout)
H_UNTIL_EVENT = "Ami-Until-Event"  # on an action request: complete with this event (Originate's)

_SUBJECT_TOKEN = re.compile(r"[^A-Za-z0-9_-]")
ENCODER = json.JSONEncoder(ensure_ascii=False)


def events_subject(pbx: str) -> str:
    return f"{PREFIX}.{pbx}.ev"


def frame_subject(pbx: str, event: object) -> str:
    """``ami.<pbx>.ev.<Event>``; characters a subject token cannot hold become ``_``."""
    name = _SUBJECT_TOKEN.sub("_", event) if isinstance(event, str) and event else "_"
    return f"{PREFIX}.{pbx}.ev.{name}"


def control_subject(pbx: str) -> str:
    return f"{PREFIX}.{pbx}.ctl"


def action_subject(pbx: str) -> str:
    return f"{PREFIX}.{pbx}.action"


def follow_subject(pbx: str) -> str:
    """What a consumer of ``pbx`` (``*``: every PBX) filters the stream on."""
    return f"{PREFIX}.{pbx}.>"


def stream_subjects() -> list[str]:
    """What the stream captures: events and control messages, never ``ami.*.action``."""
    return [f"{PREFIX}.*.ev", f"{PREFIX}.*.ev.>", f"{PREFIX}.*.ctl"]


def pbx_of(subject: str) -> str:
    return subject.split(".", 2)[1]


def is_control(subject: str) -> bool:
    return subject.endswith(".ctl")


def event_headers(pbx: str, epoch: int, first: int, last: int) -> dict[str, str]:
    e = str(epoch)
    return {
        H_MSG_ID: f"{pbx}:{e}:{first}-{last}",
        H_VERSION: VERSION,
        H_PBX: pbx,
        H_EPOCH: e,
        H_SEQ: str(first),
        H_SEQ_LAST: str(last),
    }


def control_headers(pbx: str, epoch: int, seq: int, name: str) -> dict[str, str]:
    """``name``: the message id's last part (the control type, ``dropped-<first>`` for a drop)."""
    e = str(epoch)
    return {H_MSG_ID: f"{pbx}:{e}:{name}", H_VERSION: VERSION, H_PBX: pbx, H_EPOCH: e, H_SEQ: str(seq)}


def encode(value: Any) -> bytes:
    return ENCODER.encode(value).encode("utf-8")


# -- actions: request and reply ---------------------------------------------------------------------

# the errors a reply can carry, by name: the requester raises the same type
_ERRORS: dict[str, type[AmiError]] = {
    "ActionError": ActionError,
    "ActionNotAllowedError": ActionNotAllowedError,
    "ActionTimeoutError": ActionTimeoutError,
    "NotConnectedError": NotConnectedError,
    "ConnectionLostError": ConnectionLostError,
    "InvalidMessageError": InvalidMessageError,
    "RelayError": RelayError,
}


def result_reply(result: ActionResult, action_id: str | None) -> dict[str, Any]:
    """An ``ActionResult`` as the reply's JSON, the requester's ActionID put back (or removed)."""
    data = result.to_dict()
    return {"ok": True, **_restore(data, action_id)}


def error_reply(error: BaseException, action_id: str | None) -> dict[str, Any]:
    """An error as the reply's JSON (an ``ActionError`` keeps its result)."""
    name = next((n for n, cls in _ERRORS.items() if type(error) is cls), None)
    if name is None:
        name = next((n for n, cls in _ERRORS.items() if isinstance(error, cls)), "RelayError")
    reply: dict[str, Any] = {"ok": False, "error": {"type": name, "message": str(error)}}
    result = getattr(error, "result", None)
    if isinstance(result, ActionResult):
        reply.update(_restore(result.to_dict(), action_id))
    elif isinstance(error, ActionError) and isinstance(error.frame, dict):
        reply["response"] = _restore_frame(error.frame, action_id)
    return reply


def _restore(data: dict[str, Any], action_id: str | None) -> dict[str, Any]:
    return {
        "response": _restore_frame(data["response"], action_id),
        "events": [_restore_frame(e, action_id) for e in data["events"]],
        "complete": None if data["complete"] is None else _restore_frame(data["complete"], action_id),
        "output": data["output"],
    }


def _restore_frame(frame: Mapping[str, Any], action_id: str | None) -> dict[str, Any]:
    if "actionid" not in frame:
        return dict(frame)
    if action_id is None:
        return {k: v for k, v in frame.items() if k != "actionid"}
    return {k: (action_id if k == "actionid" else v) for k, v in frame.items()}


def decode_reply(data: bytes) -> tuple[ActionResult | None, AmiError | None]:
    """A reply's JSON -> (the result, None) or (the result when the error has one, the error to raise)."""
    try:
        reply = json.loads(data)
        if not isinstance(reply, dict):
            raise ValueError("not an object")
    except ValueError:
        return None, RelayError("the relay's reply is not JSON")
    result = None
    if isinstance(reply.get("response"), dict):
        result = ActionResult(reply["response"])
        result.events = [e for e in reply.get("events") or [] if isinstance(e, dict)]
        complete = reply.get("complete")
        result.complete = complete if isinstance(complete, dict) else None
        output = reply.get("output")
        if isinstance(output, list):
            result.output = [str(line) for line in output]
    if reply.get("ok"):
        if result is None:
            return None, RelayError("the relay's reply has no response")
        return result, None
    error: dict[str, Any] = reply["error"] if isinstance(reply.get("error"), dict) else {}
    cls = _ERRORS.get(str(error.get("type")), RelayError)
    message = str(error.get("message") or "the relay refused the action")
    if issubclass(cls, ActionError):
        return result, cls(message, dict(result) if result is not None else None, result)
    return None, cls(message)


def reply_frames(result: ActionResult) -> list[Frame]:
    """The frames of a result in the order Asterisk sent them: response, list events, the closing event."""
    frames: list[Frame] = [dict(result), *result.events]
    if result.complete is not None:
        frames.append(result.complete)
    return frames
