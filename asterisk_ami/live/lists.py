"""The live model's bootstrap lists and their merge: see the merge rule in model.py."""

from __future__ import annotations

from ..protocol import Frame
from .events import _CHANNELS, DOMAINS, HANDLERS
from .records import LISTS, ModelBase, _Bridge, _Chan, _clean, _duration, _Part, _Queue, _State, logger


class ListMerge(ModelBase):
    def _ask(self, domain: str, reconcile: bool = False) -> None:
        action_id = self.ids_next()
        self._parts[action_id] = part = _Part(domain, action_id)
        part.reason = "reconcile" if reconcile else ""
        self.outbox.append({"Action": LISTS[domain][0], "ActionID": action_id})

    def ids_next(self) -> str:
        return self._ids()

    def _list_frame(self, part: _Part, frame: Frame, now: float) -> None:
        if frame.get("response") is not None and frame.get("event") is None:  # the list's answer
            if str(frame.get("response")).lower() == "success":
                part.state = "listing"
                return
            part.state = "unavailable"
            reason = str(frame.get("message") or "Response: Error")
            if part.reason != "reconcile":
                self.unavailable[part.domain] = reason
            logger.info("live state: %s unavailable (%s)", LISTS[part.domain][0], reason)
            self._part_over(part)
            return
        if str(frame.get("eventlist", "")).lower() == "complete":
            self._apply_list(part, now)
            part.state = "done"
            self.unavailable.pop(part.domain, None)
            self._part_over(part)
        elif frame.get("event") in LISTS[part.domain][1]:
            part.items.append(frame)

    def _part_over(self, part: _Part) -> None:
        del self._parts[part.action_id]
        if not self._parts:
            self._log = None
            if not self.synced:
                self.synced = True
                self._emit("synced")

    def _fully_booted(self) -> None:
        """The first FullyBooted after a login: the lists refused meanwhile are asked for again, once."""
        if self._booted:
            return
        self._booted = True
        again = [d for d in self.unavailable if d not in {p.domain for p in self._parts.values()}]
        for domain in again:
            logger.info("live state: FullyBooted; asking for %s again", LISTS[domain][0])
            self._ask(domain)
        if again and self._log is None:
            self._log = []

    def _apply_list(self, part: _Part, now: float) -> None:
        """The list replaces its domain, the kept events are applied again; changes are reported by
        comparing before and after."""
        before = self._s.copy()
        getattr(self, "_list_" + part.domain)(part.items, now)
        self._s.reindex()
        self._set_replaying(True)
        try:
            domain = part.domain
            for frame, when in self._log or ():
                event = frame["event"]
                if domain not in DOMAINS.get(event, _CHANNELS):  # type: ignore[arg-type]
                    continue  # an event that cannot change what this list replaced
                handler = HANDLERS.get(event)  # type: ignore[arg-type]
                if handler is not None:
                    handler(self, frame, when)
                elif "uniqueid" in frame:
                    self._update(frame["uniqueid"], frame, when)  # type: ignore[arg-type]
        finally:
            self._set_replaying(False)
        self._dirty = True
        repaired = self._diff(before, now)
        if part.reason == "reconcile" and any(repaired.values()):
            logger.warning(
                "live state reconciled with CoreShowChannels: removed %d ghost channel(s), added %d, updated %d",
                repaired["removed"],
                repaired["added"],
                repaired["changed"],
            )

    def _list_channels(self, items: list[Frame], now: float) -> None:
        old = self._s.chans
        new: dict[str, _Chan] = {}
        for item in items:
            uid = item.get("uniqueid")
            if not isinstance(uid, str):
                continue
            fields = _clean(dict(item))  # type: ignore[arg-type]
            fields["appdata"] = fields.pop("applicationdata", "")
            bridge_id = fields.pop("bridgeid", "") or None
            duration = _duration(fields.pop("duration", ""))
            rec = old.get(uid)
            up = fields.get("channelstate") == "6"
            if rec is not None:  # the list is newer than every event before it
                answered = rec.answered if rec.answered is not None or not up else now
                rec = _Chan(fields, rec.created, answered, bridge_id)
            else:
                created = now - duration
                rec = _Chan(fields, created, created if up else None, bridge_id)
            new[uid] = rec
        self._s.chans = new

    def _list_bridges(self, items: list[Frame], now: float) -> None:
        old = self._s.bridges
        self._s.bridges = {
            str(item["bridgeuniqueid"]): _Bridge(
                _clean(dict(item)),  # type: ignore[arg-type]
                old[item["bridgeuniqueid"]].created if item["bridgeuniqueid"] in old else now,
            )
            for item in items
            if isinstance(item.get("bridgeuniqueid"), str)
        }

    def _list_queues(self, items: list[Frame], now: float) -> None:
        queues: dict[str, _Queue] = {}
        for item in items:
            name = item.get("queue")
            if not isinstance(name, str):
                continue
            q = queues.get(name) or queues.setdefault(name, _Queue({"queue": name}))
            fields = _clean(dict(item))  # type: ignore[arg-type]
            event = item["event"]
            if event == "QueueParams":
                q.fields.update(fields)
            elif event == "QueueMember":
                fields["interface"] = fields.pop("location", "")
                fields["membername"] = fields.pop("name", "")
                q.members[fields["interface"]] = fields
            elif event == "QueueEntry" and isinstance(item.get("uniqueid"), str):
                q.callers.append(str(item["uniqueid"]))
        self._s.queues = queues

    def _list_devices(self, items: list[Frame], now: float) -> None:
        self._s.devices = {str(i["device"]): str(i.get("state", "")) for i in items if isinstance(i.get("device"), str)}

    def _diff(self, before: _State, now: float) -> dict[str, int]:
        """Report what a list changed, once; returns the channel counts (for the reconcile log)."""
        after = self._s
        counts = {"removed": 0, "added": 0, "changed": 0}
        if not self.track_changes:
            counts["removed"] = len(before.chans.keys() - after.chans.keys())
            counts["added"] = len(after.chans.keys() - before.chans.keys())
            return counts
        for uid, rec in before.chans.items():
            if uid not in after.chans:
                counts["removed"] += 1
                self._emit("channel_removed", rec.public())
        for uid, rec in after.chans.items():
            was = before.chans.get(uid)
            if was is None:
                counts["added"] += 1
                self._emit("channel_added", rec.public())
            elif was.fields != rec.fields or was.bridge_id != rec.bridge_id:
                counts["changed"] += 1
                was_fields = was.fields
                changes = {k: v for k, v in rec.fields.items() if was_fields.get(k) != v}
                if was.bridge_id != rec.bridge_id:
                    changes["bridge_id"] = rec.bridge_id
                self._emit("channel_changed", rec.public(), changes)
        self._diff_calls(before)
        self._diff_bridges(before)
        for name, q in before.queues.items():
            if name not in after.queues:
                self._emit("queue_removed", self._queue(name, q))
        for name, q in after.queues.items():
            was_q = before.queues.get(name)
            if was_q is None or (was_q.fields, was_q.members, was_q.callers) != (q.fields, q.members, q.callers):
                self._emit("queue_changed", self._queue(name, q))
        for device, state in after.devices.items():
            if before.devices.get(device) != state:
                self._emit("device_changed", device, state)
        return counts

    def _diff_calls(self, before: _State) -> None:
        for linkedid in before.links.keys() - self._s.links.keys():
            self._emit("call_ended", before.call(linkedid))
        for linkedid in self._s.links.keys() - before.links.keys():
            self._emit("call_started", self._s.call(linkedid))

    def _diff_bridges(self, before: _State) -> None:
        after = self._s
        for bid in before.bridges.keys() - after.bridges.keys():
            self._emit("bridge_removed", before.bridge(bid))
        for bid, b in after.bridges.items():
            was = before.bridges.get(bid)
            members = after.members.get(bid, set())
            if was is None:
                self._emit("bridge_added", after.bridge(bid))
            elif was.fields != b.fields or before.members.get(bid, set()) != members:
                self._emit("bridge_changed", after.bridge(bid), {"channels": frozenset(members)})
