"""One PBX's messages on their way to JetStream, in order (sans-IO: no NATS, no clock of its own).

Every event frame gets the next sequence number of the epoch as it is read, then waits in a batch; a
batch is closed (encoded once, never changed, so a retried publish is the same message) when it holds
``batch_frames`` frames, when its delay is over, or before a control message. Closed messages wait in
``pending`` until the publisher sends them and in ``inflight`` until JetStream acknowledges them; after a
NATS reconnect or an acknowledgement that does not come, every unacknowledged one goes back to the front
of ``pending``, in order, and is sent again with the same ``Nats-Msg-Id``.

The bound: what is held (frames in the batch, pending and in flight) stays under ``buffer_frames`` and
``buffer_bytes``. When it is reached, ``add()`` drops the frame (``on_stall='drop'``), its number is used
up all the same, so consumers see the loss as a gap; with ``on_stall='block'`` the caller stops reading
instead (``full`` tells it when).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ..protocol import Frame
from . import wire

# the largest payload a batch may have; a NATS server's default max_payload is 1 MiB (headers count too)
DEFAULT_MAX_PAYLOAD = 1024 * 1024 - 4096


class Message:
    """One message for the stream: a batch of frames or a control message."""

    __slots__ = (
        "acked",
        "attempts",
        "control",
        "epoch",
        "first",
        "frames",
        "future",
        "headers",
        "last",
        "payload",
        "ready",
        "sent_at",
        "size",
        "subject",
    )

    def __init__(
        self, subject: str, payload: bytes, headers: dict[str, str], epoch: int, first: int, last: int, frames: int
    ) -> None:
        self.subject = subject
        self.payload = payload
        self.headers = headers
        self.epoch = epoch
        self.first = first
        self.last = last
        self.frames = frames
        self.size = len(payload)
        self.control: str | None = None
        self.ready = True  # a 'connected' message waits for what it says (CoreStatus, the action subject)
        self.acked = False
        self.sent_at = 0.0
        self.attempts = 0
        self.future: Any = None

    def __repr__(self) -> str:
        what = self.control or f"frames {self.first}-{self.last}"
        return f"<Message {self.subject} epoch {self.epoch} {what}{' acked' if self.acked else ''}>"


class Outbox:
    """The ordered, bounded buffer of one PBX (see the module's docstring)."""

    def __init__(
        self,
        pbx: str,
        *,
        per_frame: bool = False,
        batch_frames: int = 100,
        buffer_frames: int = 50_000,
        buffer_bytes: int = 64 * 1024 * 1024,
        max_inflight: int = 64,
        drop: bool = True,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        self.pbx = pbx
        self.per_frame = per_frame
        self.batch_frames = 1 if per_frame else batch_frames
        self.buffer_frames = buffer_frames
        self.buffer_bytes = buffer_bytes
        self.max_inflight = max_inflight
        self.drop = drop
        self.max_payload = max_payload
        self.subject = wire.events_subject(pbx)
        self.epoch = 0
        self.seq = 0  # the last number given in this epoch
        self.batch: list[Frame] = []
        self.batch_first = 0  # the number of the batch's first frame
        self.pending: deque[Message] = deque()
        self.inflight: deque[Message] = deque()
        self.frames_held = 0
        self.bytes_held = 0
        # counters (stats)
        self.frames_in = 0
        self.dropped = 0
        self.oversized = 0  # frames too large for one NATS message (also counted in dropped)
        self.dropping = False  # in a drop episode: numbers drop_first..drop_last were lost
        self.drop_first = 0
        self.drop_last = 0
        self.drop_reason = ""
        self.last_drop: tuple[int, int, str] | None = None  # the last episode that ended
        self.messages_acked = 0
        self.frames_acked = 0
        self.duplicates = 0
        self.retries = 0

    # -- reading side ----------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        return self.frames_held >= self.buffer_frames or self.bytes_held >= self.buffer_bytes

    def new_epoch(self, epoch: int) -> Message:
        """A login: the batch of the old epoch is closed and the new epoch starts with its ``connected``
        message, which waits (``ready`` False) until :meth:`complete_control` fills it."""
        self.close_batch()
        self.end_drops()
        self.epoch = epoch
        self.seq = 0
        message = self._control("connected", b"")
        message.ready = False
        return message

    def complete_control(self, message: Message, body: dict[str, Any]) -> None:
        payload = wire.encode(body)
        self.bytes_held += len(payload) - message.size
        message.payload = payload
        message.size = len(payload)
        message.ready = True

    def add_control(self, kind: str, body: dict[str, Any]) -> Message:
        """A control message after everything read so far (``disconnected``)."""
        self.close_batch()
        self.end_drops()
        return self._control(kind, wire.encode(body))

    def _control(self, kind: str, payload: bytes, seq: int | None = None, msg_id: str | None = None) -> Message:
        seq = self.seq if seq is None else seq
        headers = wire.control_headers(self.pbx, self.epoch, seq, msg_id or kind)
        message = Message(wire.control_subject(self.pbx), payload, headers, self.epoch, seq, seq, 0)
        message.control = kind
        self.pending.append(message)
        self.bytes_held += message.size
        return message

    def add(self, frame: Frame) -> bool:
        """One event frame, numbered now. False when it was dropped (full, ``drop`` mode)."""
        self.seq += 1
        if self.drop and (self.frames_held >= self.buffer_frames or self.bytes_held >= self.buffer_bytes):
            self._drop(self.seq, "buffer full")
            return False
        if self.dropping:
            self.end_drops()
        self.frames_in += 1
        self.frames_held += 1
        batch = self.batch
        if not batch:
            self.batch_first = self.seq
        batch.append(frame)
        if len(batch) >= self.batch_frames:
            self.close_batch()
        return True

    def _drop(self, seq: int, reason: str) -> None:
        if self.dropping and (reason != self.drop_reason or seq != self.drop_last + 1):
            self.end_drops()
        if not self.dropping:
            # batches hold consecutive numbers only: what was read before the loss goes out as it is
            self.close_batch()
            self.dropping = True
            self.drop_first = seq
            self.drop_reason = reason
        self.drop_last = seq
        self.dropped += 1

    def end_drops(self) -> tuple[int, int, str] | None:
        """End a drop episode: a ``dropped`` control message takes the place of the frames lost, so that
        consumers report the gap at once. Returns (first, last, reason), or None when none was going on."""
        if not self.dropping:
            return None
        self.dropping = False
        first, last, reason = self.drop_first, self.drop_last, self.drop_reason
        body = {"type": "dropped", "pbx": self.pbx, "epoch": self.epoch, "first": first, "last": last}
        body.update({"count": last - first + 1, "reason": reason})
        self._control("dropped", wire.encode(body), seq=last, msg_id=f"dropped-{first}")
        self.last_drop = (first, last, reason)
        return self.last_drop

    def close_batch(self) -> None:
        """Encode the frames waiting in the batch into message(s) for ``pending``."""
        batch = self.batch
        if not batch:
            return
        self.batch = []
        self._encode(batch, self.batch_first)

    def _encode(self, frames: list[Frame], first: int) -> None:
        last = first + len(frames) - 1
        if self.per_frame:
            frame = frames[0]
            payload = wire.encode(frame)
            subject = wire.frame_subject(self.pbx, frame.get("event"))
        else:
            payload = wire.encode(frames)
            subject = self.subject
        if len(payload) > self.max_payload:
            if len(frames) > 1:  # split, each half keeping its numbers
                half = len(frames) // 2
                self._encode(frames[:half], first)
                self._encode(frames[half:], first + half)
                return
            # one frame larger than NATS takes: lost, and a gap shows it
            self.frames_held -= 1
            self.oversized += 1
            self._drop(first, "too large")
            self.end_drops()
            return
        headers = wire.event_headers(self.pbx, self.epoch, first, last)
        message = Message(subject, payload, headers, self.epoch, first, last, len(frames))
        self.pending.append(message)
        self.bytes_held += message.size

    # -- publishing side -----------------------------------------------------------------------------

    def next_to_send(self) -> Message | None:
        """The next message to publish, when one is ready and the in-flight limit allows."""
        if not self.pending or len(self.inflight) >= self.max_inflight:
            return None
        message = self.pending[0]
        return message if message.ready else None

    def sent(self, message: Message, now: float, future: Any) -> None:
        assert self.pending and self.pending[0] is message
        self.pending.popleft()
        message.sent_at = now
        message.attempts += 1
        message.future = future
        self.inflight.append(message)

    def acked(self, message: Message, duplicate: bool) -> None:
        """JetStream stored ``message`` (``duplicate``: it already had it, from an earlier attempt)."""
        if message.acked:
            return
        message.acked = True
        message.future = None
        self.messages_acked += 1
        self.frames_acked += message.frames
        if duplicate:
            self.duplicates += 1
        inflight = self.inflight
        while inflight and inflight[0].acked:
            done = inflight.popleft()
            self.frames_held -= done.frames
            self.bytes_held -= done.size

    def requeue(self) -> list[Message]:
        """Every message in flight and not acknowledged goes back to the front of ``pending``, in order;
        returns them (their old futures are the caller's to cancel)."""
        again = [m for m in self.inflight if not m.acked]
        for m in self.inflight:
            if m.acked:  # stored, but behind one that was not: no longer held
                self.frames_held -= m.frames
                self.bytes_held -= m.size
        self.inflight.clear()
        self.pending.extendleft(reversed(again))
        self.retries += len(again)
        return again

    def oldest_sent_at(self) -> float | None:
        for m in self.inflight:
            if not m.acked:
                return m.sent_at
        return None

    @property
    def idle(self) -> bool:
        """Nothing waits to be sent or acknowledged."""
        return not self.batch and not self.pending and not self.inflight

    def stats(self) -> dict[str, int]:
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "frames": self.frames_in,
            "dropped": self.dropped,
            "held_frames": self.frames_held,
            "held_bytes": self.bytes_held,
            "pending_messages": len(self.pending),
            "inflight_messages": len(self.inflight),
            "acked_messages": self.messages_acked,
            "acked_frames": self.frames_acked,
            "duplicates": self.duplicates,
            "retries": self.retries,
        }
