"""``asterisk_ami.asyncio.AsteriskAmi``: the asyncio shell around the sans-IO client lifecycle (``lifecycle.py``).

One event loop, no thread of its own: a thousand connections share one loop. An ``asyncio.Protocol``
moves bytes between the transport and the lifecycle, one timer runs at its next deadline, a task opens
each connection it asks for. Handlers run on the loop in frame order, right where the frames are
parsed; a coroutine handler is scheduled as a task (``complete``, ``wait_for_complete()`` and
``cancel()`` tell about those tasks). Every decision about the protocol and the client's life is the
lifecycle's; this file moves bytes, settles futures and runs handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import deque
from collections.abc import Mapping
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from pyee.asyncio import AsyncIOEventEmitter

from ..actions import ActionDone, ActionResult, ResponseCallback
from ..errors import NotConnectedError
from ..lifecycle import DISCONNECT_GRACE
from ..options import check_timeout
from ..originate import EVENT as ORIGINATE_EVENT
from ..originate import OriginateResult, originate_message, result_timeout
from ..session_events import (
    Closed,
    ConnectResult,
    Event,
    FramesReceived,
    LoginActionsWanted,
    OpenTransport,
    ServerClosed,
    Stopped,
    library_events,
)
from ..shell import ShellBase, settle
from .delivery import Delivery
from .stream import EventStream

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..options import AmiOptionsDict

__all__ = ["AsteriskAmi", "EventStream"]


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: hands what happens on the transport to the client."""

    def __init__(self, ami: AsteriskAmi, session: object) -> None:
        self.ami = ami
        self.session = session  # the lifecycle's session it was opened for
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ami._made(self)  # now: bytes may come before create_connection() returns to its caller

    def data_received(self, data: bytes) -> None:
        self.ami._received(self, data)

    def eof_received(self) -> bool:
        self.ami._eof(self)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.ami._lost(self, exc)

    def pause_writing(self) -> None:
        self.ami._writing_blocked(self, True)

    def resume_writing(self) -> None:
        self.ami._writing_blocked(self, False)


class _Deferred:
    """An ``action()`` past the write high-water mark: sent, in order, once there is room."""

    __slots__ = ("deadline", "future", "message", "until_event")

    def __init__(
        self,
        message: Mapping[str, object],
        future: asyncio.Future[ActionResult],
        deadline: float | None,
        until_event: str | None,
    ) -> None:
        self.message = message
        self.future = future
        self.deadline = deadline
        self.until_event = until_event


class AsteriskAmi(Delivery, ShellBase, AsyncIOEventEmitter):  # type: ignore[misc]  # typed on()/once() (typed_handlers.py)
    """AMI client for asyncio. Same options, events, frames, results and errors as the threaded
    ``asterisk_ami.AsteriskAmi``; ``connect()``, ``request()``, ``originate()``, ``drain()`` and
    ``disconnect()`` are awaited.

    ``async with AsteriskAmi(...) as ami`` connects (returns once logged in) and disconnects on exit.
    Use it from one event loop: it is not thread-safe.
    """

    def __init__(self, options: Mapping[str, Any] | None = None, /, **kwargs: Unpack[AmiOptionsDict]) -> None:
        super().__init__()
        self._init_shell(options, kwargs)
        self._handlers.on_returned = self._handler_returned
        self._handlers.on_stalled = self._handler_stalled
        self._handlers.stall_threshold = self.options.slow_handler_warning  # a plain handler holding the loop
        self._handlers.on_changed = self._touch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: _Connection | None = None
        self._opening: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._watch_timer: asyncio.TimerHandle | None = None  # checks a reading paused by a full stream
        self._processing = False
        self._release_soon = False
        self._paused = False  # reading paused: a stream is full, or too much is held
        self._streams: list[EventStream] = []
        self._stream_high_water = 0
        self._tasks: set[asyncio.Future[Any]] = set()  # coroutine handlers still running
        self._connect_waiters: list[asyncio.Future[None]] = []
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._deferred: deque[_Deferred] = deque()
        self._stopped: asyncio.Future[None] | None = None  # done once the client is down for good

    async def __aenter__(self) -> AsteriskAmi:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.disconnect()

    # -- state -----------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """The same counters as the threaded client's ``stats``; the queue is the ``events()`` streams'."""
        stats: dict[str, Any] = self._base_stats(dict(self._core.stats()), time.monotonic())
        stats["queued_frames"] = sum(len(s) for s in self._streams)
        stats["queue_high_water"] = max(self._stream_high_water, stats["queued_frames"])
        return stats

    @property
    def complete(self) -> bool:
        """True when no coroutine handler of this client is still running."""
        inherited = getattr(super(), "complete", True)  # pyee 13+: futures of its own emit()
        return not self._tasks and bool(inherited)

    async def wait_for_complete(self) -> None:
        """Wait until every coroutine handler running now (and those they lead to) is done."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))
        inherited = getattr(super(), "wait_for_complete", None)
        if inherited is not None:
            await inherited()

    def cancel(self) -> None:
        """Cancel every coroutine handler still running."""
        for task in list(self._tasks):
            task.cancel()
        inherited = getattr(super(), "cancel", None)
        if inherited is not None:
            inherited()

    # -- connecting ------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect and log in; returns once logged in.

        A refused login raises ``AuthenticationError``. Without ``reconnect``, a failed attempt raises its
        error (``ConnectTimeoutError``, or the ``OSError``); with it, attempts go on by the policy until one
        logs in: bound the wait with ``asyncio.wait_for()`` or ``asyncio.timeout()`` (a cancelled
        connect() stops the client). Frames that came after the login answer are delivered once your code
        uses the client (``events()``, ``on()``, ``send()``, ...; after its current step) or 0.25 s after
        this returned, so a subscription made right after ``await connect()`` misses none of them, also
        under ``wait_for``, ``asyncio.timeout``, ``TaskGroup`` and ``gather``.
        """
        loop = self._bind()
        waiter: asyncio.Future[None] = loop.create_future()
        self._connect_waiters.append(waiter)
        core = self._core
        core.wait_for_login(True)
        try:
            if core.state == "disconnected":
                self._stopped = loop.create_future()
                core.start(loop.time())
            elif core.state == "connected":
                waiter.set_result(None)
            self._process()
            try:
                await asyncio.shield(waiter)
            except asyncio.CancelledError:
                if not waiter.done():
                    self.destroy()
                raise
        finally:
            core.wait_for_login(False)
            core.connect_returned(loop.time())
            self._release_after_caller(inspect.currentframe())
            self._process()

    def _release_after_caller(self, frame: FrameType | None) -> None:
        """What followed the login answer goes once the code that awaited connect() has taken its step:
        right after this step, or, when connect() is a task's own coroutine (``create_task``, ``gather``,
        ``TaskGroup``, ``wait_for`` before 3.12), right after the step that task's end wakes up (its
        awaiters' callbacks were added before this one). ``HOLD_SECONDS`` is the backstop."""
        assert self._loop is not None
        loop = self._loop
        task = asyncio.current_task()
        if task is not None and frame is not None and getattr(task.get_coro(), "cr_frame", None) is frame:
            task.add_done_callback(lambda _: loop.call_soon(self._release))
        else:
            self._touch()

    async def _open(self) -> None:
        """Open the connection the lifecycle asked for; report it, or why it could not be opened."""
        loop = asyncio.get_running_loop()
        o, core = self.options, self._core
        session = core.session
        deadline = session.next_deadline() if session is not None else None
        conn = _Connection(self, session)
        ctx = self._ssl_context
        self._log.debug("connecting")
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: conn, *o.address, ssl=ctx, server_hostname=o.host if ctx is not None else None
                ),
                max(0.0, (deadline or loop.time() + o.connect_timeout) - loop.time()),
            )
        except (OSError, asyncio.TimeoutError) as exc:
            error = exc if isinstance(exc, OSError) else TimeoutError(f"no connection within {o.connect_timeout} s")
            if core.session is session:
                core.connection_lost(error, loop.time())
            self._process()
            return
        except asyncio.CancelledError:  # destroy() while connecting
            if core.session is session:
                core.connection_lost(None, loop.time())
            self._process()
            return
        finally:
            if self._opening is asyncio.current_task():
                self._opening = None
        if conn is not self._conn and conn.transport is not None:
            conn.transport.abort()  # destroyed meanwhile

    def _made(self, conn: _Connection) -> None:
        if self._core.session is conn.session and not self._core.close_expected:
            self._conn = conn
            self._process()  # the Login goes out

    # -- the connection's callbacks --------------------------------------------------------------------

    def _received(self, conn: _Connection, data: bytes) -> None:
        if conn is self._conn:
            self._core.receive_data(data, self._now())
            self._process()

    def _eof(self, conn: _Connection) -> None:
        if conn is self._conn:
            self._core.receive_eof(self._now())
            self._process()

    def _lost(self, conn: _Connection, exc: BaseException | None) -> None:
        if conn is self._conn:
            self._conn = None
            core = self._core
            core.connection_lost(None if core.close_expected else exc, self._now())
            self._process()

    def _writing_blocked(self, conn: _Connection, blocked: bool) -> None:
        if conn is not self._conn:
            return
        self._core.set_writing_blocked(blocked, self._now())
        if not blocked:
            # node's 'drain': a write had to wait for a full socket buffer and has now gone out
            self._handlers.emit("ami_socket_drain")
        self._process()

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self._core.handle_timeout(self._now())
        self._process()

    # -- acting on the lifecycle ----------------------------------------------------------------------

    def _process(self) -> None:
        """Act on what the lifecycle reports, write what it has, keep the timer at its next deadline.
        Re-entered from a handler, it returns: the outer call goes on until nothing is left."""
        if self._processing:
            return
        self._processing = True
        try:
            core = self._core
            while True:
                events = core.events_received()
                if events:
                    for event in events:
                        self._act(event)
                    continue
                self._flush()  # which may send deferred actions: then once more
                if not core.has_events and not (self._conn is not None and core.has_data_to_send):
                    break
        finally:
            self._processing = False
        self._update_reading()
        self._arm_timer()

    def _act(self, event: Event) -> None:
        if isinstance(event, FramesReceived):
            self._deliver(event.frames)
            return
        if isinstance(event, ActionDone):
            call = settle(event)
            if call is not None:
                self._handlers.call(call.fn, call.args)
            return
        if isinstance(event, OpenTransport):
            assert self._loop is not None
            self._opening = self._loop.create_task(self._open())
        elif isinstance(event, LoginActionsWanted):
            self._core.login_actions(self._run_login_providers(), self._now())
        elif isinstance(event, ConnectResult):
            self._settle_connect(event.error)
        elif isinstance(event, ServerClosed):
            self._server_closed(time.monotonic())
        elif isinstance(event, Closed):
            if self._watch.blocked:  # no connection, so nothing is kept from reading any more
                self._streams_unblocked()
        elif isinstance(event, Stopped):
            self._client_stopped()
        for name, args in library_events(event):
            self._handlers.emit(name, *args)

    def _flush(self) -> None:
        """Write what the lifecycle has; close the transport when the connection is over."""
        conn, core = self._conn, self._core
        transport = None if conn is None else conn.transport
        if transport is None:
            return
        data = core.data_to_send()
        if data:
            transport.write(data)
        if core.close_expected:
            transport.abort()  # nothing left worth writing; close() could wait on a server that reads nothing
            return
        if self._deferred or self._drain_waiters:
            self._room_made()

    def _arm_timer(self) -> None:
        deadline = self._core.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, deadline
        if deadline is not None and self._loop is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        other = self._loop is not None and self._loop is not loop and not self._loop.is_closed()
        if other and self._core.state != "disconnected":
            raise RuntimeError("this client runs on another event loop")
        self._loop = loop
        return loop

    def _settle_connect(self, error: BaseException | None) -> None:
        waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)
                    waiter.exception()  # connect() raises it; nobody waiting is no "never retrieved" warning

    def _client_stopped(self) -> None:
        for stream in list(self._streams):
            stream.close()
        error = NotConnectedError("the client stopped before there was room to write")
        while self._deferred:
            deferred = self._deferred.popleft()
            if not deferred.future.done():
                deferred.future.set_exception(error)
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)  # drain() returns: send() then says why it cannot
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    # -- actions ---------------------------------------------------------------------------------

    def send(self, message: Mapping[str, object], callback: ResponseCallback | None = None) -> str:
        """Write one action; returns its ActionID, as the threaded client's ``send()``. Past the write
        high-water mark (``max_write_bytes`` waiting: Asterisk is not reading) it raises
        ``WriteBufferFullError`` and queues nothing: ``await ami.drain()`` first, or use ``action()``."""
        return self._submit(message, callback, None, None, None)

    def action(
        self, message: Mapping[str, object], timeout: float | None = None, *, until_event: str | None = None
    ) -> asyncio.Future[ActionResult]:
        """Send an action; an ``asyncio.Future`` of its ``ActionResult`` (fails as the threaded one's does).
        Past the write high-water mark the action waits for room (in order; its timeout runs meanwhile).
        Cancelling the future stops waiting for the action: a late answer is dropped."""
        loop = self._bind()
        future: asyncio.Future[ActionResult] = loop.create_future()
        seconds = check_timeout(timeout)
        if self._deferred or (self._core.session is not None and not self._core.has_room(self._backlog())):
            self._touch()
            if seconds is None:
                seconds = self.options.action_timeout
            deadline = None if seconds is None else loop.time() + seconds
            self._deferred.append(_Deferred(message, future, deadline, until_event))
            return future
        return self._tracked(future, message, seconds, until_event)

    async def originate(self, channel: str, **options: Any) -> OriginateResult:
        """Originate a call with ``Async: true`` and return its :class:`OriginateResult` (the threaded
        ``originate()`` has the options)."""
        message = originate_message(channel, **options)
        result = await self.action(message, result_timeout(options.get("timeout")), until_event=ORIGINATE_EVENT)
        return OriginateResult.from_result(result)

    async def request(self, message: Mapping[str, object], timeout: float | None = 10) -> ActionResult:
        """Send an action and wait for its ``ActionResult``; raises as ``action()``'s future does.
        Cancelling the waiting task removes the action's entry."""
        return await self.action(message, timeout)

    async def drain(self) -> None:
        """Wait until fewer than ``max_write_bytes`` wait to be written (at once when that is so already),
        or the client has stopped: then ``send()`` accepts an action again, or says why it cannot."""
        loop = self._bind()
        if (not self._deferred and self._core.has_room(self._backlog())) or self._core.state == "disconnected":
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def _backlog(self) -> int:
        conn = self._conn
        transport = None if conn is None else conn.transport
        return 0 if transport is None else transport.get_write_buffer_size()

    def _room_made(self) -> None:
        """After a write: send deferred actions while there is room, then let drain() return."""
        core = self._core
        while self._deferred and core.has_room(self._backlog()):
            deferred = self._deferred.popleft()
            if deferred.future.done():
                continue
            left = None if deferred.deadline is None else max(0.0, deferred.deadline - self._now())
            try:
                action_id = self._submit(deferred.message, None, deferred.future, left, deferred.until_event)
            except Exception as exc:  # NotConnectedError, a bad message: the future says so
                deferred.future.set_exception(exc)
                continue
            deferred.future.add_done_callback(lambda f, a=action_id: self._cancelled(f, a))  # type: ignore[misc]
        if not self._deferred and core.has_room(self._backlog()):
            waiters, self._drain_waiters = self._drain_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _cancelled(self, future: asyncio.Future[ActionResult], action_id: str) -> None:
        if future.cancelled():
            self._core.cancel(action_id)
            self._arm_timer()

    def _submit(
        self,
        message: Mapping[str, object],
        callback: ResponseCallback | None,
        future: asyncio.Future[ActionResult] | None,
        timeout: float | None,
        until_event: str | None,
    ) -> str:
        core = self._core
        self._touch()
        try:
            action_id = core.send(
                message,
                self._now(),
                callback=callback,
                waiter=future,
                timeout=timeout,
                until_event=until_event,
                backlog=self._backlog(),
            )
        except NotConnectedError:
            self._handlers.emit("ami_socket_unwritable")
            raise
        self._process()
        return action_id

    # -- ending ----------------------------------------------------------------------------------

    async def disconnect(self, timeout: float | None = 5.0) -> None:
        """Log off (Asterisk answers Goodbye), wait for the close (up to ``timeout``), and do not reconnect.
        What was sent while logging in is written first (the login is waited for, within ``timeout``);
        what could not be written fails with the reason."""
        seconds = check_timeout(timeout)
        self._core.disconnect(self._now(), seconds)
        self._process()
        stopped = self._stopped
        if stopped is not None and not stopped.done():
            try:
                wait = None if seconds is None else seconds + DISCONNECT_GRACE  # the lifecycle gives up at seconds
                await asyncio.wait_for(asyncio.shield(stopped), wait)
            except asyncio.TimeoutError:
                self.destroy()
                await self.wait_closed()

    async def wait_closed(self) -> None:
        """Return once the client has stopped for good (after ``disconnect()``, ``destroy()``, a refused
        login or a close without reconnect): the connection and the reconnect wait are over. At once
        when it never ran."""
        stopped = self._stopped
        if stopped is not None and not stopped.done():
            await asyncio.shield(stopped)

    def destroy(self) -> None:
        """Close the connection at once, without Logoff, and do not reconnect. Safe at any time."""
        self._core.destroy(self._now())
        opening = self._opening
        if opening is not None and not opening.done() and opening is not asyncio.current_task():
            opening.cancel()
        self._process()
        conn = self._conn
        if conn is not None and conn.transport is not None:
            with contextlib.suppress(Exception):
                conn.transport.abort()
