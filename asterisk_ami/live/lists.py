"""The live model's bootstrap lists and their merge: see the merge rule in model.py."""

from __future__ import annotations

from ..protocol import Frame
from .access import NEEDS, manager_line, parts_of, read_classes
from .events import _CHANNELS, DOMAINS, HANDLERS
from .records import LISTS, ModelBase, _Bridge, _Chan, _clean, _duration, _Part, _Queue, _State, logger

ACCESS = "access"  # the part that asks Asterisk which classes the account reads


def _appeared(domain: str, before: _State, after: _State) -> int:
    """How many channels (or queue members and callers) one state has and the other lacks."""
    if domain == "channels":
        return len(before.chans.keys() ^ after.chans.keys())
    if domain == "queues":

        def held(s: _State) -> set[tuple[str, str, str]]:
            members = {(q, "member", m) for q, rec in s.queues.items() for m in rec.members}
            return members | {(q, "caller", c) for q, rec in s.queues.items() for c in rec.callers}

        return len(held(before) ^ held(after))
    return 0


class ListMerge(ModelBase):
    username: str | None
    _blocked: dict[str, str]
    _unconfirmed: set[str]
    _read_text: str | None
    _warned: set[str]

    def _ask(self, domain: str, reconcile: bool = False) -> None:
        action_id = self.ids_next()
        self._parts[action_id] = part = _Part(domain, action_id)
        part.reason = "reconcile" if reconcile else ""
        self.outbox.append({"Action": LISTS[domain][0], "ActionID": action_id})

    def ids_next(self) -> str:
        return self._ids()

    # -- what the account reads (access.py) ----------------------------------------------------------

    def _ask_access(self, username: str) -> None:
        """First of the bootstrap: Asterisk answers actions in order, so the classes are known before the
        lists come in."""
        action_id = self.ids_next()
        self._parts[action_id] = _Part(ACCESS, action_id)
        self.outbox.append({"Action": "Command", "Command": f"manager show user {username}", "ActionID": action_id})

    def _access_answer(self, part: _Part, frame: Frame, now: float) -> None:
        output = frame.get("output")
        lines = [output] if isinstance(output, str) else output if isinstance(output, list) else []
        found = read_classes(lines) if str(frame.get("response", "")).lower() == "success" else None
        if found is None:  # Permission denied (no command write), or not Asterisk's CLI: tell from the events
            why = frame.get("message") or "no 'read perm' line"
            logger.info(
                "live state: Asterisk does not say which event classes %s reads (manager show user: %s); telling"
                " from the events",
                self.username,
                why,
            )
        else:
            readable, self._read_text = found
            for cls in sorted(self._unconfirmed - readable):
                self._block(cls, f"the account {self.username!r} does not read {cls} events", now)
            self._unconfirmed = set()
        self._part_over(part)

    def _block(self, cls: str, why: str, now: float) -> None:
        """The session cannot read ``cls``: the parts it reports are unavailable and hold nothing (a
        snapshot that no event will keep current is not shown as live), with one WARNING naming the
        manager.conf line to add."""
        self._unconfirmed.discard(cls)
        parts = parts_of(cls)
        reason = f"not followed: {why}"
        before = self._s.copy()
        for domain in parts:
            self._blocked[domain] = reason
            self.unavailable[domain] = reason
        if "channels" in parts:
            self._s.chans = {}
        if "bridges" in parts:
            self._s.bridges = {}
        if "devices" in parts:
            self._s.devices = {}
        if "queues" in parts:
            self._s.queues = {}
        self._s.reindex()
        self._dirty = True
        self._diff(before, now)
        if cls in self._warned:
            logger.info("live state: %s (%s unavailable)", why, ", ".join(parts))
            return
        self._warned.add(cls)
        if why.startswith("the client's events option"):
            fix = f"log in with events=True, or with {cls} in the events mask"
        else:
            line = manager_line(self.username or "user", self._read_text, cls)
            fix = f"add {cls} to its read line in manager.conf: {line} (then 'manager reload')"
        logger.warning("live state: %s, so %s are not followed; %s", why, ", ".join(parts), fix)

    def _list_frame(self, part: _Part, frame: Frame, now: float) -> None:
        if part.domain == ACCESS:
            if frame.get("response") is not None and frame.get("event") is None:
                self._access_answer(part, frame, now)
            return
        if part.domain in self._blocked:  # its answer is read, and dropped: no event would keep it current
            event = frame.get("event")
            failed = event is None and str(frame.get("response", "")).lower() != "success"
            if failed or (event is not None and str(frame.get("eventlist", "")).lower() == "complete"):
                self._part_over(part)
            return
        if frame.get("response") is not None and frame.get("event") is None:  # the list's answer
            if str(frame.get("response")).lower() == "success":
                part.state = "listing"
                return
            part.state = "unavailable"
            reason = str(frame.get("message") or "Response: Error")
            if part.reason not in ("reconcile", "check"):
                self.unavailable[part.domain] = reason
            logger.info("live state: %s unavailable (%s)", LISTS[part.domain][0], reason)
            self._part_over(part)
            return
        if str(frame.get("eventlist", "")).lower() == "complete":
            self._apply_list(part, now)
            part.state = "done"
            if part.domain not in self._blocked:
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
        outstanding = {p.domain for p in self._parts.values()}
        again = [d for d in self.unavailable if d in LISTS and d not in self._blocked and d not in outstanding]
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
        cls = NEEDS[part.domain]
        appeared = _appeared(part.domain, before, self._s)
        if part.reason in ("reconcile", "check") and cls in self._unconfirmed and appeared:
            # Asterisk announces every new channel and hangup with a call event, every queue member and
            # caller that comes or goes with an agent event: none came
            what = "channel(s)" if cls == "call" else "queue member(s) or caller(s)"
            why = (
                f"the account {self.username!r} does not read {cls} events ({appeared} {what} appeared or"
                f" went away since the last list, and no {cls} event arrived)"
            )
            self._block(cls, why, now)
        elif part.reason == "reconcile" and any(repaired.values()):
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
