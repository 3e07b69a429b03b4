"""The live model, sans-IO: channels, calls, bridges, queues and device states kept current from frames.

Feed it every frame with :meth:`LiveModel.feed`; at every login :meth:`~LiveModel.login` says which lists
to ask for, and :meth:`~LiveModel.reconcile` asks for the channel list again (drift check). It returns
what changed as ``(event name, arguments)`` pairs for ``LiveState`` to emit, and :attr:`~LiveModel.outbox`
holds the actions to send. No sockets, threads or clocks: ``now`` is wall-clock seconds, passed in.

Merge rule of the bootstrap (Asterisk 12+ semantics):

* At a login the model asks for ``CoreShowChannels``, ``BridgeList``, ``QueueStatus`` and
  ``DeviceStateList``. Until every list is in, each live event is applied at once *and* kept.
* When a list completes, its domain becomes what the list says (what it lacks is removed), and then every
  event kept since the login is applied again, in order. Applying an event twice is applying it once
  (counters excepted: a list's totals already count what happened before it), so the result is the lists
  plus every event since the login, wherever the events fell among the lists, inside one included.
  What changed is reported once, by comparing the model before and after.
* A list answered with ``Response: Error`` (the account may not read it, or the module is not loaded yet:
  Asterisk accepts logins before it has fully booted) is *unavailable*, never fatal; if ``FullyBooted``
  comes later in the same login, the unavailable lists are asked for again.
* ``synced`` is False from the login until every list is in or unavailable (and, with a username, until
  Asterisk said which classes the account reads, or would not). A part whose events the session cannot
  read is unavailable and empty (access.py).
* Channels found by a list are reported with ``channel_added`` like any other new channel (and channels
  gone meanwhile with ``channel_removed``), so a view driven by events alone ends up complete.

Bridge membership comes from the channels (``BridgeId`` in the channel list, then BridgeEnter,
BridgeLeave, BridgeMerge, BridgeDestroy): ``BridgeListItem`` only counts members. A channel's
``Linkedid`` is taken from every event about it (it changes after ``Action: Bridge``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..messages import ActionIdGenerator
from ..protocol import Frame
from .access import LIST_OF, NEEDS, event_classes, mask_classes
from .events import HANDLERS, EventHandlers
from .lists import ListMerge
from .records import _LOG_LIMIT, _NO_CHANGES, LISTS, LIVE_EVENTS, Change, _Part, _State, logger

__all__ = ["LIVE_EVENTS", "Change", "LiveModel"]


class LiveModel(EventHandlers, ListMerge):
    """The live state of one PBX, from its frames. Thread-safe: every call holds :attr:`lock`."""

    def __init__(self, *, max_channels: int = 20_000, ids: ActionIdGenerator | None = None) -> None:
        if max_channels < 1:
            raise ValueError("max_channels must be positive")
        self.max_channels = max_channels
        self.lock = threading.RLock()
        self.synced = False
        self.unavailable: dict[str, str] = {}  # list -> why (its error message)
        self.outbox: list[dict[str, str]] = []  # actions to send
        self._ids = ids or ActionIdGenerator("live-" + ActionIdGenerator().prefix)
        self._s = _State()
        self._parts: dict[str, _Part] = {}  # by ActionID
        self._log: list[tuple[Frame, float]] | None = None  # events kept while a list is out
        self._replaying = False
        self.track_changes = True
        self._booted = False
        self._over_cap = False
        self._dirty = True
        self._views: dict[str, Mapping[str, Any]] = {}
        self._changes: list[Change] = []
        self.username: str | None = None
        self._events_option: bool | str = True
        self._blocked: dict[str, str] = {}  # part -> why it cannot be followed (see access.py)
        self._unconfirmed: set[str] = set()  # classes to tell from the events (Asterisk did not say)
        self._read_text: str | None = None  # the account's read line, as Asterisk printed it
        self._warned: set[str] = set()
        self._privileges: set[str] = set()  # Privilege values already taken as evidence
        #: False once wants_check cannot become True again before the next login: an attribute, so the
        #: attachment, which asks after every frame, pays no call for the answer it almost always gets
        self.may_want_check = False

    # -- what the attachment calls ------------------------------------------------------------------

    def login(self, now: float, *, username: str | None = None, events: bool | str = True) -> list[Change]:
        """A login succeeded: bootstrap (every list is asked for again); returns the changes (none yet).

        ``username`` and ``events`` are the client's: with a username the model first asks Asterisk which
        classes the account reads (``manager show user``), and the ``events`` mask keeps classes out (see
        access.py); a part whose events cannot arrive is *unavailable*, never shown as an empty PBX."""
        with self.lock:
            self.synced = False
            self.unavailable = {}
            self._booted = False
            self._parts = {}
            self.username, self._events_option = username, events
            self._blocked, self._read_text = {}, None
            allowed = mask_classes(events)
            needed = set(NEEDS.values())
            self._unconfirmed = needed & allowed if username is not None else set()
            self._privileges = set()
            self.may_want_check = True
            for cls in sorted(needed - allowed):
                self._block(cls, f"the client's events option ({events!r}) leaves out {cls} events", now)
            if username is not None:
                self._ask_access(username)
            for domain in LISTS:
                if domain not in self._blocked:
                    self._ask(domain)
            self._log = []
            return self._take()

    def reconcile(self, now: float, reason: str = "reconcile") -> None:
        """Ask for the channel list again; when it is in, what drifted is repaired (and logged).
        ``reason="check"``: the lists that tell whether the unconfirmed classes' events can arrive (the
        channels for ``call``, the queues for ``agent``; see access.py)."""
        with self.lock:
            domains = ["channels"] if reason != "check" else [LIST_OF[c] for c in sorted(self._unconfirmed)]
            for domain in domains:
                if domain in self._blocked:
                    continue
                if any(p.domain == domain and p.state in ("asked", "listing") for p in self._parts.values()):
                    continue  # one is already out
                self._ask(domain, reconcile=True)
                self._parts[self.outbox[-1]["ActionID"]].reason = reason
                if self._log is None:
                    self._log = []

    @property
    def wants_check(self) -> bool:
        """True while Asterisk did not say whether the account reads ``call`` or ``agent`` and no event of
        the class came: a list now and then tells (``reconcile(now, "check")``)."""
        with self.lock:
            if not self.may_want_check:
                return False
            wants = self.synced and any(LIST_OF[c] not in self._blocked for c in self._unconfirmed)
            if self.synced and not wants:
                # for the rest of this login: synced stays, _unconfirmed only shrinks, _blocked only grows
                self.may_want_check = False
            return wants

    def feed(self, frame: Frame, now: float) -> list[Change]:
        """One frame from the server; returns what it changed."""
        with self.lock:
            if self._parts:  # a list is out: its frames carry its ActionID
                action_id = frame.get("actionid")
                if action_id.__class__ is str and action_id in self._parts:
                    self._list_frame(self._parts[action_id], frame, now)
                    return self._take()
            try:
                handler = HANDLERS.get(frame.get("event"))  # type: ignore[arg-type]
            except TypeError:  # a repeated Event header
                handler = None
            if handler is not None:
                # an event of a class proves the session reads it: Newchannel and Hangup (call), the
                # Queue* and Agent* events (agent) all have a handler, so the common path pays nothing
                if self._unconfirmed:
                    self._evidence(frame)
                if self._log is not None:
                    self._keep(frame, now)
                handler(self, frame, now)
            else:  # the common case: an event about a channel, carrying its snapshot
                uid = frame.get("uniqueid")
                if uid.__class__ is not str:
                    return _NO_CHANGES
                if self._log is not None:
                    self._keep(frame, now)
                self._update(uid, frame, now)
            return self._take() if self._changes else _NO_CHANGES

    def _evidence(self, frame: Frame) -> None:
        privilege = frame.get("privilege")
        if privilege.__class__ is str:  # the same few values over and over: each is read once
            if privilege in self._privileges:
                return
            self._privileges.add(privilege)
        self._unconfirmed.difference_update(event_classes(frame))

    def take_outbox(self) -> list[dict[str, str]]:
        """The actions to send now (they are handed out once)."""
        with self.lock:
            actions, self.outbox = self.outbox, []
            return actions

    def _keep(self, frame: Frame, now: float) -> None:
        """A live event while a list is out: kept, to be applied again when the list is in."""
        log = self._log
        assert log is not None
        if len(log) < _LOG_LIMIT:
            log.append((frame, now))
        elif len(log) == _LOG_LIMIT:
            logger.warning("live state: over %d events in one bootstrap; the merge may miss some", _LOG_LIMIT)
            log.append((frame, now))

    # -- reading (any thread) -------------------------------------------------------------------------

    def view(self, name: str) -> Mapping[str, Any]:
        """``channels``, ``calls``, ``bridges``, ``queues`` or ``devices``: a read-only mapping, consistent
        at one point in the stream, rebuilt only when something changed since the last read."""
        with self.lock:
            if self._dirty:
                self._views = {}
                self._dirty = False
            view = self._views.get(name)
            if view is None:
                view = self._views[name] = MappingProxyType(self._build(name))
            return view

    def snapshot(self) -> dict[str, Any]:
        """Everything, as plain JSON-ready data, at one point in the stream."""
        with self.lock:
            return {
                "channels": {k: v.to_dict() for k, v in self.view("channels").items()},
                "calls": {k: v.to_dict() for k, v in self.view("calls").items()},
                "bridges": {k: v.to_dict() for k, v in self.view("bridges").items()},
                "queues": {k: v.to_dict() for k, v in self.view("queues").items()},
                "devices": dict(self.view("devices")),
                "synced": self.synced,
                "unavailable": dict(self.unavailable),
            }

    def _build(self, name: str) -> dict[str, Any]:
        s = self._s
        if name == "channels":
            return {k: c.public() for k, c in s.chans.items()}
        if name == "calls":
            return {k: s.call(k) for k in s.links}
        if name == "bridges":
            return {k: s.bridge(k) for k in s.bridges}
        if name == "queues":
            return {k: self._queue(k, q) for k, q in s.queues.items()}
        if name == "devices":
            return dict(s.devices)
        raise KeyError(name)
