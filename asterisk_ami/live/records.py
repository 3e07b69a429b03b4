"""The live model's records and the operations on them that every part of the model uses.

Private to ``asterisk_ami.live``: ``LiveModel`` (model.py) is made of ``ModelBase`` (here), the event
handlers (events.py) and the list merge (lists.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from ..messages import ActionIdGenerator
from ..protocol import Frame
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
_SNAPSHOT_KEYS = {p: tuple((name, p + name) for name in _SNAPSHOT) for ps in _PREFIXED.values() for p in ps}
_APP = {"application": 0, "appdata": 1}
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
    kept as it is, never copied (``prefix`` names the snapshot when the event is about another channel:
    DialBegin's ``Dest...``); the last frame that told its dialplan application (``app``: a Newexten, or
    the channel list's item); and the fields of later events that carry no snapshot (``extra``, dropped
    where a newer snapshot says otherwise). ``linkedid`` is the snapshot's (the calls are indexed by it)."""

    __slots__ = ("answered", "app", "bridge_id", "created", "extra", "frame", "linkedid", "prefix")

    def __init__(
        self,
        frame: Mapping[str, Any],
        created: float,
        answered: float | None,
        bridge_id: str | None,
        extra: dict[str, Any] | None = None,
        prefix: str = "",
        app: Mapping[str, Any] | None = None,
    ) -> None:
        self.frame = frame  # never changed in place: replaced by the next snapshot
        self.prefix = prefix
        self.app = frame if app is None else app
        self.extra: dict[str, Any] = {} if extra is None else extra
        self.created = created
        self.answered = answered
        self.bridge_id = bridge_id
        self.linkedid: str = frame.get(prefix + "linkedid") or frame[prefix + "uniqueid"]

    def get(self, key: str) -> Any:
        extra = self.extra
        if extra and key in extra:
            return extra[key]
        value = self.frame.get(self.prefix + key) if self.prefix else self.frame.get(key)
        if value is None and key in _APP:
            return self.app.get(key, "")
        return value

    def drop_said(self, frame: Mapping[str, Any], prefix: str) -> None:
        """A newer snapshot came: what ``extra`` held that it says again is out of date."""
        extra = self.extra
        for key in [k for k in extra if (prefix + k) in frame]:
            del extra[key]

    @property
    def fields(self) -> dict[str, Any]:
        frame = self.frame
        if self.prefix:
            fields = {name: frame[key] for name, key in _SNAPSHOT_KEYS[self.prefix] if key in frame}
        else:
            fields = _clean(dict(frame))
        if "application" not in fields:
            fields["application"] = self.app.get("application", "")
            fields["appdata"] = self.app.get("appdata", "")
        fields.update(self.extra)
        return fields

    def copy(self) -> _Chan:
        return _Chan(self.frame, self.created, self.answered, self.bridge_id, dict(self.extra), self.prefix, self.app)

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
            self.links.setdefault(c.linkedid, set()).add(uid)
            if c.bridge_id:
                self.members.setdefault(c.bridge_id, set()).add(uid)

    def call(self, linkedid: str) -> Call:
        uids = self.links.get(linkedid, set())
        started = min((self.chans[u].created for u in uids), default=0.0)
        return Call(linkedid, frozenset(uids), started)

    def bridge(self, bid: str) -> Bridge:
        b = self.bridges[bid]
        return bridge_of(b.fields, frozenset(self.members.get(bid, ())), b.created)


class ModelBase:
    """The state and the record operations; see LiveModel."""

    lock: threading.RLock
    synced: bool
    unavailable: dict[str, str]
    outbox: list[dict[str, str]]
    max_channels: int
    _ids: ActionIdGenerator
    _s: _State
    _parts: dict[str, _Part]
    _log: list[tuple[Frame, float]] | None
    _replaying: bool  # applying the kept events again (see _apply_list): nothing is reported
    _track = True
    _tracking = True  # track_changes and not _replaying, read on every event
    _booted: bool  # FullyBooted seen since the login
    _over_cap: bool
    _dirty: bool
    _changes: list[Change]

    @property
    def track_changes(self) -> bool:
        """False: keep the state, build no objects for events nobody listens to (the hot path)."""
        return self._track

    @track_changes.setter
    def track_changes(self, on: bool) -> None:
        self._track = on
        self._tracking = on and not self._replaying

    def _set_replaying(self, on: bool) -> None:
        self._replaying = on
        self._tracking = self._track and not on

    @staticmethod
    def _queue(name: str, q: _Queue) -> Queue:
        return queue_of(name, q.fields, {k: member_of(m) for k, m in q.members.items()}, tuple(q.callers))

    # -- the channel records ------------------------------------------------------------------------

    def _add(self, frame: Mapping[str, Any], now: float) -> None:
        uid = frame["uniqueid"]
        s = self._s
        rec = _Chan(frame, now, now if frame.get("channelstate") == "6" else None, None)
        s.chans[uid] = rec
        linkedid = rec.linkedid
        call = s.links.get(linkedid)
        if call is None:
            s.links[linkedid] = {uid}
        else:
            call.add(uid)
        self._dirty = True
        if self._tracking:
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
        linkedid = rec.linkedid
        call = s.links.get(linkedid)
        ended = False
        if call is not None:
            call.discard(uid)
            if not call:
                del s.links[linkedid]
                ended = True
        if rec.bridge_id:
            self._unbridge(uid, rec.bridge_id)
        if not self._tracking:
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
        if self._tracking and bid in self._s.bridges:
            self._emit("bridge_changed", self._s.bridge(bid), {"channels": frozenset(self._s.members.get(bid, ()))})

    def _update(self, uid: str, frame: Mapping[str, Any], now: float, prefix: str = "") -> None:
        """An event about channel ``uid`` (``prefix``: the other channel an event describes, DialBegin's
        ``Dest...``). The hot path: with nobody listening it mostly swaps a reference."""
        rec = self._s.chans.get(uid)
        if rec is None:
            return
        if self._tracking:
            self._update_tracked(uid, rec, frame, now, prefix)
            return
        state = frame.get(prefix + "channelstate") if prefix else frame.get("channelstate")
        if state is None:
            rec.extra.update(frame)
            _clean(rec.extra)
        else:
            self._snapshot(uid, rec, frame, prefix, state, now)
        self._dirty = True

    def _update_tracked(self, uid: str, rec: _Chan, frame: Mapping[str, Any], now: float, prefix: str) -> None:
        if prefix:  # what changed is told in the channel's own field names
            frame = {name: frame[key] for name, key in _SNAPSHOT_KEYS[prefix] if key in frame}
        get = rec.get
        changes = {k: v for k, v in frame.items() if get(k) != v and k not in _NOT_FIELDS}
        if not changes:
            return
        state = frame.get("channelstate")
        if state is None:
            rec.extra.update(frame)
            _clean(rec.extra)
        else:
            self._snapshot(uid, rec, frame, "", state, now)
        self._dirty = True
        self._emit("channel_changed", rec.public(), changes)

    def _snapshot(self, uid: str, rec: _Chan, frame: Mapping[str, Any], prefix: str, state: Any, now: float) -> None:
        """A whole snapshot of the channel replaces the last one."""
        if rec.extra:
            rec.drop_said(frame, prefix)
        rec.frame = frame
        rec.prefix = prefix
        if not prefix and "application" in frame:  # a Newexten
            rec.app = frame
        if rec.answered is None and state == "6":
            rec.answered = now
        link = (frame.get(prefix + "linkedid") if prefix else frame.get("linkedid")) or uid
        if link != rec.linkedid:
            self._relink(uid, rec.linkedid, link)
            rec.linkedid = link

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
        if self._tracking:
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
        if self._tracking:
            self._emit("channel_changed", rec.public(), {"bridge_id": bridge_id})
            if bridge_id and bridge_id in s.bridges:
                self._emit("bridge_changed", s.bridge(bridge_id), {"channels": frozenset(s.members[bridge_id])})

    # -- changes ------------------------------------------------------------------------------------

    def _take(self) -> list[Change]:
        changes, self._changes = self._changes, []
        return changes

    def _emit(self, name: str, *args: Any) -> None:
        if self._tracking:
            self._changes.append((name, args))
