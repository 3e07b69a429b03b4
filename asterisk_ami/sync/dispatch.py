"""The threaded client's dispatch side: the hand-off from the reader thread and the dispatch thread's loop.

Back-pressure rule: at most ``max_frames`` frames wait in the queue. The reader never blocks handing
frames over: what does not fit waits with the reader, in order, and the reader reads no more until it
has gone in (or while an ``events()`` stream is full), so TCP pushes back on Asterisk. Nothing already
read is dropped. The bound is lifted while the dispatch thread itself waits for an action result, or
that wait could never end.

The queue carries typed items: :class:`Deliver` (frames, with the action callbacks due after them),
:class:`Emit` (one of the library's events), :class:`Call` (a user callback) and :class:`Stop`. It
shares one condition with the client's streams: whoever makes room notifies it, and the reader waits on it.
"""

from __future__ import annotations

import inspect
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeAlias

from ..handlers import Call, HandlerTable, handler_name
from ..logs import ConnectionLog
from ..protocol import Frame


class Deliver:
    """Frames for ``ami_data`` and the event-name handlers, in order, with Calls between them where an
    action's callback is due right after the frame that completed it."""

    __slots__ = ("items", "size")

    def __init__(self, items: list[Frame | Call]) -> None:
        self.items = items
        self.size = len(items)


class Emit:
    """One of the library's events (``ami_login``, ``ami_socket_*``) with its arguments."""

    __slots__ = ("args", "event")

    def __init__(self, event: str, args: tuple[Any, ...] = ()) -> None:
        self.event = event
        self.args = args


class Stop:
    """The reader thread is done: the dispatch thread may exit once nothing else waits."""

    __slots__ = ()


Item: TypeAlias = Deliver | Emit | Call | Stop


class DispatchQueue:
    def __init__(self, max_frames: int, cond: threading.Condition) -> None:
        self.max_frames = max_frames
        self._items: deque[Item] = deque()
        self._frames = 0
        self._cond = cond
        self._unbounded = 0
        self.high_water = 0  # most frames ever waiting (``stats['queue_high_water']``)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def frames(self) -> int:
        """Frames waiting for the dispatch thread now."""
        return self._frames

    def fits(self, item: Item) -> bool:
        """``item`` can go in without passing the bound (an empty queue takes any slice of frames)."""
        frames = item.size if isinstance(item, Deliver) else 0
        return not frames or not self._frames or self._unbounded > 0 or self._frames + frames <= self.max_frames

    def put(self, item: Item) -> None:
        """Queue ``item``; never blocks (the reader keeps what does not fit, see :meth:`fits`)."""
        frames = item.size if isinstance(item, Deliver) else 0
        with self._cond:
            self._items.append(item)
            self._frames += frames
            if self._frames > self.high_water:
                self.high_water = self._frames
            self._cond.notify_all()

    def get_all(self) -> deque[Item]:
        """Every waiting item (blocks until there is one)."""
        with self._cond:
            while not self._items:
                self._cond.wait()
            items = self._items
            self._items = deque()
            return items

    def release(self, frames: int) -> None:
        """The dispatch thread finished ``frames`` frames."""
        if frames:
            with self._cond:
                self._frames -= frames
                self._cond.notify_all()

    def lift_bound(self) -> None:
        with self._cond:
            self._unbounded += 1
            self._cond.notify_all()

    def restore_bound(self) -> None:
        with self._cond:
            self._unbounded -= 1


class DispatchThread:
    """The dispatch thread of the threaded client (mixed into ``AsteriskAmi``): it runs every handler
    and callback in queue order, and reports handlers it cannot run."""

    _queue: DispatchQueue
    _handlers: HandlerTable
    _state_lock: threading.Lock
    _dispatcher: threading.Thread | None
    _active_runs: int
    _coroutine_warned: bool
    _log: ConnectionLog

    def _emit_soon(self, event: str, *args: Any) -> None:
        """Emit on the dispatch thread when it runs, else here and now."""
        with self._state_lock:
            running = self._dispatcher is not None
            if running:  # under the lock, so the dispatch thread cannot exit in between
                self._queue.put(Emit(event, args))
        if not running:
            self._handlers.emit(event, *args)

    def _start_dispatcher(self) -> None:
        """Start the dispatch thread unless it runs (the caller holds ``_state_lock``)."""
        if self._dispatcher is None:
            self._dispatcher = threading.Thread(target=self._dispatch_loop, name="asterisk-ami-dispatch", daemon=True)
            self._dispatcher.start()

    def _dispatch_loop(self) -> None:
        queue = self._queue
        while True:
            for item in queue.get_all():
                try:
                    self._dispatch(item)
                except Exception:
                    self._log.exception("dispatch failed")
            with self._state_lock:
                if self._active_runs == 0 and not len(queue):
                    self._dispatcher = None
                    return

    def _dispatch(self, item: Item) -> None:
        if isinstance(item, Deliver):
            try:
                self._handlers.deliver(item.items)
            finally:  # or the reader would wait for room forever
                self._queue.release(item.size)
        elif isinstance(item, Emit):
            self._handlers.emit(item.event, *item.args)
        elif isinstance(item, Call):
            self._handlers.call(item.fn, item.args)

    def _handler_returned(self, f: Callable[..., Any], result: Any) -> None:
        # an ``async def`` handler returns a coroutine nobody here can run
        if inspect.iscoroutine(result):
            result.close()
        if not self._coroutine_warned and (inspect.iscoroutinefunction(f) or inspect.iscoroutine(result)):
            self._coroutine_warned = True
            self._log.error(
                "handler %s is a coroutine function: the threaded client never awaits it;"
                " use asterisk_ami.asyncio.AsteriskAmi",
                handler_name(f),
            )
