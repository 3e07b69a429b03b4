"""The live model's event handlers: one method per Asterisk event it follows (Asterisk 12+).

Channel events carry the channel's whole snapshot: the record keeps the newest. An event with a
``Uniqueid`` and no handler of its own (Newstate, NewCallerid, NewConnectedLine, NewAccountCode, VarSet,
UserEvent, ...) updates that channel from its snapshot. Every handler can run twice on the same event
(see the merge rule in model.py): the result is the same, counters excepted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..protocol import Frame
from .objects import as_int, bridge_of
from .records import _PREFIXED, ModelBase, _Bridge, _clean, _Queue


class EventHandlers(ModelBase):
    def _on_newchannel(self, frame: Frame, now: float) -> None:
        uid = frame.get("uniqueid")
        if not isinstance(uid, str):
            return
        if uid in self._s.chans:
            self._update(uid, frame, now)
        else:
            self._add(frame, now)

    def _on_rename(self, frame: Frame, now: float) -> None:
        uid, newname = frame.get("uniqueid"), frame.get("newname")
        if isinstance(uid, str) and isinstance(newname, str):  # its snapshot may still hold the old name
            self._update(uid, {**frame, "channel": newname}, now)

    def _on_hangup(self, frame: Frame, now: float) -> None:
        uid = frame.get("uniqueid")
        if isinstance(uid, str):
            self._remove(uid, frame)

    def _on_prefixed(self, frame: Frame, now: float) -> None:
        event = frame["event"]
        if "uniqueid" in frame:
            self._update(frame["uniqueid"], frame, now)  # type: ignore[arg-type]
        for prefix in _PREFIXED[event]:  # type: ignore[index]
            uid = frame.get(prefix + "uniqueid")
            if isinstance(uid, str):
                self._update(uid, frame, now, prefix)
        if event in ("AgentConnect", "AgentComplete"):
            self._on_agent(frame, now)

    def _bridge_record(self, frame: Frame, now: float) -> str | None:
        bid = frame.get("bridgeuniqueid")
        if not isinstance(bid, str):
            return None
        fields = {k: v for k, v in frame.items() if k.startswith("bridge")}
        b = self._s.bridges.get(bid)
        if b is None:
            self._s.bridges[bid] = _Bridge(fields, now)  # type: ignore[arg-type]
            self._dirty = True
            if self._tracking:
                self._emit("bridge_added", self._s.bridge(bid))
        else:
            changes = {k: v for k, v in fields.items() if b.fields.get(k) != v and k != "bridgenumchannels"}
            b.fields.update(fields)  # type: ignore[arg-type]
            if changes:
                self._dirty = True
                if self._tracking:
                    self._emit("bridge_changed", self._s.bridge(bid), changes)
        return bid

    def _on_bridge_create(self, frame: Frame, now: float) -> None:
        self._bridge_record(frame, now)

    def _on_bridge_enter(self, frame: Frame, now: float) -> None:
        bid = self._bridge_record(frame, now)
        uid = frame.get("uniqueid")
        if isinstance(uid, str):
            self._update(uid, frame, now)
            self._bridge_of_channel(uid, bid)

    def _on_bridge_leave(self, frame: Frame, now: float) -> None:
        uid = frame.get("uniqueid")
        if isinstance(uid, str):
            self._update(uid, frame, now)
            rec = self._s.chans.get(uid)
            if rec is not None and rec.bridge_id == frame.get("bridgeuniqueid"):
                self._bridge_of_channel(uid, None)

    def _on_bridge_destroy(self, frame: Frame, now: float) -> None:
        bid = frame.get("bridgeuniqueid")
        if not isinstance(bid, str):
            return
        for uid in list(self._s.members.get(bid, ())):
            self._bridge_of_channel(uid, None)
        b = self._s.bridges.pop(bid, None)
        if b is not None:
            self._dirty = True
            self._emit("bridge_removed", bridge_of(b.fields, frozenset(), b.created))

    def _on_bridge_merge(self, frame: Frame, now: float) -> None:
        to, source = frame.get("tobridgeuniqueid"), frame.get("frombridgeuniqueid")
        if not isinstance(to, str):
            return
        to_fields = {k[2:]: v for k, v in frame.items() if k.startswith("tobridge")}
        self._bridge_record(to_fields, now)
        for uid in list(self._s.members.get(source, ())) if isinstance(source, str) else ():
            self._bridge_of_channel(uid, to)

    def _queue_record(self, frame: Mapping[str, Any]) -> _Queue | None:
        name = frame.get("queue")
        if not isinstance(name, str):
            return None
        q = self._s.queues.get(name)
        if q is None:
            q = self._s.queues[name] = _Queue({"queue": name})
        self._dirty = True
        return q

    def _queue_changed(self, q: _Queue) -> None:
        if self._tracking:
            self._emit("queue_changed", self._queue(q.fields["queue"], q))

    def _on_member(self, frame: Frame, now: float) -> None:
        q = self._queue_record(frame)
        iface = frame.get("interface")
        if q is None or not isinstance(iface, str):
            return
        if frame["event"] == "QueueMemberRemoved":
            q.members.pop(iface, None)
        else:
            q.members.setdefault(iface, {}).update(_clean(dict(frame)))  # type: ignore[arg-type]
        self._queue_changed(q)

    def _on_caller(self, frame: Frame, now: float) -> None:
        q = self._queue_record(frame)
        uid = frame.get("uniqueid")
        if q is None or not isinstance(uid, str):
            return
        event = frame["event"]
        if event == "QueueCallerJoin":
            if uid not in q.callers:
                q.callers.insert(max(0, as_int(frame.get("position"), len(q.callers) + 1) - 1), uid)
        elif event == "QueueCallerLeave":
            if uid in q.callers:
                q.callers.remove(uid)
        elif not self._replaying:  # QueueCallerAbandon: a list's totals already count the ones before it
            q.fields["abandoned"] = str(as_int(q.fields.get("abandoned")) + 1)
        if "count" in frame:
            q.fields["calls"] = str(frame["count"])
        self._update(uid, frame, now)
        self._queue_changed(q)

    def _on_agent(self, frame: Frame, now: float) -> None:
        q = self._queue_record(frame)
        iface = frame.get("interface")
        if q is None or not isinstance(iface, str):
            return
        member = q.members.setdefault(iface, {"interface": iface})
        if "membername" in frame:
            member["membername"] = str(frame["membername"])
        connect = frame["event"] == "AgentConnect"
        member["incall"] = "1" if connect else "0"
        if not connect and not self._replaying:
            q.fields["completed"] = str(as_int(q.fields.get("completed")) + 1)
        self._queue_changed(q)

    def _on_device(self, frame: Frame, now: float) -> None:
        device, state = frame.get("device"), frame.get("state")
        if isinstance(device, str) and isinstance(state, str) and self._s.devices.get(device) != state:
            self._s.devices[device] = state
            self._dirty = True
            self._emit("device_changed", device, state)


_Handler = Callable[[Any, Frame, float], None]
HANDLERS: dict[str, _Handler] = {
    "FullyBooted": lambda model, frame, now: None if model._replaying else model._fully_booted(),
    "Newchannel": EventHandlers._on_newchannel,
    "Hangup": EventHandlers._on_hangup,
    "Rename": EventHandlers._on_rename,
    "BridgeCreate": EventHandlers._on_bridge_create,
    "BridgeEnter": EventHandlers._on_bridge_enter,
    "BridgeLeave": EventHandlers._on_bridge_leave,
    "BridgeDestroy": EventHandlers._on_bridge_destroy,
    "BridgeMerge": EventHandlers._on_bridge_merge,
    "QueueMemberAdded": EventHandlers._on_member,
    "QueueMemberRemoved": EventHandlers._on_member,
    "QueueMemberStatus": EventHandlers._on_member,
    "QueueMemberPause": EventHandlers._on_member,
    "QueueMemberPaused": EventHandlers._on_member,
    "QueueMemberRinginuse": EventHandlers._on_member,
    "QueueCallerJoin": EventHandlers._on_caller,
    "QueueCallerLeave": EventHandlers._on_caller,
    "QueueCallerAbandon": EventHandlers._on_caller,
    "DeviceStateChange": EventHandlers._on_device,
    **{name: EventHandlers._on_prefixed for name in _PREFIXED},
}

# what each event can change, by the list that replaces it (the merge applies an event again only when a
# list of its domain comes in); an event with no entry changes channels only
_CHANNELS = frozenset({"channels"})
_BRIDGES = frozenset({"bridges", "channels"})
_QUEUES = frozenset({"queues", "channels"})
DOMAINS: dict[str, frozenset[str]] = {
    **{name: _BRIDGES for name in ("BridgeCreate", "BridgeEnter", "BridgeLeave", "BridgeDestroy", "BridgeMerge")},
    **{name: _QUEUES for name in HANDLERS if name.startswith(("QueueMember", "QueueCaller", "Agent"))},
    "DeviceStateChange": frozenset({"devices"}),
    "FullyBooted": frozenset(),
}
