"""``RemoteAmi.events(*names)``: frames from the bus as an async iterator, bounded, without polling.

While a stream holds ``maxsize`` frames the consumer stops asking JetStream for more (the pull
consumer's back-pressure); the messages already asked for still go in, so a stream can pass its bound by
one pull's frames. Nothing is dropped: the stream itself keeps what the consumer has not read yet.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType

from ..protocol import Frame


class RemoteStream:
    """Event frames (all, or those of ``names``) in stream order; an async context manager that ends the
    subscription on exit. It ends with ``close()`` or when its ``RemoteAmi`` disconnects."""

    def __init__(self, names: Iterable[str], maxsize: int, on_change: Callable[[RemoteStream], None]) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be positive")
        self.names: frozenset[str] | None = frozenset(names) or None
        self.maxsize = maxsize
        self.full = False
        self._items: deque[Frame] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._on_change = on_change  # full, drained or closed: the RemoteAmi pauses or resumes pulling

    def __repr__(self) -> str:
        names = "all events" if self.names is None else ", ".join(sorted(self.names))
        return f"<RemoteStream {names}: {len(self._items)} waiting{' (closed)' if self._closed else ''}>"

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def __aiter__(self) -> RemoteStream:
        return self

    async def __anext__(self) -> Frame:
        items = self._items
        while not items:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        frame = items.popleft()
        if self.full and len(items) < self.maxsize:
            self.full = False
            self._on_change(self)
        return frame

    async def __aenter__(self) -> RemoteStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """End the subscription: iteration stops once the frames already in are taken."""
        if self._closed:
            return
        self._closed = True
        self._wake()
        self._on_change(self)

    def push(self, frame: Frame) -> None:
        if self._closed:
            return
        self._items.append(frame)
        if self._waiter is not None:
            self._wake()
        if not self.full and len(self._items) >= self.maxsize:
            self.full = True
            self._on_change(self)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
