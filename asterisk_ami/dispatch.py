"""The bounded hand-off between the threaded client's reader thread and its dispatch thread.

Back-pressure rule: when ``max_frames`` frames are waiting, the reader blocks in ``put`` and stops
reading the socket, so TCP pushes back on Asterisk; nothing already read is dropped. The bound is
lifted while the dispatch thread itself waits for an action result, or that wait could never end.

The queue carries typed items: :class:`Deliver` (frames, with the action callbacks due after them),
:class:`Emit` (one of the library's events), :class:`Call` (a user callback) and :class:`Stop`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeAlias

from .handlers import Call
from .protocol import Frame


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
