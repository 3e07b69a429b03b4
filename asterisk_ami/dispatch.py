"""The bounded hand-off between the reader thread and the dispatch thread that runs user code.

Back-pressure rule: when ``max_frames`` frames are waiting, the reader blocks in ``put`` and stops
reading the socket, so TCP pushes back on Asterisk; nothing already read is dropped. The bound is
lifted while the dispatch thread itself waits for an action result, or that wait could never end.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class DispatchQueue:
    def __init__(self, max_frames: int) -> None:
        self.max_frames = max_frames
        self._items: deque[tuple[Any, ...]] = deque()
        self._frames = 0
        self._cond = threading.Condition()
        self._unbounded = 0
        self.high_water = 0  # most frames ever waiting: tests and benchmarks read it

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: tuple[Any, ...], frames: int = 0, abort: threading.Event | None = None) -> None:
        with self._cond:
            while (
                frames
                and self._frames + frames > self.max_frames
                and self._frames  # an empty queue takes any batch (the client slices them to fit)
                and not self._unbounded
                and not (abort is not None and abort.is_set())
            ):
                self._cond.wait(0.25)
            self._items.append(item)
            self._frames += frames
            if self._frames > self.high_water:
                self.high_water = self._frames
            self._cond.notify_all()

    def get_all(self, timeout: float | None = None) -> deque[tuple[Any, ...]]:
        """Every waiting item (blocks until there is one, or ``timeout``)."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
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
        with self._cond:
            self._cond.notify_all()

    def lift_bound(self) -> None:
        with self._cond:
            self._unbounded += 1
            self._cond.notify_all()

    def restore_bound(self) -> None:
        with self._cond:
            self._unbounded -= 1
