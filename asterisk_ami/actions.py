"""Correlating frames with the actions that caused them (sans-IO: no sockets, threads or clocks).

An action completes with its response frame, except:

* a response with ``EventList: start`` (any case) collects the events carrying its ActionID until the
  one with ``EventList: Complete`` (Asterisk writes that header on every list end, so no table of
  ``*Complete`` event names is needed);
* an action sent with ``until_event`` (``Originate`` with ``Async: true``: ``OriginateResponse``)
  completes with the first event of that name carrying its ActionID, after its successful response;
* ``Response: Error`` completes at once, also for list actions, as an ``ActionError`` (a
  ``PermissionDeniedError`` for Asterisk's ``Permission denied``).

Only frames whose *first* header is ``Response:`` count as responses: ``OriginateResponse`` events carry
a ``Response:`` header and the sender's ActionID too.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from .errors import ActionError, AmiError, PermissionDeniedError
from .protocol import Frame, frame_kind

#: what Asterisk's manager.c answers an action the account may not run (its write classes lack the
#: action's, or the action's module is gone): ``astman_send_error(s, m, "Permission denied")``
PERMISSION_DENIED = "Permission denied"


def _as_lines(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class ActionResult(dict[str, str | list[str]]):
    """The result of an action: the response frame itself (a dict), plus

    * ``events``: the events of an event list, in order (empty for other actions);
    * ``complete``: the event that closed the list, or None;
    * ``output``: ``Command`` output lines (both Asterisk formats), always a list.

    ``to_dict()`` gives all of it as plain JSON-ready data.
    """

    def __init__(self, response: Frame) -> None:
        super().__init__(response)
        self.events: list[Frame] = []
        """The events of an event list, in order (empty for other actions)."""
        self.complete: Frame | None = None
        """The event that closed the list (``EventList: Complete``), or None."""
        self.output: list[str] = _as_lines(response.get("output"))
        """``Command`` output lines, from either Asterisk format; always a list."""

    @property
    def response(self) -> Frame:
        """The response frame as a plain ``dict`` (a copy)."""
        return dict(self)

    @property
    def ok(self) -> bool:
        """False for ``Response: Error`` (which ``action()`` and ``request()`` raise as ``ActionError``)."""
        return str(self.get("response", "")).lower() != "error"

    def to_dict(self) -> dict[str, Any]:
        """``{"response": ..., "events": [...], "complete": ..., "output": [...]}``: JSON-ready data."""
        return {"response": dict(self), "events": self.events, "complete": self.complete, "output": self.output}


ResponseCallback = Callable[[Frame], object]


class PendingAction:
    """One action waiting for its result. ``waiter`` is the shell's own (a future of either kind)."""

    __slots__ = ("action_id", "callback", "deadline", "name", "result", "until_event", "waiter", "written")

    def __init__(
        self,
        action_id: str,
        name: str,
        waiter: Any,
        callback: ResponseCallback | None,
        deadline: float | None,
        until_event: str | None = None,
    ) -> None:
        self.action_id = action_id
        self.name = name
        self.waiter = waiter
        self.callback = callback
        self.deadline = deadline
        # completes with the event of this name carrying the ActionID, after a successful response
        # (Originate with Async: OriginateResponse), instead of with the response itself
        self.until_event = until_event
        self.result: ActionResult | None = None  # set while an event list (or until_event) is awaited
        self.written = False  # handed to the transport (False while it waits for the login)


class ActionDone:
    """What happened to a tracked action: a response for its callback and/or its final outcome.

    ``outcome`` is the ``ActionResult``, or the error the waiter fails with (``ActionError``, and from the
    session ``ActionTimeoutError`` or ``ConnectionLostError``); None while an event list is still coming
    (the list's first response is in ``response`` for the callback)."""

    __slots__ = ("entry", "outcome", "response")

    def __init__(self, entry: PendingAction, response: Frame | None, outcome: ActionResult | AmiError | None):
        self.entry = entry
        self.response = response
        self.outcome = outcome


class ActionTracker:
    """The table of actions in flight, keyed by ActionID. Not thread-safe: the session's shell locks it."""

    def __init__(self) -> None:
        self._pending: dict[str, PendingAction] = {}
        self._deadlines: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, action_id: str) -> bool:
        return action_id in self._pending

    def add(self, entry: PendingAction) -> None:
        self._pending[entry.action_id] = entry
        if entry.deadline is not None:
            heapq.heappush(self._deadlines, (entry.deadline, entry.action_id))

    def remove(self, action_id: str) -> PendingAction | None:
        return self._pending.pop(action_id, None)

    def drain(self) -> list[PendingAction]:
        """Take every pending action out (the connection is gone)."""
        entries = list(self._pending.values())
        self._pending.clear()
        self._deadlines.clear()
        return entries

    def next_deadline(self) -> float | None:
        while self._deadlines and self._deadlines[0][1] not in self._pending:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def expire(self, now: float) -> list[PendingAction]:
        """Remove and return the actions whose deadline is at or before ``now``."""
        expired = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, action_id = heapq.heappop(self._deadlines)
            entry = self._pending.get(action_id)
            if entry is not None and entry.deadline is not None and entry.deadline <= now:
                del self._pending[action_id]
                expired.append(entry)
        return expired

    def feed(self, frame: Frame) -> ActionDone | None:
        """Match one frame; None when it belongs to no pending action."""
        action_id = frame.get("actionid")
        if not isinstance(action_id, str):
            return None
        entry = self._pending.get(action_id)
        if entry is None:
            return None
        kind = frame_kind(frame)
        if entry.result is not None:  # collecting an event list, or waiting for until_event
            if kind != "event":
                return None
            if entry.until_event is not None:
                if frame.get("event") != entry.until_event:
                    return None
                del self._pending[action_id]
                entry.result.complete = frame
                return ActionDone(entry, None, entry.result)
            if str(frame.get("eventlist", "")).lower() == "complete":
                del self._pending[action_id]
                entry.result.complete = frame
                return ActionDone(entry, None, entry.result)
            entry.result.events.append(frame)
            return None
        if kind != "response":
            return None
        result = ActionResult(frame)
        if not result.ok:
            del self._pending[action_id]
            message = str(frame.get("message", ""))
            if result.output and (not message or message.lower().startswith("command output follows")):
                # a failed Command says why only in its output (e.g. "No such command")
                message = "; ".join(line for line in result.output if line.strip())
            message = message or "Response: Error"
            error: ActionError
            if message.lower() == PERMISSION_DENIED.lower():
                error = PermissionDeniedError(f"{entry.name}: {message}", entry.name, frame, result)
            else:
                error = ActionError(f"{entry.name}: {message}", frame, result)
            return ActionDone(entry, frame, error)
        if entry.until_event is not None or str(frame.get("eventlist", "")).lower() == "start":
            entry.result = result
            return ActionDone(entry, frame, None)
        del self._pending[action_id]
        return ActionDone(entry, frame, result)
