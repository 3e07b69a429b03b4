"""``ami.events(*names)``: event frames as an async iterator, bounded, without polling.

Back-pressure rule, as the threaded client's: while a subscription holds ``maxsize`` frames or more, the
connection stops reading (``transport.pause_reading()``), so TCP pushes back on Asterisk. Nothing already
read is dropped: the frames of the read in progress still go in (at most one read past the bound).
Reading resumes when every subscription is below its bound again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING

from ..protocol import Frame

if TYPE_CHECKING:
    from .client import AsteriskAmi


class EventStream:
    """Event frames (all of them, or those of ``names``) in arrival order; also an async context manager
    that ends the subscription on exit. The stream ends when ``close()`` is called or the client is
    disconnected or destroyed; it lives across reconnects."""

    def __init__(self, ami: AsteriskAmi, names: Iterable[str], maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be positive")
        self.names: frozenset[str] | None = frozenset(names) or None
        self.maxsize = maxsize
        self._ami = ami
        self._items: deque[Frame] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.full = False  # holds maxsize frames or more: the connection does not read
        task = asyncio.current_task()
        names_text = "" if self.names is None else ", ".join(repr(n) for n in sorted(self.names))
        # how a slow-reader warning names it: the consumer is what is slow
        self.label = f"events({names_text})" + (f" in task {task.get_name()!r}" if task is not None else "")

    def __repr__(self) -> str:
        names = "all events" if self.names is None else ", ".join(sorted(self.names))
        return f"<EventStream {names}: {len(self._items)} waiting{' (closed)' if self._closed else ''}>"

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def __aiter__(self) -> EventStream:
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
            self._ami._stream_drained()
        return frame

    async def __aenter__(self) -> EventStream:
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
        self._ami._stream_closed(self)

    def push(self, frame: Frame) -> bool:
        """Add one frame (the client calls this); True when the stream is now full."""
        items = self._items
        items.append(frame)
        if self._waiter is not None:
            self._wake()
        if len(items) >= self.maxsize:
            self.full = True
        return self.full

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
