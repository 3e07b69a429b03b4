"""``asterisk_ami.asyncio.AsteriskAmi``: the asyncio shell around the sans-IO session (``session.py``).

One event loop, no thread of its own: a thousand connections share one loop. An ``asyncio.Protocol``
moves bytes between the transport and the session, one timer runs at the session's next deadline, and a
task connects and reconnects by the ``ReconnectPolicy``. Handlers run on the loop in frame order, right
where the frames are parsed; a coroutine handler is scheduled as a task, as pyee schedules them. Every
protocol decision is the session's; this file only moves bytes and events, like ``client.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from pyee.asyncio import AsyncIOEventEmitter

from ..actions import ActionDone, ActionResult, ResponseCallback
from ..errors import NotConnectedError
from ..handlers import handler_name
from ..originate import EVENT as ORIGINATE_EVENT
from ..originate import OriginateResult, originate_message, result_timeout
from ..protocol import Frame, frame_kind
from ..session import (
    AmiSession,
    ClientState,
    Closed,
    Event,
    Failed,
    FramesReceived,
    LoggedIn,
    LoginRefused,
    ServerClosed,
    TimedOut,
)
from ..shell import ShellBase, library_events, settle
from .stream import EventStream

logger = logging.getLogger("asterisk_ami")
_LOGIN_SLICE = 4096  # while connect() waits, reads are fed to the session this much at a time

__all__ = ["AsteriskAmi"]


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: hands what happens on the transport to the client."""

    def __init__(self, ami: AsteriskAmi, session: AmiSession) -> None:
        self.ami = ami
        self.session = session
        self.transport: asyncio.Transport | None = None
        self.write_paused = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.ami._received(self, data)

    def eof_received(self) -> bool:
        self.ami._eof(self)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.ami._lost(self, exc)
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        # node's 'drain': a write had to wait for a full socket buffer and has now gone out
        self.write_paused = False
        self.ami._emit_soon("ami_socket_drain")


class AsteriskAmi(ShellBase, AsyncIOEventEmitter):
    """AMI client for asyncio. Same options, events, frames, results and errors as the threaded
    ``asterisk_ami.AsteriskAmi``; ``connect()``, ``request()`` and ``disconnect()`` are awaited.

    ``async with AsteriskAmi(...) as ami`` connects (returns once logged in) and disconnects on exit.
    Use it from one event loop: it is not thread-safe.
    """

    def __init__(self, options: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        super().__init__()
        self._init_shell(options, kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: asyncio.Task[None] | None = None
        self._conn: _Connection | None = None
        self._session: AmiSession | None = None
        self._first_login: asyncio.Future[None] | None = None  # what connect() waits for
        self._held: list[Event] | None = None  # events after the login answer, until connect() returns
        self._held_bytes = b""  # and the rest of that read, not parsed yet
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._watch_timer: asyncio.TimerHandle | None = None  # checks a reading paused by a full stream
        self._stall_threshold = self.options.slow_handler_warning  # a plain handler holding the loop
        self._stopping = False
        self._destroying = False
        self._wake: asyncio.Event | None = None  # ends a reconnect wait early
        self._streams: list[EventStream] = []
        self._stream_high_water = 0
        self._tasks: set[asyncio.Task[Any]] = set()  # coroutine handlers still running
        self._error: BaseException | None = None  # what ended the current connection (connect() raises it)
        self._fatal = False

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
        stats = self._session_stats(self._session, time.monotonic())
        stats["queued_frames"] = sum(len(s) for s in self._streams)
        stats["queue_high_water"] = max(self._stream_high_water, stats["queued_frames"])
        return stats

    # -- connecting ------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect and log in; returns once logged in.

        A refused login raises ``AuthenticationError``. Without ``reconnect``, a failed attempt raises its
        error (``ConnectTimeoutError``, or the ``OSError``); with it, attempts go on by the policy until one
        logs in: bound the wait with ``asyncio.wait_for()`` or ``asyncio.timeout()`` (a cancelled
        connect() stops the client).
        Frames that came with the login answer are delivered only after this returns, so a subscription
        made right after ``await connect()`` misses none of them.
        """
        loop = asyncio.get_running_loop()
        if self._runner is not None and not self._runner.done():
            if self._first_login is None or self._first_login.done():
                logger.warning("connect() ignored: this client is already connecting or connected")
                return
        else:
            self._loop = loop
            self._stopping = self._destroying = False
            self._policy.reset()
            self._state = ClientState.CONNECTING
            self._first_login = loop.create_future()
            # now, so that what is sent from here on waits for the login
            self._session = self._new_session(loop.time())
            self._runner = loop.create_task(self._run())
        waiter = self._first_login
        assert waiter is not None
        try:
            await asyncio.shield(waiter)
        except asyncio.CancelledError:
            if not waiter.done():
                self.destroy()
            raise
        finally:
            # the caller gets its turn first (two hops: it may be a task of its own, as wait_for makes)
            loop.call_soon(loop.call_soon, self._release_held)

    async def _run(self) -> None:
        first = True
        try:
            while not self._stopping:
                if not first:
                    self._counts["reconnects"] += 1
                first = False
                error, fatal = await self._connection()
                if self._stopping:
                    break
                if fatal or not self.options.reconnect:
                    if fatal and self.options.reconnect:
                        logger.error("login refused: not reconnecting (fix the credentials and call connect())")
                    self._fail_connect(error or NotConnectedError("the connection closed before the login"))
                    break
                delay = self._policy.next_delay()
                self._state = ClientState.RECONNECT_WAIT
                logger.info("reconnecting in %.3f s (attempt %d)", delay, self._policy.attempt)
                self._wake = asyncio.Event()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                self._wake = None
                if not self._stopping:
                    self._state = ClientState.CONNECTING
        except Exception as exc:  # a bug of ours: say so loudly rather than die silently
            logger.exception("connection task crashed")
            self._fail_connect(exc)
        finally:
            session, self._session = self._session, None
            if session is not None:  # stopped before it connected: what waits for it fails now
                session.connection_lost(None)
                self._handle(None, session.events_received())
            self._state = ClientState.DISCONNECTED
            self._fail_connect(NotConnectedError("the client was stopped before it logged in"))
            for stream in list(self._streams):
                stream.close()

    def _fail_connect(self, error: BaseException) -> None:
        waiter = self._first_login
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
            waiter.exception()  # connect() still raises it; nobody waiting is no "never retrieved" warning

    async def _connection(self) -> tuple[BaseException | None, bool]:
        """One connection from TCP connect to close: (the error that ended it, whether it is fatal)."""
        loop = asyncio.get_running_loop()
        o = self.options
        session = self._session  # connect() made the first one
        if session is None:
            session = self._session = self._new_session(loop.time())
        conn = _Connection(self, session)
        self._conn = conn
        self._error = None
        self._fatal = False
        try:
            logger.debug("connecting to %s:%s", o.host, o.port)
            ctx = self._ssl_context
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: conn, *o.address, ssl=ctx, server_hostname=o.host if ctx is not None else None
                ),
                o.connect_timeout,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            error = exc if isinstance(exc, OSError) else TimeoutError(f"no connection within {o.connect_timeout} s")
            self._lost(conn, error)
            return self._error or error, self._fatal
        except asyncio.CancelledError:  # destroy() while connecting
            self._lost(conn, None)
            raise
        if self._stopping:
            session.logoff(loop.time())  # disconnect() while connecting: no Login
        self._flush(conn)
        await conn.closed
        return self._error, self._fatal

    # -- the connection's callbacks --------------------------------------------------------------------

    def _received(self, conn: _Connection, data: bytes) -> None:
        session = conn.session
        if not session.logged_in and len(data) > _LOGIN_SLICE and self._first_login is not None:
            # connect() is waiting: feed the read in slices, so that what follows the login answer
            # waits as bytes, not as parsed frames (the parser gives the same frames for any split)
            for start in range(0, len(data), _LOGIN_SLICE):
                self._received(conn, data[start : start + _LOGIN_SLICE])
                if self._held is not None:
                    self._held_bytes = data[start + _LOGIN_SLICE :]
                    return
            return
        now = time.monotonic() if self._loop is None else self._loop.time()
        session.receive_data(data, now)
        if now >= self._timer_at and self._timer is not None:
            session.handle_timeout(now)
        events = session.events_received()
        if events:
            self._handle(conn, events)
        self._flush(conn)

    def _eof(self, conn: _Connection) -> None:
        if self._destroying:
            return
        conn.session.receive_eof()
        self._handle(conn, conn.session.events_received())

    def _lost(self, conn: _Connection, exc: BaseException | None) -> None:
        session = conn.session
        if self._held is not None and self._held_bytes:  # read before the close: parsed first
            session.receive_data(self._held_bytes, time.monotonic() if self._loop is None else self._loop.time())
            self._held_bytes = b""
            self._held.extend(session.events_received())
        session.connection_lost(None if self._destroying else exc)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._session_over(session)
        if self._session is session:
            self._session = None
            self._conn = None
        events = session.events_received()
        if self._held is not None:  # closed before connect() returned: keep the order
            self._held.extend(events)
            return
        self._handle(conn, events)

    def _on_timer(self) -> None:
        self._timer = None
        conn = self._conn
        if conn is None or self._loop is None:
            return
        conn.session.handle_timeout(self._loop.time())
        events = conn.session.events_received()
        if events:
            self._handle(conn, events)
        self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        """Write what the session has, close when it is over, and keep the timer at its next deadline."""
        session = conn.session
        transport = conn.transport
        if transport is None:
            return
        if session.has_data_to_send():
            transport.write(session.data_to_send())
        if session.close_expected:
            transport.close()
            return
        deadline = session.next_deadline()
        if deadline is not None and (self._timer is None or deadline < self._timer_at):
            if self._timer is not None:
                self._timer.cancel()
            assert self._loop is not None
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _handle(self, conn: _Connection | None, events: list[Event]) -> None:
        """Act on the session's events in order: frames to handlers and streams, futures settled, the
        library's events emitted."""
        for i, event in enumerate(events):
            cls = event.__class__
            if cls is FramesReceived:
                self._deliver(event.frames)  # type: ignore[union-attr]
                continue
            if cls is ActionDone:
                call = settle(event)  # type: ignore[arg-type]
                if call is not None:
                    self.call_handler(call.fn, call.args)
                continue
            if cls is LoggedIn and conn is not None:
                self._logged_in(conn)
            elif cls is ServerClosed:
                self._server_closed(time.monotonic())
            elif cls is LoginRefused or cls is TimedOut or (cls is Failed and self._error is None):
                self._error = event.error  # type: ignore[union-attr]
            elif cls is Closed:
                self._fatal = event.fatal  # type: ignore[union-attr]
                if self._watch.blocked:  # no connection, so nothing is kept from reading any more
                    self._streams_unblocked()
            for name, args in library_events(event):
                self.emit_event(name, *args)
            if cls is LoggedIn and self._first_login is not None and not self._first_login.done():
                # connect() is waiting: what came with the login answer waits for its caller
                self._first_login.set_result(None)
                self._held = events[i + 1 :]
                if conn is not None and conn.transport is not None:
                    conn.transport.pause_reading()
                return

    def _release_held(self) -> None:
        held, self._held = self._held, None
        rest, self._held_bytes = self._held_bytes, b""
        conn = self._conn
        if held:
            self._handle(conn, held)
        if rest and conn is not None:
            self._received(conn, rest)
        if conn is not None and conn.transport is not None and not self._streams_full():
            conn.transport.resume_reading()

    def _logged_in(self, conn: _Connection) -> None:
        self._state = ClientState.CONNECTED
        self._note_login(conn.session)

    # -- frames to handlers and streams ---------------------------------------------------------------

    def _deliver(self, frames: list[Frame]) -> None:
        self.deliver(frames, self.options.identifier)
        streams = self._streams
        if not streams:
            return
        full = False
        for frame in frames:
            if frame_kind(frame) == "event":
                event = frame["event"]
                for stream in streams:
                    if (stream.names is None or event in stream.names) and stream.push(frame):
                        full = True
        if full:
            waiting = sum(len(s) for s in streams)
            if waiting > self._stream_high_water:
                self._stream_high_water = waiting
            if self._conn is not None and self._conn.transport is not None:
                self._conn.transport.pause_reading()
                self._streams_blocked()

    # -- a reader kept from reading (blocking.py has the rules) ------------------------------------------

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
        full = [s.label for s in self._streams if s.full]
        now = time.monotonic()
        message = self._watch.check(now, " and ".join(full) or None, self._watch.episode_seconds(now))
        if message:
            logger.warning(message)

    def _streams_unblocked(self) -> None:
        self._watch.unblock(time.monotonic())
        if self._watch_timer is not None:
            self._watch_timer.cancel()
            self._watch_timer = None

    def handler_stalled(self, f: Callable[..., Any], seconds: float) -> None:
        """A plain handler held the loop, and so the reading, for ``seconds``: warned about once it is over
        (nothing else runs on the loop meanwhile)."""
        message = self._watch.stalled(time.monotonic(), seconds, handler_name(f))
        if message:
            logger.warning(message)

    def handler_returned(self, f: Callable[..., Any], result: Any) -> None:
        if not inspect.isawaitable(result):
            return
        task = asyncio.ensure_future(result)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._handler_done(f, t))

    def _handler_done(self, f: Callable[..., Any], task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.handler_failed(f, task.exception())  # type: ignore[arg-type]

    def events(self, *names: str, maxsize: int | None = None) -> EventStream:
        """Event frames as an async iterator (every event, or those named), bounded by ``maxsize``
        (default: the ``max_queued_frames`` option); see ``EventStream``."""
        stream = EventStream(self, names, maxsize or self.options.max_queued_frames)
        self._streams.append(stream)
        return stream

    def _streams_full(self) -> bool:
        return any(s.full for s in self._streams)

    def _stream_drained(self) -> None:
        if self._streams_full():
            return
        if self._watch.blocked:  # also with no connection left: the episode is over either way
            self._streams_unblocked()
        conn = self._conn
        if conn is not None and conn.transport is not None and self._held is None:
            conn.transport.resume_reading()

    def _stream_closed(self, stream: EventStream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)
        self._stream_drained()

    def _emit_soon(self, event: str, *args: Any) -> None:
        self.emit_event(event, *args)

    # -- actions ---------------------------------------------------------------------------------

    def send(self, message: Mapping[str, object], callback: ResponseCallback | None = None) -> str:
        """Write one action; returns its ActionID, as the threaded client's ``send()``."""
        return self._submit(message, callback, None, None)

    def action(
        self, message: Mapping[str, object], timeout: float | None = None, *, until_event: str | None = None
    ) -> asyncio.Future[ActionResult]:
        """Send an action; an ``asyncio.Future`` of its ``ActionResult`` (fails as the threaded one's does).
        Cancelling the future stops waiting for the action: a late answer is dropped."""
        future: asyncio.Future[ActionResult] = asyncio.get_running_loop().create_future()
        if timeout is None:
            timeout = self.options.action_timeout
        action_id = self._submit(message, None, future, timeout, until_event)
        future.add_done_callback(lambda f: self._cancelled(f, action_id))
        return future

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

    def _cancelled(self, future: asyncio.Future[ActionResult], action_id: str) -> None:
        session = self._session
        if future.cancelled() and session is not None:
            session.cancel(action_id)

    def _submit(
        self,
        message: Mapping[str, object],
        callback: ResponseCallback | None,
        future: asyncio.Future[ActionResult] | None,
        timeout: float | None,
        until_event: str | None = None,
    ) -> str:
        session, conn, loop = self._session, self._conn, self._loop
        if session is not None and loop is not None:
            try:
                action_id = session.send(
                    message, loop.time(), callback=callback, waiter=future, timeout=timeout, until_event=until_event
                )
            except NotConnectedError:
                pass
            else:
                if conn is not None and conn.session is session:
                    self._flush(conn)
                return action_id
        return self._unwritable(message, future)

    # -- ending ----------------------------------------------------------------------------------

    async def disconnect(self, timeout: float | None = 5.0) -> None:
        """Log off (Asterisk answers Goodbye), wait for the close (up to ``timeout``), and do not reconnect."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        session, conn, loop = self._session, self._conn, self._loop
        if session is not None and loop is not None:
            session.logoff(loop.time())
            if conn is not None and conn.session is session:
                self._flush(conn)
        runner = self._runner
        if runner is not None and not runner.done() and runner is not asyncio.current_task():
            try:
                await asyncio.wait_for(asyncio.shield(runner), timeout)
            except asyncio.TimeoutError:
                self.destroy()

    async def wait_closed(self) -> None:
        """Return once the client has stopped for good (after ``disconnect()``, ``destroy()`` or a refused
        login): its task, the connection and the reconnect wait are over. At once when it never ran."""
        runner = self._runner
        if runner is not None and not runner.done() and runner is not asyncio.current_task():
            await asyncio.wait([runner])

    def destroy(self) -> None:
        """Close the connection at once, without Logoff, and do not reconnect. Safe at any time."""
        self._stopping = self._destroying = True
        self._state = ClientState.DISCONNECTED
        if self._wake is not None:
            self._wake.set()
        conn = self._conn
        if conn is not None and conn.transport is not None:
            conn.transport.abort()
        elif self._runner is not None and not self._runner.done():
            self._runner.cancel()  # still connecting
        self._fail_connect(NotConnectedError("the client was destroyed before it logged in"))
