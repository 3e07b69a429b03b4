"""``originate()``, sans-IO: the ``Originate`` action with ``Async: true``, and its result.

With ``Async: true`` Asterisk answers the action at once and reports the call's outcome later in an
``OriginateResponse`` event that carries the action's ActionID; both shells send the action with
``until_event="OriginateResponse"`` so that the correlation is the tracker's (actions.py), and turn the
``ActionResult`` into an :class:`OriginateResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .actions import ActionResult

#: Asterisk's reasons (the last control frame, ``AST_CONTROL_*``, the originated channel received)
REASONS = {
    0: "failure",  # no channel: unknown technology, unreachable, no such extension
    1: "hangup",  # the far end hung up (rejected)
    2: "ring",
    3: "no answer",  # it rang until the timeout
    4: "answered",
    5: "busy",
    8: "congestion",
}
EVENT = "OriginateResponse"
DEFAULT_RING_TIMEOUT = 30.0  # Asterisk's own default for Originate's Timeout
RESULT_MARGIN = 10.0  # seconds the result may take past the ring timeout (dialplan, slow channels)


@dataclass(frozen=True, slots=True)
class OriginateResult:
    """How an originated call went: ``success`` (answered), Asterisk's ``reason`` code and its name,
    the ``uniqueid`` and ``channel`` of the originated channel, and the raw ``response`` and ``event``."""

    success: bool
    reason: int
    reason_name: str
    uniqueid: str | None
    channel: str | None
    response: Mapping[str, Any]
    event: Mapping[str, Any]

    @classmethod
    def from_result(cls, result: ActionResult) -> OriginateResult:
        """The outcome told by an ``ActionResult`` whose ``complete`` is the ``OriginateResponse``."""
        event = result.complete or {}
        try:
            reason = int(str(event.get("reason", "0")))
        except ValueError:
            reason = 0
        uniqueid = event.get("uniqueid")
        return cls(
            success=str(event.get("response", "")).lower() == "success",
            reason=reason,
            reason_name=REASONS.get(reason, f"reason {reason}"),
            uniqueid=None if uniqueid in (None, "", "<null>") else str(uniqueid),
            channel=None if event.get("channel") is None else str(event.get("channel")),
            response=dict(result),
            event=dict(event),
        )


def originate_message(
    channel: str,
    *,
    exten: str | None = None,
    context: str | None = None,
    priority: int | str | None = None,
    application: str | None = None,
    data: str | None = None,
    timeout: float | None = None,
    callerid: str | None = None,
    variables: Mapping[str, object] | None = None,
    account: str | None = None,
    early_media: bool | None = None,
    codecs: str | None = None,
    channel_id: str | None = None,
    other_channel_id: str | None = None,
    action_id: str | None = None,
) -> dict[str, object]:
    """The ``Originate`` action (``Async: true``): to ``exten``/``context``/``priority`` or to an
    ``application`` with its ``data``. ``timeout`` is the ring timeout in seconds (Asterisk takes ms)."""
    if channel is None or not str(channel):
        raise ValueError("originate() needs a channel, e.g. 'PJSIP/100'")
    if (application is None) == (exten is None):
        raise ValueError("originate() dials an exten (with a context) or runs an application, one of the two")
    if exten is not None and context is None:
        raise ValueError("originate() to an exten needs its context")
    message: dict[str, object] = {"Action": "Originate", "Channel": channel}
    if exten is not None:
        message.update({"Exten": exten, "Context": context, "Priority": 1 if priority is None else priority})
    else:
        message["Application"] = application
        if data is not None:
            message["Data"] = data
    if timeout is not None:
        message["Timeout"] = int(timeout * 1000)
    optional = {
        "CallerID": callerid,
        "Account": account,
        "EarlyMedia": None if early_media is None else ("true" if early_media else "false"),
        "Codecs": codecs,
        "ChannelId": channel_id,
        "OtherChannelId": other_channel_id,
        "ActionID": action_id,
    }
    message.update({k: v for k, v in optional.items() if v is not None})
    if variables:
        message["Variable"] = [f"{k}={v}" for k, v in variables.items()]
    message["Async"] = "true"
    return message


def result_timeout(timeout: float | None) -> float:
    """How long to wait for the OriginateResponse of a call with this ring timeout."""
    return (DEFAULT_RING_TIMEOUT if timeout is None else timeout) + RESULT_MARGIN
