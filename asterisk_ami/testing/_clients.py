"""Clients for tests against :class:`~asterisk_ami.testing.FakeAsterisk`, made so that the natural test
(log in, ``fake.push_event(...)``, wait, assert) is right every time.

Why the obvious test fails: ``push_event()`` writes to the socket and returns; the client reads, parses
and runs its handlers later, on its own threads (or when its event loop runs). An assert right after the
push runs before any of it. Waiting for the event is not enough either unless the wait can see events that
came *before* it was called, and the handlers of that event have returned. ``EventRecorder`` records every
event from the moment the client is made, and its ``wait_for_event()`` returns once the event is in and
every handler of it has run; ``AsyncAmiRunner`` does the same for the asyncio client in a plain (not
``async def``) test.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from ..protocol import Frame
from ..sync import AsteriskAmi

T = TypeVar("T")
LOGIN_TIMEOUT = 10.0


def _matches(frame: Frame, name: str, headers: Mapping[str, object]) -> bool:
    if frame.get("event") != name:
        return False
    return all(frame.get(key.lower().replace("-", "")) == str(value) for key, value in headers.items())


class _Events:
    """The events a client received, in order, each handed out once by the waits."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self._taken: set[int] = set()

    def _find(self, name: str, headers: Mapping[str, object]) -> Frame | None:
        for n, frame in enumerate(self.frames):
            if n not in self._taken and _matches(frame, name, headers):
                self._taken.add(n)
                return frame
        return None

    @staticmethod
    def _timeout(name: str, headers: Mapping[str, object], timeout: float, frames: list[Frame]) -> TimeoutError:
        seen = ", ".join(str(f.get("event")) for f in frames[-10:]) or "none"
        wanted = name + "".join(f" {k}={v!r}" for k, v in headers.items())
        return TimeoutError(f"no {wanted} event within {timeout} s (the last events: {seen})")


class EventRecorder(_Events):
    """Every event the threaded client ``ami`` receives from now on (make it before ``connect()``).

    ``wait_for_event(name, timeout, **headers)`` returns the first such event not returned before, whether
    it came before the call or comes within ``timeout`` seconds (``headers`` narrow it: ``Channel="..."``,
    compared with the frame's lower-case keys). When it returns, every handler of that event (and of every
    frame before it) has returned: it waits for a ``Ping`` answer's callback, which the dispatch thread runs
    after them. Raises ``TimeoutError`` naming the last events seen. Call it from the test's thread, not
    from a handler.
    """

    def __init__(self, ami: AsteriskAmi) -> None:
        super().__init__()
        self.ami = ami
        self._cond = threading.Condition()
        ami.on("ami_data", self._on_frame)

    def _on_frame(self, frame: Frame) -> None:
        if "event" in frame:
            with self._cond:
                self.frames.append(frame)
                self._cond.notify_all()

    def wait_for_event(self, name: str, timeout: float = 5.0, **headers: object) -> Frame:
        end = time.monotonic() + timeout
        with self._cond:
            while (frame := self._find(name, headers)) is None:
                left = end - time.monotonic()
                if left <= 0:
                    raise self._timeout(name, headers, timeout, self.frames)
                self._cond.wait(left)
        self.wait_for_handlers(max(0.0, end - time.monotonic()) + 1.0)
        return frame

    def wait_for_handlers(self, timeout: float = 5.0) -> None:
        """Return once every handler of every frame received so far has returned (a ``Ping`` whose answer's
        callback runs on the dispatch thread after them)."""
        done = threading.Event()
        self.ami.send({"Action": "Ping"}, callback=lambda frame: done.set())
        if not done.wait(timeout):
            raise TimeoutError(f"the handlers did not finish within {timeout} s (or Ping went unanswered)")


def logged_in_client(options: Mapping[str, Any], timeout: float = LOGIN_TIMEOUT) -> tuple[AsteriskAmi, EventRecorder]:
    """A threaded client made with ``options``, its ``EventRecorder``, connected and logged in
    (``connect_and_wait()``). Raises ``AssertionError`` with the reason when the login fails."""
    ami = AsteriskAmi(**options)
    recorder = EventRecorder(ami)
    try:
        ami.connect_and_wait(timeout)
    except Exception as exc:  # AuthenticationError, ConnectTimeoutError, OSError
        ami.destroy()
        where = f"{options.get('host')}:{options.get('port')} as {options.get('username')!r}"
        raise AssertionError(f"no login at {where}: {exc}") from exc
    return ami, recorder


class AsyncAmiRunner(_Events):
    """An ``asterisk_ami.asyncio.AsteriskAmi`` for a plain (not ``async def``) test: it lives on this
    runner's own event loop, which runs while the test calls :meth:`run` or :meth:`wait_for_event`.

    * ``ami``: the client, logged in by :meth:`start`;
    * ``run(awaitable_or_function, timeout=10)``: runs a coroutine (or ``fn(ami)`` returning one) on the
      loop and returns its result: ``runner.run(runner.ami.request({"Action": "Ping"}))``;
    * ``wait_for_event(name, timeout, **headers)``: as :meth:`EventRecorder.wait_for_event`; plain
      handlers have run when it returns, ``async def`` handlers have been started;
    * ``event(name, timeout, **headers)``: the same, awaited inside a coroutine given to :meth:`run`.
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__()
        self.options = dict(options)
        self.loop = asyncio.new_event_loop()
        self.ami: Any = None
        self._wake: list[asyncio.Future[None]] = []

    def _on_frame(self, frame: Frame) -> None:
        if "event" in frame:
            self.frames.append(frame)
            wake, self._wake = self._wake, []
            for future in wake:
                if not future.done():
                    future.set_result(None)

    def start(self, timeout: float = LOGIN_TIMEOUT) -> AsyncAmiRunner:
        async def connect() -> Any:
            from ..asyncio import AsteriskAmi as AsyncioAmi

            ami = AsyncioAmi(**self.options)  # made on the loop: its futures and streams belong to it
            ami.on("ami_data", self._on_frame)
            await ami.connect()
            return ami

        self.ami = self.run(connect(), timeout)
        return self

    def run(self, work: Awaitable[T] | Callable[[Any], Awaitable[T]], timeout: float | None = 10.0) -> T:
        awaitable = work(self.ami) if callable(work) else work
        return self.loop.run_until_complete(asyncio.wait_for(awaitable, timeout))

    async def event(self, name: str, timeout: float = 5.0, **headers: object) -> Frame:
        end = time.monotonic() + timeout
        while (frame := self._find(name, headers)) is None:
            left = end - time.monotonic()
            if left <= 0:
                raise self._timeout(name, headers, timeout, self.frames)
            wake: asyncio.Future[None] = self.loop.create_future()
            self._wake.append(wake)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake, left)
        await asyncio.sleep(0)  # coroutine handlers of it are scheduled as tasks: let them start
        return frame

    def wait_for_event(self, name: str, timeout: float = 5.0, **headers: object) -> Frame:
        return self.run(self.event(name, timeout, **headers), None)

    def close(self) -> None:
        """Disconnect (Logoff) and close the loop; safe to call twice."""
        if self.loop.is_closed():
            return
        try:
            if self.ami is not None:
                self.run(self.ami.disconnect(), 10.0)
        finally:
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()
