"""Both shells behind one test surface: the asyncio ``AsteriskAmi`` driven from a test's own thread.

``AsyncioClient`` runs the asyncio client on an event loop in a thread of its own and offers the threaded
client's calls (``connect()`` returns at once, ``action()`` gives a ``concurrent.futures.Future``,
``request()`` and ``disconnect()`` block), so a test written once runs on both shells. Handlers run on the
loop's thread, as the threaded client's run on its dispatch thread; ``Recorder`` works for both.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from asterisk_ami import ActionResult, AsteriskAmi
from asterisk_ami import asyncio as ami_asyncio
from asterisk_ami.testing import FakeAsterisk

from .helpers import client_threads, wait_until

SHELLS = ["threaded", "asyncio"]
T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread until ``stop()``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-asyncio-loop", daemon=True)
        self.thread.start()

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn()`` on the loop and return what it returns (or raise what it raises)."""
        if threading.current_thread() is self.thread:
            return fn()
        done: Future[T] = Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return done.result(timeout)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class AsyncioClient:
    """``asterisk_ami.asyncio.AsteriskAmi`` with the threaded client's blocking surface."""

    def __init__(self, loop: LoopThread, **options: Any) -> None:
        self.loop = loop
        self.ami = ami_asyncio.AsteriskAmi(**options)
        self._connects: list[asyncio.Task[None]] = []

    def __getattr__(self, name: str) -> Any:  # state, connected, banner, stats, options, on, once, ...
        return getattr(self.ami, name)

    def connect(self) -> None:
        """Start connecting and return at once (errors arrive as events, as on the threaded client)."""

        async def start() -> None:
            task = asyncio.get_running_loop().create_task(self.ami.connect())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no warning
            self._connects.append(task)
            await asyncio.sleep(0)  # connect() has made its session: actions from here on wait for the login

        self.loop.run(start())

    def send(self, message: dict[str, Any], callback: Callable[[Any], object] | None = None) -> str:
        return self.loop.call(lambda: self.ami.send(message, callback))

    def action(self, message: dict[str, Any], timeout: float | None = None) -> Future[ActionResult]:
        result: Future[ActionResult] = Future()

        def start() -> None:
            inner = self.ami.action(message, timeout)

            def copy(f: asyncio.Future[ActionResult]) -> None:
                if f.cancelled():
                    result.cancel()
                elif f.exception() is not None:
                    result.set_exception(f.exception())  # type: ignore[arg-type]
                else:
                    result.set_result(f.result())

            inner.add_done_callback(copy)

        self.loop.call(start)
        return result

    def request(self, message: dict[str, Any], timeout: float | None = 10) -> ActionResult:
        return self.loop.run(self.ami.request(message, timeout), None if timeout is None else timeout + 5)

    def originate(self, channel: str, **options: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(self.ami.originate(channel, **options), self.loop.loop)

    def disconnect(self, timeout: float | None = 5.0) -> None:
        if threading.current_thread() is self.loop.thread:  # from a handler: start it, as the threaded one
            self.loop.loop.create_task(self.ami.disconnect(timeout))
            return
        self.loop.run(self.ami.disconnect(timeout))

    def destroy(self, timeout: float | None = 5.0) -> None:
        self.loop.call(self.ami.destroy)
        if threading.current_thread() is not self.loop.thread:
            self.loop.run(self.ami.wait_closed(), timeout or 5.0)


def client_factory(shell: str, fake: FakeAsterisk, secret: str) -> Iterator[Callable[..., Any]]:
    """make(**options) -> a client of ``shell`` for ``fake``; after the test every client is destroyed and
    checked: no thread or task of it left, state disconnected, no action pending."""
    before = client_threads()
    loop = LoopThread() if shell == "asyncio" else None
    clients: list[Any] = []

    def make(**options: Any) -> Any:
        options = {"host": fake.host, "port": fake.port, "username": "admin", "password": secret, **options}
        ami = AsteriskAmi(**options) if loop is None else AsyncioClient(loop, **options)
        clients.append(ami)
        return ami

    try:
        yield make
        for ami in clients:
            ami.destroy()
        wait_until(lambda: not (client_threads() - before), 5, "client threads to end after destroy()")
        for ami in clients:
            assert ami.state == "disconnected"
            assert ami.stats["pending_actions"] == 0
    finally:
        if loop is not None:
            loop.stop()
