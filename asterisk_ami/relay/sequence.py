"""A consumer's view of each PBX's numbering (sans-IO): duplicates dropped, losses reported as gaps.

Rules (README "Many PBXes: the relay", the gap rules):

* per PBX the position is (epoch, the last number delivered); a message wholly at or before it is a
  duplicate (a retried publish, a redelivery) and is dropped, one partly after it delivers the rest;
* a number that skips within an epoch is a gap ``skipped`` with the range lost;
* a new epoch is a gap ``reconnect``: what Asterisk sent between the two AMI sessions was never
  numbered, so its range is unknown; the ``connected`` message says where the relay's previous epoch
  ended and whether Asterisk restarted, and the gap carries it (one gap per new epoch);
* ``disconnected`` naming a number this consumer never got is a gap ``skipped`` at once;
* the first message of a PBX only sets the position: a consumer that starts late has lost nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Gap:
    """Frames of ``pbx`` this consumer did not get, and will not.

    ``reason`` is ``'skipped'`` (numbers ``first``..``last`` of ``epoch`` are missing: dropped by a relay
    whose buffer was full, expired from the stream, or reordered) or ``'reconnect'`` (a new epoch: the
    range between the sessions is unknown, ``first`` and ``last`` are None). For a reconnect,
    ``previous_epoch``/``previous_seq`` are where this consumer was, ``previous_last_seq`` where the
    relay says that epoch ended (None when it does not say), and ``asterisk_restarted`` what the relay
    found out from ``CoreStatus`` (None: unknown).
    """

    pbx: str
    epoch: int
    first: int | None
    last: int | None
    reason: str
    previous_epoch: int | None = None
    previous_seq: int | None = None
    previous_last_seq: int | None = None
    asterisk_restarted: bool | None = None

    @property
    def count(self) -> int | None:
        """How many frames are known to be lost (None: unknown)."""
        if self.first is None or self.last is None:
            return None
        return self.last - self.first + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Position:
    """Where a consumer is in one PBX's stream, and what the last control message said."""

    pbx: str
    epoch: int
    seq: int
    connected: bool | None = None  # None: no control message seen yet
    control: dict[str, Any] | None = None  # the last control message
    seen: set[str] = field(default_factory=set)  # control types seen in this epoch


class Tracker:
    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}
        self.gaps = 0
        self.duplicates = 0

    def mark(self, pbx: str, epoch: int, seq: int, control: dict[str, Any] | None = None) -> None:
        """A position from the stream's latest messages (at the start): no delivery, no gap."""
        pos = self.positions.get(pbx)
        if pos is None:
            pos = self.positions[pbx] = Position(pbx, epoch, seq)
        elif (epoch, seq) > (pos.epoch, pos.seq):
            if epoch != pos.epoch:
                pos.seen = set()
            pos.epoch, pos.seq = epoch, seq
        if control is not None and epoch >= pos.epoch:
            kind = control.get("type")
            pos.connected = kind == "connected"
            pos.control = control
            if isinstance(kind, str):
                pos.seen.add(kind)

    def events(self, pbx: str, epoch: int, first: int, last: int) -> tuple[int, Gap | None]:
        """A message with frames ``first``..``last`` of ``epoch``: (how many of its first frames were
        delivered before, the gap before it or None). All of them: a duplicate."""
        count = last - first + 1
        pos = self.positions.get(pbx)
        if pos is None:
            self.positions[pbx] = Position(pbx, epoch, last)
            return 0, None
        if epoch < pos.epoch or (epoch == pos.epoch and last <= pos.seq):
            self.duplicates += 1
            return count, None
        gap = None
        skip = 0
        if epoch > pos.epoch:
            gap = Gap(pbx, epoch, None, None, "reconnect", pos.epoch, pos.seq)
            pos.epoch = epoch
            pos.seen = set()
        elif first <= pos.seq:
            skip = pos.seq - first + 1
        elif first > pos.seq + 1:
            gap = Gap(pbx, epoch, pos.seq + 1, first - 1, "skipped")
        pos.seq = last
        if gap is not None:
            self.gaps += 1
        return skip, gap

    def control(self, pbx: str, epoch: int, seq: int, body: dict[str, Any]) -> tuple[bool, Gap | None]:
        """A control message: (whether it is new, the gap it reveals or None)."""
        kind = str(body.get("type"))
        pos = self.positions.get(pbx)
        if pos is None:
            self.positions[pbx] = Position(pbx, epoch, seq, kind == "connected", body, {kind})
            return True, None
        if epoch < pos.epoch or (epoch == pos.epoch and kind in pos.seen):
            self.duplicates += 1
            return False, None
        gap = None
        if epoch > pos.epoch:
            previous_last = body.get("previous_last_seq") if body.get("previous_epoch") == pos.epoch else None
            restarted = body.get("asterisk_restarted")
            if kind == "connected" or seq < 1:
                first = last = None
            else:  # a whole epoch this consumer never saw the start of
                first, last = 1, seq
            gap = Gap(
                pbx,
                epoch,
                first,
                last,
                "reconnect",
                pos.epoch,
                pos.seq,
                previous_last if isinstance(previous_last, int) else None,
                restarted if isinstance(restarted, bool) else None,
            )
            pos.epoch, pos.seq, pos.seen = epoch, seq, set()
        elif seq > pos.seq:  # disconnected, naming frames this consumer did not get
            gap = Gap(pbx, epoch, pos.seq + 1, seq, "skipped")
            pos.seq = seq
        pos.seen.add(kind)
        pos.connected = kind == "connected"
        pos.control = body
        if gap is not None:
            self.gaps += 1
        return True, gap

    def reached(self, pbx: str, epoch: int, seq: int) -> bool | None:
        """Whether the consumer is at or past (epoch, seq) of ``pbx``; None when it is past that epoch."""
        pos = self.positions.get(pbx)
        if pos is None:
            return False
        if pos.epoch > epoch:
            return None
        return pos.epoch == epoch and pos.seq >= seq
