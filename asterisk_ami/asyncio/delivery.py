"""The asyncio client's delivery side (mixed into ``AsteriskAmi``): frames to handlers and ``events()``
streams, reading paused while a stream is full or frames are held for a caller of ``connect()``, the
slow-handler watch of a loop held by a plain handler, and coroutine handlers run as tasks."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..backpressure import BlockWatch
from ..handlers import HandlerTable, handler_name
from ..lifecycle import ClientLifecycle
from ..logs import ConnectionLog
from ..options import AmiOptions
from ..streams import StreamBuffer, offer_all
from .stream import EventStream

if TYPE_CHECKING:
    from .client import _Connection


class Delivery:
    """Frames to handlers and streams, and the reading they hold back."""

    options: AmiOptions
    _core: ClientLifecycle
    _handlers: HandlerTable
    _watch: BlockWatch
    _log: ConnectionLog
    _loop: asyncio.AbstractEventLoop | None
    _conn: _Connection | None
    _streams: list[EventStream]
    _stream_high_water: int
    _paused: bool
    _watch_timer: asyncio.TimerHandle | None
    _tasks: set[asyncio.Future[Any]]
    _release_soon: bool
    _now: Callable[[], float]
    _process: Callable[[], None]

    def _deliver(self, frames: list[Any]) -> None:
        self._handlers.deliver(frames)
        streams = self._streams
        if streams:
            offer_all([s.buffer for s in streams], frames)
            for stream in streams:
                if stream.buffer.items:
                    stream.wake()

    def _update_reading(self) -> None:
        """Pause reading while a stream is full (or too much is held for a caller), resume when not."""
        full = any(s.buffer.full for s in self._streams)
        pause = full or self._core.holding
        if full:
            waiting = sum(len(s) for s in self._streams)
            self._stream_high_water = max(self._stream_high_water, waiting)
        if pause == self._paused:
            return
        conn = self._conn
        transport = None if conn is None else conn.transport
        if transport is None:
            return
        self._paused = pause
        self._core.set_reading(pause, self._now())
        if pause:
            transport.pause_reading()
            if full:
                self._streams_blocked()
        else:
            transport.resume_reading()
            if self._watch.blocked:
                self._streams_unblocked()

    def _streams_blocked(self) -> None:
        """A full events() stream stopped reading: the episode is watched from a timer."""
        watch = self._watch
        now = time.monotonic()
        watch.block(now)
        due = watch.next_check(now)
        if due is not None and self._watch_timer is None and self._loop is not None:
            self._watch_timer = self._loop.call_later(due - now, self._check_blocked)

    def _check_blocked(self) -> None:
        self._watch_timer = None
        full = [s.buffer.label for s in self._streams if s.buffer.full]
        now = time.monotonic()
        message = self._watch.check(now, " and ".join(full) or None, self._watch.episode_seconds(now))
        if message:
            self._log.warning(message)

    def _streams_unblocked(self) -> None:
        self._watch.unblock(time.monotonic())
        if self._watch_timer is not None:
            self._watch_timer.cancel()
            self._watch_timer = None

    def _handler_stalled(self, f: Callable[..., Any], seconds: float) -> None:
        """A plain handler held the loop, and so the reading, for ``seconds``: warned about once it is over
        (nothing else runs on the loop meanwhile)."""
        message = self._watch.stalled(time.monotonic(), seconds, handler_name(f))
        if message:
            self._log.warning(message)

    def _handler_returned(self, f: Callable[..., Any], result: Any) -> None:
        if not inspect.isawaitable(result):
            return
        task = asyncio.ensure_future(result)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._handler_done(f, t))

    def _handler_done(self, f: Callable[..., Any], task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._handlers.failed(f, task.exception())  # type: ignore[arg-type]

    def events(self, *names: str, maxsize: int | None = None) -> EventStream:
        """Event frames as an async iterator (every event, or those named; ``'Queue*'`` patterns match in
        any case), bounded by ``maxsize`` (default: ``max_queued_frames``): while it is full the connection
        stops reading. Ends with ``close()`` or when the client stops; see ``EventStream``."""
        task = asyncio.current_task()
        where = f" in task {task.get_name()!r}" if task is not None else ""
        buffer = StreamBuffer(names, self.options.max_queued_frames if maxsize is None else maxsize, where)
        stream = EventStream(buffer, self._stream_drained, self._stream_closed)
        self._streams.append(stream)
        self._touch()
        return stream

    def _stream_drained(self) -> None:
        self._update_reading()

    def _stream_closed(self, stream: EventStream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)
        self._update_reading()

    def _touch(self) -> None:
        """The user's code used the client: what was held for it goes once its current step is over."""
        if not self._release_soon and self._loop is not None:
            self._release_soon = True
            self._loop.call_soon(self._release)

    def _release(self) -> None:
        self._release_soon = False
        self._core.release(self._now())
        self._process()

