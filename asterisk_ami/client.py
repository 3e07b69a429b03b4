"""``AsteriskAmi``: the threaded shell around the sans-IO session (``session.py``).

Threads (paho-mqtt's cut): one *reader* thread per ``connect()`` owns the socket. It connects, feeds the
session what it reads, writes what the session wants written, waits in ``select`` until data arrives or
the session's next deadline, resolves action futures, and reconnects by its ``ReconnectPolicy``. It never
runs user code. A *dispatch* thread runs every user handler and callback in frame order, so a slow
handler never stops the socket being read. Writes come from any thread, serialised by one lock; a
socketpair wakes the reader when another thread sets an earlier deadline.

Every protocol decision (login, Challenge, keepalive, timeouts, Logoff, correlation) is the session's;
this file only moves bytes and events.
"""

from __future__ import annotations

import contextlib
import logging
import math
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any

from pyee import EventEmitter

from .actions import ActionDone, ActionResult, ResponseCallback
from .dispatch import Deliver, DispatchQueue, DispatchThread, Emit, ReaderWatch, Stop
from .errors import ActionTimeoutError, NotConnectedError, UsageError
from .handlers import Call
from .originate import EVENT as ORIGINATE_EVENT
from .originate import OriginateResult, originate_message, result_timeout
from .protocol import Frame
from .session import AmiSession, ClientState, Closed, Event, FramesReceived, LoggedIn, ServerClosed, redact
from .shell import ShellBase, library_events, settle

logger = logging.getLogger("asterisk_ami")

_RECV_BYTES = 65536
_RESULT_GRACE = 1.0  # request() waits this much past its timeout for the session's own timeout to land

__all__ = ["AsteriskAmi", "redact"]


class AsteriskAmi(DispatchThread, ShellBase, EventEmitter):
    """AMI client. ``AsteriskAmi(host=..., username=..., password=...)`` or ``AsteriskAmi({...})``.

    Emits ``ami_data(frame)`` for every frame, every event frame also under its own name
    (``'Hangup'``), ``ami_login(success, frame)``, and ``ami_socket_drain``, ``ami_socket_error(exc)``,
    ``ami_socket_timeout``, ``ami_socket_end``, ``ami_socket_close(had_error)``,
    ``ami_socket_unwritable``. Handlers run on the dispatch thread.
    """

    def __init__(self, options: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        super().__init__()
        self._init_shell(options, kwargs)
        self._state_lock = threading.Lock()  # state, threads, session and socket references
        self._session_lock = threading.Lock()  # the session itself (not thread-safe)
        self._write_lock = threading.Lock()  # taken before _session_lock when both are needed
        self._queue = DispatchQueue(self.options.max_queued_frames)
        self._session: AmiSession | None = None
        self._sock: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._waiting_until = math.inf  # the deadline the reader's select() waits for
        self._stop = threading.Event()
        self._stop.set()
        self._destroying = False
        self._generation = 0
        self._active_runs = 0
        self._runner: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None
        self._on_connect: Callable[[], object] | None = None
        self._on_raw_data: Callable[[bytes], object] | None = None
        self._coroutine_warned = False
        self._reader_watch = ReaderWatch(self._watch, self.running_handler)

    # -- public API ------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: ``frames`` and ``bytes`` received, ``logins``, ``reconnects`` (connection attempts after
        a close), ``pending_actions``, ``queued_frames`` and ``queue_high_water`` (frames waiting for the dispatch
        thread now, and the most ever), ``reconnect_attempt`` (failed attempts since the last login),
        ``blocked_seconds``, ``blocked_episodes`` and ``slow_handler_warnings`` (the reader kept from
        reading by a full queue), ``slowest_handler`` and ``slowest_handler_seconds`` (its slowest call)."""
        with self._session_lock:
            stats = self._session_stats(self._session, time.monotonic())
        stats["queue_high_water"] = self._queue.high_water
        stats["queued_frames"] = self._queue.frames
        return stats

    def connect(
        self,
        on_connect: Callable[[], object] | None = None,
        on_raw_data: Callable[[bytes], object] | None = None,
    ) -> None:
        """Start connecting in the background and return at once.

        ``on_connect()`` runs once the TCP connection is up (login follows); ``on_raw_data(chunk)``
        for every chunk received. Both run on the dispatch thread.
        """
        with self._state_lock:
            if self._runner is not None and self._runner.is_alive() and not self._stop.is_set():
                logger.warning("connect() ignored: this client is already connecting or connected")
                return
            self._stop = threading.Event()
            self._destroying = False
            self._generation += 1
            self._active_runs += 1
            self._state = ClientState.CONNECTING
            self._on_connect = on_connect
            self._on_raw_data = on_raw_data
            self._policy.reset()
            with self._session_lock:  # now, so that what is sent from here on waits for the login
                self._session = self._new_session(time.monotonic())
            if self._dispatcher is None:
                self._dispatcher = threading.Thread(
                    target=self._dispatch_loop, name="asterisk-ami-dispatch", daemon=True
                )
                self._dispatcher.start()
            runner = threading.Thread(
                target=self._run, args=(self._generation, self._stop), name="asterisk-ami-reader", daemon=True
            )
            self._runner = runner
        runner.start()

    def send(self, message: Mapping[str, object], callback: ResponseCallback | None = None) -> str:
        """Write one action; return its ActionID (generated when the message has none).

        Thread-safe. Before login completes the message is queued and written right after login.
        With no connection, ``ami_socket_unwritable`` is emitted. ``callback(response)`` runs on the
        dispatch thread when the response with this ActionID arrives. Raises ``InvalidMessageError``
        (a ``ValueError``) for a message that could inject headers or that Asterisk would reject.
        """
        return self._submit(message, callback, None, None)

    def action(self, message: Mapping[str, object], timeout: float | None = None) -> Future[ActionResult]:
        """Send an action and return a Future of its ``ActionResult``.

        The future fails with ``ActionError`` (``Response: Error``), ``ActionTimeoutError`` after
        ``timeout`` seconds (default: the ``action_timeout`` option), or a ``ConnectionError``
        subclass when the connection is missing or lost. It is resolved on the reader thread:
        done-callbacks must be quick and must not block on other actions.
        """
        return self._action(message, timeout, wake=True)

    def _action(
        self, message: Mapping[str, object], timeout: float | None, wake: bool, until_event: str | None = None
    ) -> Future[ActionResult]:
        future: Future[ActionResult] = Future()
        future.set_running_or_notify_cancel()
        if timeout is None:
            timeout = self.options.action_timeout
        self._submit(message, None, future, timeout, wake, until_event)
        return future

    def originate(self, channel: str, **options: Any) -> Future[OriginateResult]:
        """Originate a call with ``Async: true``; a Future of its :class:`OriginateResult`, from the
        ``OriginateResponse`` event that carries the action's ActionID. Options: ``exten``, ``context``,
        ``priority`` or ``application`` and ``data``; ``timeout`` (ring timeout, seconds), ``callerid``,
        ``variables`` (a mapping), ``account``, ``early_media``, ``codecs``, ``channel_id``,
        ``other_channel_id``, ``action_id``. Fails as ``action()``'s future does (``ActionError`` when
        Asterisk refuses the action)."""
        message = originate_message(channel, **options)
        inner = self._action(message, result_timeout(options.get("timeout")), True, ORIGINATE_EVENT)
        outer: Future[OriginateResult] = Future()
        outer.set_running_or_notify_cancel()

        def done(f: Future[ActionResult]) -> None:
            exc = f.exception()
            if exc is not None:
                outer.set_exception(exc)
            else:
                outer.set_result(OriginateResult.from_result(f.result()))

        inner.add_done_callback(done)
        return outer

    def request(self, message: Mapping[str, object], timeout: float | None = 10) -> ActionResult:
        """Send an action and block until its result; raises as ``action()``'s future does.

        Safe to call from an event handler (the dispatch thread keeps the reader unblocked while it
        waits); calling it on the reader thread (a future's done-callback) raises ``UsageError``.
        """
        if threading.current_thread() is self._runner:
            raise UsageError("request() on the reader thread would wait for itself; use action()")
        on_dispatcher = threading.current_thread() is self._dispatcher
        if on_dispatcher:
            self._queue.lift_bound()
        try:
            # this thread waits for the deadline itself, so the reader need not be woken to learn it
            if timeout is None:
                timeout = self.options.action_timeout
            future = self._action(message, timeout, wake=False)
            if timeout is None:
                return future.result()
            deadline = time.monotonic() + timeout  # not earlier than the session's deadline for it
            with contextlib.suppress(FutureTimeoutError):
                return future.result(timeout)
            time.sleep(max(0.0, deadline - time.monotonic()))
            self._run_timers()  # the session times the action out now, unless its result just came
            try:
                return future.result(_RESULT_GRACE)
            except FutureTimeoutError:
                raise ActionTimeoutError(f"no result within {timeout} s") from None
        finally:
            if on_dispatcher:
                self._queue.restore_bound()

    def disconnect(self, timeout: float | None = 5.0) -> None:
        """Log off (Asterisk answers Goodbye), close, and do not reconnect.

        Waits up to ``timeout`` seconds for the close when called from a thread of the caller's own;
        from a handler it returns at once. Safe to call twice, or before ``connect()``.
        """
        with self._state_lock:
            already = self._stop.is_set()
            self._stop.set()
        if not already:
            with self._write_lock:
                with self._session_lock:
                    if self._session is not None:
                        self._session.logoff(time.monotonic())
                self._flush_locked()
            self._wake()
        self._join(timeout)

    def destroy(self, timeout: float | None = 5.0) -> None:
        """Close the socket at once, without Logoff, and do not reconnect. Safe at any time."""
        with self._state_lock:
            self._stop.set()
            self._destroying = True
            sock = self._sock
        if sock is not None:
            self._shutdown(sock)
        self._wake()
        self._join(timeout)

    # -- sending ---------------------------------------------------------------------------------

    def _submit(
        self,
        message: Mapping[str, object],
        callback: ResponseCallback | None,
        future: Future[ActionResult] | None,
        timeout: float | None,
        wake_reader: bool = True,
        until_event: str | None = None,
    ) -> str:
        wake = False
        with self._write_lock:
            with self._session_lock:
                session = self._session
                action_id = None
                if session is not None:
                    try:
                        action_id = session.send(
                            message,
                            time.monotonic(),
                            callback=callback,
                            waiter=future,
                            timeout=timeout,
                            until_event=until_event,
                        )
                    except NotConnectedError:
                        pass
                    else:
                        if timeout is not None and wake_reader:
                            deadline = session.next_deadline()
                            wake = deadline is not None and deadline < self._waiting_until
            if action_id is not None:
                self._flush_locked()
        if wake:
            self._wake()
        if action_id is not None:
            return action_id
        return self._unwritable(message, future)

    def _run_timers(self) -> None:
        """Act on the session's deadlines from this thread (request() waiting for its own timeout)."""
        with self._session_lock:
            session = self._session
            if session is None:
                return
            session.handle_timeout(time.monotonic())
            events = session.events_received()
            close = session.close_expected
        for event in events:  # only timeouts come from here: nothing that blocks on the queue
            if isinstance(event, ActionDone):
                settle(event)
            else:  # the keepalive's ami_socket_timeout, a filter that got no answer
                for name, args in library_events(event):
                    self._queue.put(Emit(name, args))
        if close:
            self._wake()

    def _flush_locked(self) -> None:
        """Write what the session has for the socket, if there is one; the caller holds ``_write_lock``."""
        with self._session_lock:
            sock, session = self._sock, self._session
            data = session.data_to_send() if sock is not None and session is not None else b""
        if data and sock is not None:
            try:
                self._write(sock, data)
            except OSError as exc:
                logger.debug("write failed: %s", exc)
                self._shutdown(sock)  # the reader sees it and ends the session

    def _write(self, sock: socket.socket, data: bytes) -> None:
        """Write all of ``data``; the caller holds ``_write_lock``."""
        if isinstance(sock, ssl.SSLSocket):
            # TLS takes no send flags; a socket that is not writable right now has a full buffer
            _, writable, _ = select.select([], [sock], [], 0)
            sent = sock.send(data) if writable else 0
        else:
            # a blocking send() never returns short on Linux, so ask the kernel not to wait
            try:
                sent = sock.send(data, socket.MSG_DONTWAIT)
            except BlockingIOError:
                sent = 0
        if sent < len(data):
            # the kernel buffer was full: finish, then tell the user it drained (node's 'drain')
            sock.sendall(memoryview(data)[sent:])
            self._emit_soon("ami_socket_drain")

    def _wake(self) -> None:
        """Make the reader's select() return: a deadline changed, or it must stop."""
        wake = self._wake_w
        if wake is not None:
            with contextlib.suppress(OSError):
                wake.send(b"\0")
        self._queue.wake()

    # -- the reader thread -------------------------------------------------------------------------

    def _run(self, generation: int, stop: threading.Event) -> None:
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        self._wake_w = wake_w
        try:
            first = True
            while not stop.is_set():
                if not first:
                    self._counts["reconnects"] += 1
                first = False
                fatal = self._connection(generation, stop, wake_r)
                if stop.is_set() or not self.options.reconnect:
                    break
                if fatal:
                    logger.error("login refused: not reconnecting (fix the credentials and call connect())")
                    break
                delay = self._policy.next_delay()
                self._set_state(generation, ClientState.RECONNECT_WAIT)
                logger.info("reconnecting in %.3f s (attempt %d)", delay, self._policy.attempt)
                if stop.wait(delay):
                    break
                self._set_state(generation, ClientState.CONNECTING)
        except Exception:  # a bug of ours: say so loudly rather than die silently
            logger.exception("reader thread crashed")
        finally:
            with self._session_lock:  # stopped before it connected: what waits for it fails now
                session, self._session = self._session, None
                if session is not None:
                    session.connection_lost(None)
                    events = session.events_received()
            if session is not None:
                self._handle(events, generation, stop)
            with self._state_lock:
                if generation == self._generation:
                    self._state = ClientState.DISCONNECTED
                    stop.set()
                self._active_runs -= 1
                self._wake_w = None
            wake_r.close()
            wake_w.close()
            self._queue.put(Stop())

    def _set_state(self, generation: int, state: ClientState) -> None:
        with self._state_lock:
            if generation == self._generation:
                self._state = state

    def _connection(self, generation: int, stop: threading.Event, wake_r: socket.socket) -> bool:
        """One connection from TCP connect to close. Returns True when it must not be retried."""
        o = self.options
        with self._session_lock:  # connect() made the first one; its Login waits for the socket
            session = self._session
            if session is None:
                session = self._session = self._new_session(time.monotonic())
        sock: socket.socket | None = None
        error: BaseException | None = None
        fatal = False
        try:
            logger.debug("connecting to %s:%s", o.host, o.port)
            sock = socket.create_connection(o.address, timeout=o.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl_context is not None:
                sock = self._ssl_context.wrap_socket(sock, server_hostname=o.host)
            sock.settimeout(None)
            with self._state_lock, self._session_lock:
                if stop.is_set() and self._destroying:
                    return False
                self._sock = sock
            if self._on_connect is not None:
                self._queue.put(Call(self._on_connect, ()))
            if not session.close_expected:  # disconnect() while connecting: no Login
                with self._write_lock:
                    self._flush_locked()
            fatal = self._read_loop(sock, session, generation, stop, wake_r)
        except OSError as exc:  # refused, reset, TLS, connect timeout
            if not (stop.is_set() and self._destroying):
                error = exc
        finally:
            with self._state_lock, self._session_lock:
                self._sock = None
                session.connection_lost(error)
                events = session.events_received()
                self._session_over(session)
                self._session = None
            if sock is not None:
                self._shutdown(sock)
                sock.close()
            fatal = self._handle(events, generation, stop) or fatal
        return fatal

    def _read_loop(
        self, sock: socket.socket, session: AmiSession, generation: int, stop: threading.Event, wake_r: socket.socket
    ) -> bool:
        lock = self._session_lock
        is_tls = isinstance(sock, ssl.SSLSocket)
        full = False
        watch = [sock, wake_r]
        fatal = False
        while True:
            with lock:
                if session.close_expected:
                    return fatal
                deadline = session.next_deadline()
                self._waiting_until = math.inf if deadline is None else deadline
            if is_tls and sock.pending():  # type: ignore[attr-defined]
                data = sock.recv(_RECV_BYTES)  # decrypted bytes already buffered: no select() needed
            elif full:
                # the last read filled the buffer, so more is almost surely waiting: skip the select()
                try:
                    data = sock.recv(_RECV_BYTES, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    full = False
                    continue
            else:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                readable, _, _ = select.select(watch, [], [], timeout)
                if wake_r in readable:
                    with contextlib.suppress(OSError):
                        wake_r.recv(4096)
                if sock not in readable:
                    if stop.is_set() and self._destroying:
                        return fatal
                    with lock:
                        session.handle_timeout(time.monotonic())
                        events = session.events_received()
                        writes = session.has_data_to_send()
                    fatal = self._handle(events, generation, stop) or fatal
                    if writes:
                        with self._write_lock:
                            self._flush_locked()
                    continue
                data = sock.recv(_RECV_BYTES)
            full = not is_tls and len(data) == _RECV_BYTES
            if not data:
                if stop.is_set() and self._destroying:
                    return fatal  # our own destroy(): no "end" event
                with lock:
                    session.receive_eof()
                    events = session.events_received()
                return self._handle(events, generation, stop) or fatal
            if self._on_raw_data is not None:
                self._queue.put(Call(self._on_raw_data, (data,)))
            now = time.monotonic()
            with lock:
                session.receive_data(data, now)
                if deadline is not None and now >= deadline:
                    session.handle_timeout(now)
                events = session.events_received()
                writes = session.has_data_to_send()
            if events:
                fatal = self._handle(events, generation, stop) or fatal
            if writes:
                with self._write_lock:
                    self._flush_locked()

    def _handle(self, events: list[Event], generation: int, stop: threading.Event) -> bool:
        """Turn the session's events into futures settled now and items for the dispatch thread, in order.
        Returns True when the session ended fatally (no reconnect)."""
        batch: list[Frame | Call] | None = None
        fatal = False
        put = self._queue.put
        for event in events:
            cls = event.__class__
            if cls is FramesReceived:
                frames: list[Any] = event.frames  # type: ignore[union-attr]
                if batch is None:
                    batch = frames
                else:
                    batch.extend(frames)
                continue
            if cls is ActionDone:
                call = settle(event)  # type: ignore[arg-type]
                if call is not None:
                    if batch is None:
                        batch = []
                    batch.append(call)
                continue
            if batch:
                self._put_frames(batch, stop)
            batch = None
            if cls is LoggedIn:
                self._logged_in(generation)
            elif cls is ServerClosed:
                self._server_closed(time.monotonic())
            elif cls is Closed:
                fatal = event.fatal  # type: ignore[union-attr]
            for name, args in library_events(event):
                put(Emit(name, args))
        if batch:
            self._put_frames(batch, stop)
        return fatal

    def _logged_in(self, generation: int) -> None:
        with self._state_lock:
            if generation == self._generation:
                self._state = ClientState.CONNECTED
            session = self._session
        self._note_login(session)

    def _put_frames(self, batch: list[Frame | Call], stop: threading.Event) -> None:
        """Hand frames to the dispatch thread in slices the queue bound can hold (one read can bring
        thousands); blocks while the queue is full, which is the back-pressure."""
        size = self.options.max_queued_frames
        if len(batch) <= size:
            self._queue.put(Deliver(batch), stop, self._reader_watch)
            return
        for start in range(0, len(batch), size):
            self._queue.put(Deliver(batch[start : start + size]), stop, self._reader_watch)

    def _shutdown(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def _join(self, timeout: float | None) -> None:
        current = threading.current_thread()
        runner, dispatcher = self._runner, self._dispatcher
        if current in (runner, dispatcher):
            return
        end = None if timeout is None else time.monotonic() + timeout
        for thread in (runner, dispatcher):
            if thread is not None and thread.is_alive():
                thread.join(None if end is None else max(0.0, end - time.monotonic()))
