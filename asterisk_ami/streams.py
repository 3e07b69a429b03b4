"""``ami.events(*names)``, the part both shells share: which frames a stream takes, and its bound.

Back-pressure rule, the same on both shells: while a stream holds ``maxsize`` frames or more, the client
stops reading, so TCP pushes back on Asterisk. Nothing already read is dropped: the frames of the read in
progress still go in (a stream can go past its bound by one read's frames). Reading resumes when every
stream is below its bound again. A stream lives across reconnects and ends with ``close()``, or when the
client stops (``disconnect()``, ``destroy()``, a refused login, a close without reconnect): iteration then
ends once the frames already in are taken. Each shell adds only how a consumer waits (a future, a
condition).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from .patterns import EventMatcher
from .protocol import Frame, frame_kind


class StreamBuffer:
    """One subscription's frames, in arrival order. Not thread-safe: the threaded shell locks it."""

    def __init__(self, names: Iterable[str], maxsize: int, where: str = "") -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be a positive int, not {maxsize!r}")
        self.matcher = EventMatcher(names)
        self.maxsize = maxsize
        self.items: deque[Frame] = deque()
        self.closed = False
        self.full = False  # holds maxsize frames or more: the client does not read
        # how a slow-reader warning names it: the consumer is what is slow
        self.label = f"events({self.matcher.describe() if not self.matcher.everything else ''}){where}"

    def __repr__(self) -> str:
        state = " (closed)" if self.closed else ""
        return f"<EventStream {self.matcher.describe()}: {len(self.items)} waiting{state}>"

    def __len__(self) -> int:
        return len(self.items)

    def offer(self, frame: Frame) -> bool:
        """Take ``frame`` if the stream wants it (an event frame whose name matches); True when it did."""
        if self.closed:
            return False
        event = frame.get("event")
        if not isinstance(event, str) or frame_kind(frame) != "event" or not self.matcher.matches(event):
            return False
        self.items.append(frame)
        if len(self.items) >= self.maxsize:
            self.full = True
        return True

    def take(self) -> tuple[Frame, bool]:
        """The oldest frame (there must be one), and whether the stream just stopped being full."""
        frame = self.items.popleft()
        if self.full and len(self.items) < self.maxsize:
            self.full = False
            return frame, True
        return frame, False


def offer_all(streams: list[StreamBuffer], frames: list[Frame]) -> bool:
    """Every event frame to every stream that wants it; True when one of them is full now."""
    full = False
    for frame in frames:
        for stream in streams:
            if stream.offer(frame) and stream.full:
                full = True
    return full
