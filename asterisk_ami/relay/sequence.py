"""A consumer's view of each PBX's numbering (sans-IO): duplicates dropped, losses reported as gaps.

Rules (README "Many PBXes: the relay", the gap rules):

* per PBX the position is (epoch, the last number delivered); a message wholly at or before it is a
  duplicate (a retried publish, a redelivery) and is dropped, one partly after it delivers the rest;
* a number that skips within an epoch is a gap ``skipped`` with the range lost (a consumer waits a moment
  for the missing numbers first: a publish retried after a NATS reconnect can be stored after later ones);
* a ``dropped`` control message (the relay's buffer was full, or a frame too large for NATS) is a gap
  ``dropped`` with the range lost, at once;
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

    ``reason`` is ``'dropped'`` (the relay dropped numbers ``first``..``last`` of ``epoch``: its buffer was
    full while NATS did not keep up, or a frame was larger than a NATS message), ``'skipped'`` (those
    numbers never came, nor did a reason) or ``'reconnect'`` (a new epoch: the range between the sessions
    is unknown, ``first`` and ``last`` are None). For a reconnect,
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


_SESSION = frozenset({"connected", "disconnected"})  # control messages about the AMI session


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
        if control is not None and epoch >= pos.epoch and control.get("type") in _SESSION:
            kind = str(control.get("type"))
            pos.connected = kind == "connected"
            pos.control = control
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
        session = kind in _SESSION
        pos = self.positions.get(pbx)
        if pos is None:
            if session:
                self.positions[pbx] = Position(pbx, epoch, seq, kind == "connected", body, {kind})
            else:
                self.positions[pbx] = Position(pbx, epoch, seq)
            return True, None
        if epoch < pos.epoch or (epoch == pos.epoch and (kind in pos.seen if session else seq <= pos.seq)):
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
        elif seq > pos.seq:  # dropped or disconnected, naming frames this consumer did not get
            gap = Gap(pbx, epoch, pos.seq + 1, seq, "dropped" if kind == "dropped" else "skipped")
            pos.seq = seq
        if session:
            pos.seen.add(kind)
            pos.connected = kind == "connected"
            pos.control = body
        if gap is not None:
            self.gaps += 1
        return True, gap

    def hole(self, pbx: str, epoch: int, first: int, control: dict[str, Any] | None) -> bool:
        """Whether a message would leave numbers missing that may still come (a retried publish stored
        late): events past the next number, ``disconnected`` past the last one, or a ``connected`` whose
        previous epoch is ours and ended past where this consumer is."""
        pos = self.positions.get(pbx)
        if pos is None:
            return False
        if control is None:
            return epoch == pos.epoch and first > pos.seq + 1
        kind = control.get("type")
        if kind == "disconnected":
            return epoch == pos.epoch and first > pos.seq
        if kind == "connected" and epoch > pos.epoch and control.get("previous_epoch") == pos.epoch:
            last = control.get("previous_last_seq")
            return isinstance(last, int) and last > pos.seq
        return False

    def reached(self, pbx: str, epoch: int, seq: int) -> bool | None:
        """Whether the consumer is at or past (epoch, seq) of ``pbx``; None when it is past that epoch."""
        pos = self.positions.get(pbx)
        if pos is None:
            return False
        if pos.epoch > epoch:
            return None
        return pos.epoch == epoch and pos.seq >= seq
