"""``ami.events(*names)`` on the asyncio client: event frames as an async iterator, bounded, without polling.

The rules are the shared ones (``asterisk_ami/streams.py``): while a stream is full the connection stops
reading (``transport.pause_reading()``); the stream ends with ``close()`` or when the client stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from types import TracebackType

from ..protocol import Frame
from ..streams import StreamBuffer


class EventStream(AsyncIterator[Frame]):
    """Event frames (every event, or those named or matching a pattern) in arrival order; also an async
    context manager that ends the subscription on exit. It lives across reconnects."""

    def __init__(
        self, buffer: StreamBuffer, on_drained: Callable[[], None], on_close: Callable[[EventStream], None]
    ) -> None:
        self.buffer = buffer
        self._on_drained = on_drained
        self._on_close = on_close
        self._waiter: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return repr(self.buffer)

    def __len__(self) -> int:
        return len(self.buffer)

    @property
    def closed(self) -> bool:
        return self.buffer.closed

    @property
    def full(self) -> bool:
        return self.buffer.full

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Frame:
        buffer = self.buffer
        while not buffer.items:
            if buffer.closed:
                raise StopAsyncIteration
            self._waiter = waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        frame, unblocked = buffer.take()
        if unblocked:
            self._on_drained()
        return frame

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """End the subscription: iteration stops once the frames already in are taken."""
        if self.buffer.closed:
            return
        self.buffer.closed = True
        self.buffer.full = False
        self.wake()
        self._on_close(self)

    def wake(self) -> None:
        """Frames came in (or the stream ended): the waiting consumer goes on."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
