"""The live model's records and the operations on them that every part of the model uses.

Private to ``asterisk_ami.live``: ``LiveModel`` (model.py) is made of ``ModelBase`` (here), the event
handlers (events.py) and the list merge (lists.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from ..protocol import ActionIdGenerator, Frame
from .objects import Bridge, Call, Channel, Queue, bridge_of, channel_of, member_of, queue_of

logger = logging.getLogger("asterisk_ami")

Change = tuple[str, tuple[Any, ...]]
_NOT_FIELDS = frozenset({"event", "privilege", "actionid"})
# the headers of a channel snapshot (ast_manager_build_channel_state_string)
_SNAPSHOT = (
    "channel",
    "channelstate",
    "channelstatedesc",
    "calleridnum",
    "calleridname",
    "connectedlinenum",
    "connectedlinename",
    "language",
    "accountcode",
    "context",
    "exten",
    "priority",
    "uniqueid",
    "linkedid",
)
_NO_CHANGES: list[Change] = []
_LOG_LIMIT = 20_000  # events kept for one bootstrap (a few MB); past that the merge degrades, with a warning
# prefixes of the other channels an event describes (DialBegin's callee, LocalBridge's two halves, ...)
_PREFIXED = {
    "DialBegin": ("dest",),
    "DialEnd": ("dest",),
    "DialState": ("dest",),
    "LocalBridge": ("localone", "localtwo"),
    "LocalOptimizationBegin": ("localone", "localtwo", "source"),
    "LocalOptimizationEnd": ("localone", "localtwo"),
    "AgentCalled": ("dest",),
    "AgentConnect": ("dest",),
    "AgentComplete": ("dest",),
    "AgentRingNoAnswer": ("dest",),
    "AttendedTransfer": ("origtransferer", "secondtransferer", "transfertarget", "transferee"),
    "BlindTransfer": ("transferer", "transferee"),
}
# a list part: (its action, the events that are its items)
LISTS = {
    "channels": ("CoreShowChannels", ("CoreShowChannel",)),
    "bridges": ("BridgeList", ("BridgeListItem",)),
    "queues": ("QueueStatus", ("QueueParams", "QueueMember", "QueueEntry")),
    "devices": ("DeviceStateList", ("DeviceStateChange",)),
}
LIVE_EVENTS = frozenset(
    {
        "channel_added",
        "channel_changed",
        "channel_removed",
        "call_started",
        "call_ended",
        "bridge_added",
        "bridge_changed",
        "bridge_removed",
        "queue_changed",
        "queue_removed",
        "device_changed",
        "synced",
    }
)


def _clean(fields: dict[str, str]) -> dict[str, str]:
    """An event's headers as an object's fields: without the event's name, class and ActionID."""
    fields.pop("event", None)
    fields.pop("privilege", None)
    fields.pop("actionid", None)
    return fields


def _duration(text: str) -> float:
    """``HH:MM:SS`` (CoreShowChannel's Duration) in seconds."""
    try:
        h, m, s = (int(x) for x in text.split(":"))
    except ValueError:
        return 0.0
    return float(h * 3600 + m * 60 + s)


class _Chan:
    """A channel: the last event that carried its whole snapshot (Asterisk 12+ channel events all do),
    kept as it is (no copy per event), and the few fields other events add (``extra``)."""

    __slots__ = ("answered", "bridge_id", "created", "extra", "frame")

    def __init__(
        self,
        frame: Mapping[str, Any],
        created: float,
        answered: float | None,
        bridge_id: str | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.frame = frame  # never changed in place: replaced by the next snapshot
        self.extra: dict[str, Any] = {} if extra is None else extra
        self.created = created
        self.answered = answered
        self.bridge_id = bridge_id

    def get(self, key: str) -> Any:
        extra = self.extra
        if extra and key in extra:
            return extra[key]
        return self.frame.get(key)

    @property
    def fields(self) -> dict[str, Any]:
        fields = dict(self.frame)
        fields.update(self.extra)
        return _clean(fields)

    def copy(self) -> _Chan:
        return _Chan(self.frame, self.created, self.answered, self.bridge_id, dict(self.extra))

    def public(self) -> Channel:
        return channel_of(self.fields, self.bridge_id, self.created, self.answered)


class _Bridge:
    __slots__ = ("created", "fields")

    def __init__(self, fields: dict[str, str], created: float) -> None:
        self.fields = fields
        self.created = created


class _Queue:
    __slots__ = ("callers", "fields", "members")

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        self.members: dict[str, dict[str, str]] = {}
        self.callers: list[str] = []

    def copy(self) -> _Queue:
        q = _Queue(dict(self.fields))
        q.members = {k: dict(v) for k, v in self.members.items()}
        q.callers = list(self.callers)
        return q


class _Part:
    """One list of a bootstrap (or of a reconcile)."""

    __slots__ = ("action_id", "domain", "items", "reason", "state")

    def __init__(self, domain: str, action_id: str) -> None:
        self.domain = domain
        self.action_id = action_id
        self.state = "asked"  # asked -> listing -> done, or unavailable
        self.items: list[Frame] = []
        self.reason = ""


class _State:
    """Every record the model keeps: what a bootstrap compares before and after. ``links`` (linkedid ->
    uniqueids: the calls) and ``members`` (bridge -> uniqueids) index the channels."""

    __slots__ = ("bridges", "chans", "devices", "links", "members", "queues")

    def __init__(self) -> None:
        self.chans: dict[str, _Chan] = {}
        self.bridges: dict[str, _Bridge] = {}
        self.queues: dict[str, _Queue] = {}
        self.devices: dict[str, str] = {}
        self.links: dict[str, set[str]] = {}
        self.members: dict[str, set[str]] = {}

    def copy(self) -> _State:
        s = _State()
        s.chans = {k: c.copy() for k, c in self.chans.items()}
        s.bridges = {k: _Bridge(dict(b.fields), b.created) for k, b in self.bridges.items()}
        s.queues = {k: q.copy() for k, q in self.queues.items()}
        s.devices = dict(self.devices)
        s.reindex()
        return s

    def reindex(self) -> None:
        self.links, self.members = {}, {}
        for uid, c in self.chans.items():
            self.links.setdefault(c.get("linkedid") or uid, set()).add(uid)
            if c.bridge_id:
                self.members.setdefault(c.bridge_id, set()).add(uid)

    def call(self, linkedid: str) -> Call:
        uids = self.links.get(linkedid, set())
        started = min((self.chans[u].created for u in uids), default=0.0)
        return Call(linkedid, frozenset(uids), started)

    def bridge(self, bid: str) -> Bridge:
        b = self.bridges[bid]
        return bridge_of(b.fields, frozenset(self.members.get(bid, ())), b.created)


_SNAPSHOT_KEYS = {p: tuple((name, p + name) for name in _SNAPSHOT) for ps in _PREFIXED.values() for p in ps}


class ModelBase:
    """The state and the record operations; see LiveModel."""

    lock: threading.RLock
    track_changes: bool
    synced: bool
    unavailable: dict[str, str]
    outbox: list[dict[str, str]]
    max_channels: int
    _ids: ActionIdGenerator
    _s: _State
    _parts: dict[str, _Part]
    _log: list[tuple[Frame, float]] | None
    _replaying: bool
    _booted: bool  # FullyBooted seen since the login
    _over_cap: bool
    _dirty: bool
    _changes: list[Change]

    @staticmethod
    def _queue(name: str, q: _Queue) -> Queue:
        return queue_of(name, q.fields, {k: member_of(m) for k, m in q.members.items()}, tuple(q.callers))

    # -- the channel records ------------------------------------------------------------------------

    def _add(self, frame: Mapping[str, Any], now: float) -> None:
        uid = frame["uniqueid"]
        s = self._s
        rec = _Chan(frame, now, now if frame.get("channelstate") == "6" else None, None)
        s.chans[uid] = rec
        linkedid = frame.get("linkedid") or uid
        call = s.links.get(linkedid)
        if call is None:
            s.links[linkedid] = {uid}
        else:
            call.add(uid)
        self._dirty = True
        if self.track_changes and not self._replaying:
            self._emit("channel_added", rec.public())
            if call is None:
                self._emit("call_started", s.call(linkedid))
        if len(s.chans) > self.max_channels:
            if not self._over_cap:
                logger.warning(
                    "live state: more than max_channels=%d channels (a server that never sends Hangup?);"
                    " dropping the oldest",
                    self.max_channels,
                )
                self._over_cap = True
            self._remove(next(iter(s.chans)))
        elif self._over_cap and len(s.chans) < self.max_channels * 0.9:
            self._over_cap = False

    def _remove(self, uid: str, frame: Frame | None = None) -> None:
        s = self._s
        rec = s.chans.pop(uid, None)
        if rec is None:
            return
        self._dirty = True
        linkedid = rec.get("linkedid") or uid
        call = s.links.get(linkedid)
        ended = False
        if call is not None:
            call.discard(uid)
            if not call:
                del s.links[linkedid]
                ended = True
        if rec.bridge_id:
            self._unbridge(uid, rec.bridge_id)
        if not self.track_changes or self._replaying:
            return
        if frame is not None and "channelstate" in frame:
            rec.frame = frame  # the Hangup: its cause, and the last snapshot
        self._emit("channel_removed", rec.public())
        if ended:
            self._emit("call_ended", Call(linkedid, frozenset({uid}), rec.created))

    def _unbridge(self, uid: str, bid: str) -> None:
        members = self._s.members.get(bid)
        if members is not None:
            members.discard(uid)
            if not members:
                del self._s.members[bid]
        if self.track_changes and not self._replaying and bid in self._s.bridges:
            self._emit("bridge_changed", self._s.bridge(bid), {"channels": frozenset(self._s.members.get(bid, ()))})

    def _update(self, uid: str, frame: Mapping[str, Any], now: float, prefix: str = "") -> None:
        rec = self._s.chans.get(uid)
        if rec is None:
            return
        if prefix:  # the snapshot of another channel of the event: DestChannel, DestUniqueid, ...
            frame = {name: frame[key] for name, key in _SNAPSHOT_KEYS[prefix] if key in frame}
        tracking = self.track_changes and not self._replaying
        if tracking:
            get = rec.get
            changes = {k: v for k, v in frame.items() if get(k) != v and k not in _NOT_FIELDS}
            if not changes:
                return
        if "channelstate" in frame:  # a whole snapshot: it replaces the last one
            old_link = rec.frame.get("linkedid")
            rec.frame = frame
            if rec.answered is None and frame["channelstate"] == "6":
                rec.answered = now
            new_link = frame.get("linkedid")
            if new_link != old_link:
                self._relink(uid, old_link or uid, new_link or uid)
        else:
            rec.extra.update(frame)
            _clean(rec.extra)
        self._dirty = True
        if tracking:
            self._emit("channel_changed", rec.public(), changes)

    def _relink(self, uid: str, old: str, new: str) -> None:
        """A channel's Linkedid changed (after Action: Bridge): it moves to another call."""
        s = self._s
        ended = started = False
        members = s.links.get(old)
        if members is not None:
            members.discard(uid)
            if not members:
                del s.links[old]
                ended = True
        joined = s.links.get(new)
        if joined is None:
            s.links[new] = {uid}
            started = True
        else:
            joined.add(uid)
        if self.track_changes and not self._replaying:
            if ended:
                self._emit("call_ended", Call(old, frozenset({uid}), s.chans[uid].created))
            if started:
                self._emit("call_started", s.call(new))

    def _bridge_of_channel(self, uid: str, bridge_id: str | None) -> None:
        s = self._s
        rec = s.chans.get(uid)
        if rec is None or rec.bridge_id == bridge_id:
            return
        old, rec.bridge_id = rec.bridge_id, bridge_id
        self._dirty = True
        if old:
            self._unbridge(uid, old)
        if bridge_id:
            s.members.setdefault(bridge_id, set()).add(uid)
        if self.track_changes and not self._replaying:
            self._emit("channel_changed", rec.public(), {"bridge_id": bridge_id})
            if bridge_id and bridge_id in s.bridges:
                self._emit("bridge_changed", s.bridge(bridge_id), {"channels": frozenset(s.members[bridge_id])})

    # -- changes ------------------------------------------------------------------------------------

    def _take(self) -> list[Change]:
        changes, self._changes = self._changes, []
        return changes

    def _emit(self, name: str, *args: Any) -> None:
        if self.track_changes and not self._replaying:
            self._changes.append((name, args))
