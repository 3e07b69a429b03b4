"""The threaded client's dispatch side: the bounded hand-off from the reader thread, the dispatch
thread's loop, and the watch on a reader that waits for room.

Back-pressure rule: when ``max_frames`` frames are waiting, the reader blocks in ``put`` and stops
reading the socket, so TCP pushes back on Asterisk; nothing already read is dropped. The bound is
lifted while the dispatch thread itself waits for an action result, or that wait could never end.

The queue carries typed items: :class:`Deliver` (frames, with the action callbacks due after them),
:class:`Emit` (one of the library's events), :class:`Call` (a user callback) and :class:`Stop`.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeAlias

from .blocking import BlockWatch
from .handlers import Call, Handler, HandlerRegistry, handler_name
from .protocol import Frame

logger = logging.getLogger("asterisk_ami")


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
#: told "block" when a put starts waiting, "wait" at each wake, "end" when it is done; returns how long
#: the next wait may be at most (None: until there is room)
Watch: TypeAlias = Callable[[str], float | None]


class DispatchQueue:
    def __init__(self, max_frames: int) -> None:
        self.max_frames = max_frames
        self._items: deque[Item] = deque()
        self._frames = 0
        self._cond = threading.Condition()
        self._unbounded = 0
        self.high_water = 0  # most frames ever waiting (``stats['queue_high_water']``)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def frames(self) -> int:
        """Frames waiting for the dispatch thread now."""
        return self._frames

    def put(self, item: Item, abort: threading.Event | None = None, watch: Watch | None = None) -> None:
        """Queue ``item``; a Deliver waits while the bound is reached (until ``abort`` is set and wake()
        is called, or the dispatch thread makes room), telling ``watch`` how the wait goes."""
        frames = item.size if isinstance(item, Deliver) else 0
        with self._cond:
            waited = False
            while (
                frames
                and self._frames + frames > self.max_frames
                and self._frames  # an empty queue takes any batch (the client slices them to fit)
                and not self._unbounded
                and not (abort is not None and abort.is_set())
            ):
                timeout = None if watch is None else watch("wait" if waited else "block")
                waited = True
                self._cond.wait(timeout)
            if waited and watch is not None:
                watch("end")
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

    def wake(self) -> None:
        """Wake a blocked ``put`` so it sees its ``abort`` event."""
        with self._cond:
            self._cond.notify_all()

    def lift_bound(self) -> None:
        with self._cond:
            self._unbounded += 1
            self._cond.notify_all()

    def restore_bound(self) -> None:
        with self._cond:
            self._unbounded -= 1


class ReaderWatch:
    """The reader waits for room in the queue (a :data:`Watch`): the episode goes to the sans-IO
    :class:`~asterisk_ami.blocking.BlockWatch`, with the handler running on the dispatch thread at each
    look and how long that call has run. Looks a few times before the warning is due, to see which
    handler holds the queue."""

    def __init__(self, watch: BlockWatch, running: Callable[[], tuple[Handler | None, float]]) -> None:
        self.watch = watch
        self.running = running

    def __call__(self, phase: str) -> float | None:
        now = time.monotonic()
        watch = self.watch
        if phase == "end":
            watch.unblock(now)
            return None
        if phase == "block":
            watch.block(now)
        f, busy = self.running()
        message = watch.check(now, None if f is None else handler_name(f), busy)
        if message:
            logger.warning(message)  # under the queue's lock: the dispatch thread is stuck anyway
        due = watch.next_check(now)
        if due is None:
            return None
        return max(0.001, min(due - now, (watch.threshold or 0.05) / 4))


class DispatchThread(HandlerRegistry):
    """The dispatch thread of the threaded client (mixed into ``AsteriskAmi``): it runs every handler
    and callback in queue order, and reports handlers it cannot run."""

    _queue: DispatchQueue
    _state_lock: threading.Lock
    _dispatcher: threading.Thread | None
    _active_runs: int
    _coroutine_warned: bool
    options: Any

    def _emit_soon(self, event: str, *args: Any) -> None:
        """Emit on the dispatch thread when it runs, else here and now."""
        with self._state_lock:
            running = self._dispatcher is not None
            if running:  # under the lock, so the dispatch thread cannot exit in between
                self._queue.put(Emit(event, args))
        if not running:
            self.emit_event(event, *args)

    def _dispatch_loop(self) -> None:
        queue = self._queue
        while True:
            for item in queue.get_all():
                try:
                    self._dispatch(item)
                except Exception:
                    logger.exception("dispatch failed")
            with self._state_lock:
                if self._active_runs == 0 and not len(queue):
                    self._dispatcher = None
                    return

    def _dispatch(self, item: Item) -> None:
        cls = item.__class__
        if cls is Deliver:
            try:
                self.deliver(item.items, self.options.identifier)  # type: ignore[union-attr]
            finally:  # or the reader would wait for room forever
                self._queue.release(item.size)  # type: ignore[union-attr]
        elif cls is Emit:
            self.emit_event(item.event, *item.args)  # type: ignore[union-attr]
        elif cls is Call:
            self.call_handler(item.fn, item.args)  # type: ignore[union-attr]

    def handler_returned(self, f: Callable[..., Any], result: Any) -> None:
        # an ``async def`` handler returns a coroutine nobody here can run
        if inspect.iscoroutine(result):
            result.close()
        if not self._coroutine_warned and (inspect.iscoroutinefunction(f) or inspect.iscoroutine(result)):
            self._coroutine_warned = True
            logger.error(
                "handler %s is a coroutine function: the threaded client never awaits it;"
                " use asterisk_ami.asyncio.AsteriskAmi",
                handler_name(f),
            )
