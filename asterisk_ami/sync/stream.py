"""``ami.events(*names)`` on the threaded client: event frames as a blocking iterator, bounded.

The rules are the shared ones (``asterisk_ami/streams.py``): while a stream is full the reader stops
reading; the stream ends with ``close()`` or when the client stops. The reader thread fills it; any
thread may take from it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType

from ..protocol import Frame
from ..streams import StreamBuffer


class EventStream(Iterator[Frame]):
    """Event frames (every event, or those named or matching a pattern) in arrival order. Iterate it
    (``for frame in ami.events("Hangup"):``), or ``get(timeout)``; also a context manager that ends the
    subscription on exit. It lives across reconnects."""

    def __init__(
        self, buffer: StreamBuffer, cond: threading.Condition, on_close: Callable[[EventStream], None]
    ) -> None:
        self.buffer = buffer
        self._cond = cond
        self._on_close = on_close

    def __repr__(self) -> str:
        return repr(self.buffer)

    def __len__(self) -> int:
        return len(self.buffer)

    @property
    def closed(self) -> bool:
        return self.buffer.closed

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Frame:
        frame = self.get()
        if frame is None:
            raise StopIteration
        return frame

    def get(self, timeout: float | None = None) -> Frame | None:
        """The next frame, waiting up to ``timeout`` seconds (None: until one comes); None once the stream
        has ended and is empty. Raises ``TimeoutError`` when none came in time."""
        buffer = self.buffer
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not buffer.items:
                if buffer.closed:
                    return None
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"no event within {timeout} s")
                self._cond.wait(left)
            frame, unblocked = buffer.take()
            if unblocked:
                self._cond.notify_all()  # the reader waits for room
        return frame

    def close(self) -> None:
        """End the subscription: iteration stops once the frames already in are taken."""
        with self._cond:
            if self.buffer.closed:
                return
            self.buffer.closed = True
            self.buffer.full = False
            self._cond.notify_all()
        self._on_close(self)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
