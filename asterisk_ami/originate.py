"""``originate()``, sans-IO: the ``Originate`` action with ``Async: true``, and its result.

With ``Async: true`` Asterisk answers the action at once and reports the call's outcome later in an
``OriginateResponse`` event that carries the action's ActionID; both shells send the action with
``until_event="OriginateResponse"`` so that the correlation is the tracker's (actions.py), and turn the
``ActionResult`` into an :class:`OriginateResult`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .actions import ActionResult
from .errors import InvalidMessageError
from .messages import SCALARS
from .options import check_timeout

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
#: what Asterisk writes for the Uniqueid (and caller ID) of an originate that made no channel
UNKNOWN = "<unknown>"
DEFAULT_RING_TIMEOUT = 30.0  # Asterisk's own default for Originate's Timeout
RESULT_MARGIN = 10.0  # seconds the result may take past the ring timeout (dialplan, slow channels)


@dataclass(frozen=True, slots=True)
class OriginateResult:
    """How an originated call went: ``success`` (answered), Asterisk's ``reason`` code and its name,
    the ``uniqueid`` and ``channel`` of the originated channel, and the raw ``response`` and ``event``.

    ``uniqueid`` is None when Asterisk made no channel (it writes ``<unknown>``; ``event`` keeps that)."""

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
            uniqueid=None if uniqueid in (None, "", "<null>", UNKNOWN) else str(uniqueid),
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
    variables: Mapping[str, object] | Iterable[str] | None = None,
    account: str | None = None,
    early_media: bool | None = None,
    codecs: str | Iterable[str] | None = None,
    channel_id: str | None = None,
    other_channel_id: str | None = None,
    action_id: str | None = None,
) -> dict[str, object]:
    """The ``Originate`` action (``Async: true``): to ``exten``/``context``/``priority`` or to an
    ``application`` with its ``data``. ``timeout`` is the ring timeout in seconds (Asterisk takes ms).

    ``variables``: a mapping (a None value is left out, as ``send()`` leaves out None headers) or a
    list of ``"NAME=value"`` strings; one ``Variable:`` header each. ``codecs``: ``"ulaw,alaw"`` or a
    list of names, written as the one comma-separated ``Codecs:`` header Asterisk reads. Bad ones are
    an ``InvalidMessageError`` naming the option (never echoing a value)."""
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
    ring = check_timeout(timeout, "timeout")  # the ring timeout: checked here, where the user passed it
    if ring is not None:
        message["Timeout"] = int(ring * 1000)
    optional = {
        "CallerID": callerid,
        "Account": account,
        "EarlyMedia": None if early_media is None else ("true" if early_media else "false"),
        "Codecs": _codecs(codecs),
        "ChannelId": channel_id,
        "OtherChannelId": other_channel_id,
        "ActionID": action_id,
    }
    message.update({k: v for k, v in optional.items() if v is not None})
    assignments = _variables(variables)
    if assignments:
        message["Variable"] = assignments
    message["Async"] = "true"
    return message


def _variables(variables: Mapping[str, object] | Iterable[str] | None) -> list[str]:
    """``Variable:`` values, ``NAME=value`` each, from a mapping or from such strings."""
    if variables is None:
        return []
    if isinstance(variables, Mapping):
        out = []
        for name, value in variables.items():
            if not isinstance(name, str) or not name or "=" in name:
                raise InvalidMessageError(f"originate() variables: a name is not a non-empty str without '=': {name!r}")
            if value is None:
                continue
            if not isinstance(value, SCALARS):
                raise InvalidMessageError(
                    f"originate() variables: the value of {name!r} is a {type(value).__name__}; a value is a str,"
                    " int, float or bool"
                )
            out.append(f"{name}={value}")
        return out
    if isinstance(variables, str | bytes) or not isinstance(variables, Iterable):
        raise InvalidMessageError(
            f"originate() variables is a mapping or a list of 'NAME=value' strings, not a {type(variables).__name__}"
        )
    out = []
    for n, item in enumerate(variables):
        if not isinstance(item, str) or not item.partition("=")[0] or "=" not in item:
            kind = type(item).__name__ if not isinstance(item, str) else "str without NAME="
            raise InvalidMessageError(f"originate() variables[{n}] is not a 'NAME=value' string (a {kind})")
        out.append(item)
    return out


def _codecs(codecs: str | Iterable[str] | None) -> str | None:
    """Asterisk reads one ``Codecs:`` header, a comma-separated list (repeated headers: only the first)."""
    if codecs is None or isinstance(codecs, str):
        return codecs
    if isinstance(codecs, bytes) or not isinstance(codecs, Iterable):
        kind = type(codecs).__name__
        raise InvalidMessageError(f"originate() codecs is a str or a list of codec names, not a {kind}")
    names = list(codecs)
    if not all(isinstance(name, str) and name and "," not in name for name in names):
        raise InvalidMessageError("originate() codecs: every codec is a non-empty str without ',' (e.g. 'ulaw')")
    return ",".join(names) or None


def result_timeout(timeout: float | None) -> float:
    """How long to wait for the OriginateResponse of a call with this ring timeout."""
    ring = check_timeout(timeout, "timeout")
    return (DEFAULT_RING_TIMEOUT if ring is None else ring) + RESULT_MARGIN
