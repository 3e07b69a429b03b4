"""``AsteriskAmi``: the threaded shell around the sans-IO client lifecycle (``lifecycle.py``).

Threads (paho-mqtt's cut): a *reader* thread per ``connect()`` owns the socket (reader.py); a *dispatch*
thread runs every user handler and callback in frame order (dispatch.py), so a slow handler never stops
the socket being read. Writes come from any thread. Every decision about the protocol and the client's
life is the lifecycle's; this file is the API.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pyee import EventEmitter

from ..actions import ActionResult, ResponseCallback
from ..errors import ActionTimeoutError, ConnectTimeoutError, NotConnectedError, UsageError
from ..lifecycle import DISCONNECT_GRACE
from ..options import check_timeout
from ..originate import EVENT as ORIGINATE_EVENT
from ..originate import OriginateResult, originate_message, result_timeout
from ..session import redact
from ..shell import ShellBase
from ..streams import StreamBuffer
from .dispatch import DispatchQueue, DispatchThread, Item
from .reader import Reader, _Run
from .stream import EventStream

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..options import AmiOptionsDict

_RESULT_GRACE = 1.0  # request() waits this much past its timeout for the reader's own timeout to land

__all__ = ["AsteriskAmi", "EventStream", "redact"]


class AsteriskAmi(Reader, DispatchThread, ShellBase, EventEmitter):  # type: ignore[misc]  # typed on()/once() (typed_handlers.py)
    """AMI client with threads. ``AsteriskAmi(host=..., username=..., password=...)`` or ``AsteriskAmi({...})``.

    Emits ``ami_data(frame)`` for every frame, every event frame also under its own name
    (``'Hangup'``) and under the patterns that match it (``'Queue*'``), ``ami_login(success, frame)``, and
    ``ami_socket_drain``, ``ami_socket_error(exc)``, ``ami_socket_timeout``, ``ami_socket_end``,
    ``ami_socket_close(had_error)``, ``ami_socket_unwritable``. Handlers run on the dispatch thread.
    ``with AsteriskAmi(...) as ami:`` logs in on entry and disconnects on exit.
    """

    def __init__(self, options: Mapping[str, Any] | None = None, /, **kwargs: Unpack[AmiOptionsDict]) -> None:
        super().__init__()
        self._init_shell(options, kwargs)
        self._handlers.on_returned = self._handler_returned
        self._lock = threading.Lock()  # the lifecycle (not thread-safe)
        self._write_lock = threading.Lock()  # one writer at a time; taken before _lock
        self._state_lock = threading.Lock()  # the threads and the waiters
        self._room = threading.Condition()  # the dispatch queue's and the streams': the reader waits for room
        self._queue = DispatchQueue(self.options.max_queued_frames, self._room)
        self._streams: list[EventStream] = []
        self._pending: deque[Item] = deque()
        self._sock = None
        self._run_now: _Run | None = None
        self._reader: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None
        self._active_runs = 0
        self._flush_wanted = False
        self._connect_waiters: list[Future[None]] = []
        self._on_connect: Callable[[], object] | None = None
        self._on_raw_data: Callable[[bytes], object] | None = None
        self._coroutine_warned = False

    def __enter__(self) -> AsteriskAmi:
        self.connect_and_wait()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.disconnect()

    # -- state -----------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: ``frames`` and ``bytes`` received, ``logins``, ``reconnects`` (connection attempts after
        a close), ``pending_actions``, ``queued_frames`` and ``queue_high_water`` (frames waiting for the
        dispatch thread and the streams now, and the most ever), ``reconnect_attempt`` (failed attempts
        since the last login), ``blocked_seconds``, ``blocked_episodes`` and ``slow_handler_warnings`` (the
        reader kept from reading by full consumers), ``slowest_handler`` and ``slowest_handler_seconds``."""
        with self._lock:
            stats: dict[str, Any] = dict(self._core.stats())
        stats = self._base_stats(stats, time.monotonic())
        streamed = sum(len(s) for s in self._streams)
        stats["queued_frames"] = self._queue.frames + streamed
        stats["queue_high_water"] = max(self._queue.high_water, stats["queued_frames"])
        return stats

    # -- connecting ------------------------------------------------------------------------------

    def connect(
        self,
        on_connect: Callable[[], object] | None = None,
        on_raw_data: Callable[[bytes], object] | None = None,
    ) -> None:
        """Start connecting in the background and return at once (the node original's ``connect``).

        ``on_connect()`` runs once the TCP connection is up (login follows); ``on_raw_data(chunk)`` for
        every chunk received. Both run on the dispatch thread. A second call while connecting or
        connected is ignored with a warning. ``connect_and_wait()`` blocks until logged in.
        """
        self._drain_idle()  # what an earlier stop left for nobody (streams to end)
        with self._state_lock:
            with self._lock:
                if not self._core.start(time.monotonic()):
                    return
            self._on_connect, self._on_raw_data = on_connect, on_raw_data
            self._start_dispatcher()
            run = self._run_now = _Run()
            self._active_runs += 1
            self._reader = threading.Thread(
                target=self._reader_main, args=(run,), name="asterisk-ami-reader", daemon=True
            )
            self._reader.start()

    def connect_and_wait(self, timeout: float | None = None) -> None:
        """Connect (unless already connecting) and block until logged in; what ``with AsteriskAmi(...)``
        does. Raises as asyncio's ``connect()``: ``AuthenticationError`` for a refused login; without
        ``reconnect`` the failed attempt's ``ConnectTimeoutError`` or ``OSError``; with it, attempts go
        on until one logs in or ``timeout`` seconds pass (then ``ConnectTimeoutError`` and the client
        stops). Frames that follow the login answer wait for this to return, so a stream or handler made
        right after it misses none of them."""
        seconds = check_timeout(timeout)
        waiter: Future[None] = Future()
        with self._state_lock:
            self._connect_waiters.append(waiter)
        with self._lock:
            self._core.wait_for_login(True)
            state = self._core.state
        if state == "connected":
            self._settle_connect(None)
        try:
            if state == "disconnected":
                self.connect()
            try:
                waiter.result(seconds)
            except FutureTimeoutError:
                self.destroy()
                raise ConnectTimeoutError(f"not logged in within {seconds} s") from None
        finally:
            with self._lock:
                self._core.wait_for_login(False)
                self._core.connect_returned(time.monotonic())
            self._wake()

    # -- actions ---------------------------------------------------------------------------------

    def send(self, message: Mapping[str, object], callback: ResponseCallback | None = None) -> str:
        """Write one action; return its ActionID (generated when the message has none).

        Thread-safe. Before the login completes the message is queued and written right after it. With no
        connection (before ``connect()``, while waiting to reconnect, after the end) ``ami_socket_unwritable``
        is emitted and ``NotConnectedError`` raised. ``callback(response)`` runs on the dispatch thread when
        the response with this ActionID arrives. Raises ``InvalidMessageError`` (a ``ValueError``) for a
        message that could inject headers or that Asterisk would reject, ``WriteBufferFullError`` when
        too much already waits for the login, and ``WriteTimeoutError`` when Asterisk took nothing for
        ``write_timeout`` seconds (the connection is then closed).
        """
        return self._submit(message, callback, None, None, None)

    def action(
        self, message: Mapping[str, object], timeout: float | None = None, *, until_event: str | None = None
    ) -> Future[ActionResult]:
        """Send an action and return a Future of its ``ActionResult``.

        The future fails with ``ActionError`` (``Response: Error``), ``ActionTimeoutError`` after
        ``timeout`` seconds (default: the ``action_timeout`` option), ``NotConnectedError`` with no
        connection, ``ConnectionLostError`` when the connection closes first, or the refused login's
        ``AuthenticationError``. With ``until_event`` it completes with the first event of that name
        carrying the ActionID, after a successful response. ``cancel()`` stops waiting (a late answer is
        dropped). It is resolved on the reader thread: done-callbacks must be quick and must not block
        on other actions.
        """
        future: Future[ActionResult] = Future()
        return self._tracked(future, message, timeout, until_event)

    def originate(self, channel: str, **options: Any) -> Future[OriginateResult]:
        """Originate a call with ``Async: true``; a Future of its :class:`OriginateResult`, from the
        ``OriginateResponse`` event that carries the action's ActionID. Options: ``exten``, ``context``,
        ``priority`` or ``application`` and ``data``; ``timeout`` (ring timeout, seconds), ``callerid``,
        ``variables`` (a mapping, or "NAME=value" strings), ``account``, ``early_media``, ``codecs``, ``channel_id``,
        ``other_channel_id``, ``action_id``. Fails as ``action()``'s future does; cancelling it cancels
        the action."""
        message = originate_message(channel, **options)
        inner = self.action(message, result_timeout(options.get("timeout")), until_event=ORIGINATE_EVENT)
        outer: Future[OriginateResult] = Future()

        def done(f: Future[ActionResult]) -> None:
            if f.cancelled():
                outer.cancel()
            elif f.exception() is not None:
                if not outer.cancelled():
                    outer.set_exception(f.exception())
            elif not outer.cancelled():
                outer.set_result(OriginateResult.from_result(f.result()))

        inner.add_done_callback(done)
        outer.add_done_callback(lambda f: f.cancelled() and inner.cancel())
        return outer

    def request(self, message: Mapping[str, object], timeout: float | None = 10) -> ActionResult:
        """Send an action and block until its result; raises as ``action()``'s future does.

        Safe to call from an event handler (the dispatch thread keeps the reader unblocked while it
        waits); calling it on the reader thread (a future's done-callback, a login-actions provider)
        raises ``UsageError``.
        """
        if threading.current_thread() is self._reader:
            raise UsageError("request() on the reader thread would wait for itself; use action()")
        seconds = check_timeout(timeout)
        if seconds is None:
            seconds = self.options.action_timeout
        on_dispatcher = threading.current_thread() is self._dispatcher
        if on_dispatcher:
            self._queue.lift_bound()
        try:
            future = self.action(message, seconds)
            try:
                return future.result(None if seconds is None else seconds + _RESULT_GRACE)
            except FutureTimeoutError:  # the reader was held up (a provider, a write): give up here
                future.cancel()
                raise ActionTimeoutError(f"no result within {seconds} s") from None
        finally:
            if on_dispatcher:
                self._queue.restore_bound()
                self._wake()

    def events(self, *names: str, maxsize: int | None = None) -> EventStream:
        """Event frames as a blocking iterator (every event, or those named; ``'Queue*'`` patterns match in
        any case), bounded by ``maxsize`` (default: ``max_queued_frames``): while it is full the client
        stops reading. Ends with ``close()`` or when the client stops; see ``EventStream``."""
        thread = threading.current_thread().name
        buffer = StreamBuffer(
            names, self.options.max_queued_frames if maxsize is None else maxsize, f" in thread {thread!r}"
        )
        stream = EventStream(buffer, self._room, self._stream_closed)
        with self._room:
            self._streams = [*self._streams, stream]
        self._touch()
        return stream

    # -- ending ----------------------------------------------------------------------------------

    def disconnect(self, timeout: float | None = 5.0) -> None:
        """Log off (Asterisk answers Goodbye), close, and do not reconnect.

        What was sent while logging in is written first (the login is waited for, up to ``timeout``);
        what could not be written fails with the reason. Waits up to ``timeout`` seconds for the close
        when called from a thread of the caller's own; from a handler it returns at once. Safe to call
        twice, or before ``connect()``.
        """
        seconds = check_timeout(timeout)
        with self._lock:
            self._core.disconnect(time.monotonic(), seconds)
        self._drain_idle()
        self._wake()
        wait = None if seconds is None else seconds + DISCONNECT_GRACE  # the lifecycle gives up at seconds
        if not self._on_own_thread() and not self._join(wait):
            self.destroy()  # Asterisk did not answer in time: close anyway

    def destroy(self, timeout: float | None = 5.0) -> None:
        """Close the socket at once, without Logoff, and do not reconnect. Safe at any time."""
        seconds = check_timeout(timeout)
        with self._lock:
            self._core.destroy(time.monotonic())
            sock = self._sock
        if sock is not None:  # a write blocked in the kernel returns at once
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._drain_idle()
        self._wake()
        self._join(seconds)

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until the client has stopped for good (after ``disconnect()``, ``destroy()``, a refused
        login or a close without reconnect) and its threads are done; False when ``timeout`` passed first."""
        return self._join(check_timeout(timeout))

    # -- internals -------------------------------------------------------------------------------

    def _submit(
        self,
        message: Mapping[str, object],
        callback: ResponseCallback | None,
        future: Future[ActionResult] | None,
        timeout: object,
        until_event: str | None,
    ) -> str:
        now = time.monotonic()
        try:
            with self._lock:
                self._core.release(now)  # the caller uses the client: what was held for it goes now
                before = self._core.next_deadline()
                action_id = self._core.send(
                    message, now, callback=callback, waiter=future, timeout=timeout, until_event=until_event
                )
                deadline = self._core.next_deadline()
        except NotConnectedError:
            self._emit_soon("ami_socket_unwritable")  # outside the lock: it may run handlers here
            raise
        if deadline != before or callback is not None or future is not None:
            self._wake()  # the reader's wait ends earlier now, or a held frame waits for it
        self._flush(True)
        return action_id

    def _touch(self) -> None:
        with self._lock:
            self._core.release(time.monotonic())
        self._wake()

    def _cancelled(self, future: Future[ActionResult], action_id: str) -> None:
        if future.cancelled():
            with self._lock:
                self._core.cancel(action_id)

    def _stream_closed(self, stream: EventStream) -> None:
        with self._room:
            self._streams = [s for s in self._streams if s is not stream]
            self._room.notify_all()
        self._wake()

    def _on_own_thread(self) -> bool:
        """Called from a handler (dispatch thread) or a done-callback (reader): nothing can be waited for."""
        return threading.current_thread() in (self._reader, self._dispatcher)

    def _join(self, timeout: float | None) -> bool:
        reader, dispatcher = self._reader, self._dispatcher
        if self._on_own_thread():
            return False
        end = None if timeout is None else time.monotonic() + timeout
        for thread in (reader, dispatcher):
            if thread is not None and thread.is_alive():
                thread.join(None if end is None else max(0.0, end - time.monotonic()))
        return not any(t is not None and t.is_alive() for t in (reader, dispatcher))
