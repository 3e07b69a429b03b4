"""The threaded client's reader thread (mixed into ``AsteriskAmi``): it moves bytes, nothing more.

One reader thread per ``connect()`` until the client stops. It opens the connections the lifecycle asks
for, feeds it what it reads, writes what it wants written, waits in ``select`` until data, a wake-up (a
socketpair another thread writes to) or the lifecycle's next deadline, and hands frames to the dispatch
thread and the ``events()`` streams. It runs no handler; it settles action futures (their done-callbacks
run here) and calls the login-actions providers, both outside every lock of the client.

Locks: ``_lock`` guards the lifecycle (not thread-safe); ``_write_lock`` makes one writer at a time and is
taken before ``_lock``; ``_room`` is the condition of the dispatch queue and the streams. No user code
runs while any of them is held.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ..actions import ActionDone
from ..backpressure import BlockWatch
from ..errors import WriteTimeoutError
from ..handlers import Call, HandlerTable, handler_name
from ..lifecycle import ClientLifecycle
from ..logs import ConnectionLog
from ..options import AmiOptions
from ..protocol import Frame
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
from ..shell import settle
from ..streams import offer_all
from .dispatch import Deliver, DispatchQueue, Emit, Item, Stop
from .stream import EventStream
from .transport import Aborted, Wake, open_socket, write_all

_RECV_BYTES = 65536


class _Run:
    """One reader thread's own things: its wake-up socketpair, and whether it must stop now."""

    def __init__(self) -> None:
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self.wake_w.send(b"\0")

    def drain_wakes(self) -> None:
        with contextlib.suppress(OSError):
            self.wake_r.recv(4096)

    def close(self) -> None:
        self.wake_r.close()
        self.wake_w.close()


class Reader:
    """The reader thread's loop and what it does with the lifecycle's events."""

    options: AmiOptions
    _core: ClientLifecycle
    _log: ConnectionLog
    _handlers: HandlerTable
    _watch: BlockWatch
    _lock: threading.Lock
    _write_lock: threading.Lock
    _state_lock: threading.Lock
    _room: threading.Condition
    _queue: DispatchQueue
    _pending: deque[Item]  # read, waiting for room in the queue (the reader's own)
    _streams: list[EventStream]
    _ssl_context: ssl.SSLContext | None
    _sock: socket.socket | None
    _run_now: _Run | None
    _active_runs: int
    _flush_wanted: bool
    _connect_waiters: list[Future[None]]
    _on_connect: Callable[[], object] | None
    _on_raw_data: Callable[[bytes], object] | None
    _run_login_providers: Callable[[], list[Any]]
    _server_closed: Callable[[float], None]
    _emit_soon: Callable[..., None]  # DispatchThread's

    # -- writing (any thread) --------------------------------------------------------------------

    def _flush(self, blocking: bool = True) -> None:
        """Write what the lifecycle has for the socket. A thread that finds another writing leaves its
        bytes to it (``blocking=False``: the reader, which must not wait to read) or waits its turn."""
        lock = self._write_lock
        if not lock.acquire(blocking):
            with self._lock:
                self._flush_wanted = True
            if not lock.acquire(False):
                return  # the writer sees _flush_wanted once it lets go, and writes these bytes too
        try:
            while True:
                with self._lock:
                    self._flush_wanted = False
                    sock = self._sock
                    data = self._core.data_to_send() if sock is not None else b""
                if not data or sock is None:
                    return
                try:
                    if write_all(sock, data):
                        self._emit_soon("ami_socket_drain")
                except OSError as exc:  # TimeoutError past write_timeout: Asterisk stopped reading
                    error = self._write_failed(sock, exc)
                    if error is not None:
                        raise error from None
                    return
        finally:
            lock.release()
            with self._lock:
                again = self._flush_wanted and self._sock is not None
            if again:
                self._flush(False)

    def _write_failed(self, sock: socket.socket, exc: OSError) -> WriteTimeoutError | None:
        """A write failed: the connection ends. Returns the error for the writer to raise (a write that
        timed out; a reset is the reader's to report)."""
        now = time.monotonic()
        error = self._core.write_timeout_error() if isinstance(exc, TimeoutError) else None
        with self._lock:
            if error is not None:
                self._core.write_failed(error, now)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # the reader sees it and ends the connection
        self._wake()
        return error

    def _wake(self) -> None:
        """Make the reader look again: a deadline changed, something was released, or it must stop."""
        run = self._run_now
        if run is not None:
            run.wake()
        with self._room:
            self._room.notify_all()

    # -- the reader thread -------------------------------------------------------------------------

    def _reader_main(self, run: _Run) -> None:
        try:
            self._read_loop(run)
        except Exception:  # a bug of ours: say so loudly rather than die silently
            self._log.exception("reader thread crashed")
            with self._lock:
                self._core.destroy(time.monotonic())
                if self._sock is not None:
                    self._close_socket()
                    self._core.connection_lost(None, time.monotonic())
                events = self._core.events_received()
            self._act(events, run)
        finally:
            with self._state_lock:
                self._active_runs -= 1
                if self._run_now is run:
                    self._run_now = None
            run.close()
            self._move_pending(all_of_it=True)  # read is never dropped: the dispatch thread gets it all
            self._queue.put(Stop())

    def _read_loop(self, run: _Run) -> None:
        core, lock = self._core, self._lock
        full = False  # the last read filled the buffer: more is almost surely waiting
        reading = True
        while True:
            with lock:
                events = core.events_received()
            if events:
                if self._act(events, run):
                    return
                continue
            with contextlib.suppress(OSError):
                self._flush(False)
            now = time.monotonic()
            with lock:
                sock = self._sock
                if core.close_expected:
                    if sock is not None:
                        self._close_socket()
                    core.connection_lost(None, now)
                    continue
                deadline = core.next_deadline()
                if deadline is not None and now >= deadline:
                    core.handle_timeout(now)
                    continue
                room = not core.holding
            room = room and self._has_room()
            if room != reading:
                reading = room
                self._reading_changed(room, now)
            if not room:
                self._wait_for_room(deadline)
                continue
            if sock is None:
                self._select(run, None, deadline)
                continue
            is_tls = isinstance(sock, ssl.SSLSocket)
            try:
                if is_tls and sock.pending():  # type: ignore[attr-defined]
                    data = sock.recv(_RECV_BYTES)  # decrypted bytes already buffered: no select() needed
                elif full:
                    try:
                        data = sock.recv(_RECV_BYTES, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        full = False
                        continue
                else:
                    if not self._select(run, sock, deadline):
                        continue
                    data = sock.recv(_RECV_BYTES)
            except OSError as exc:  # reset, TLS error
                with lock:
                    if self._sock is sock:
                        self._close_socket()
                        core.connection_lost(None if core.close_expected else exc, time.monotonic())
                continue
            full = not is_tls and len(data) == _RECV_BYTES
            now = time.monotonic()
            with lock:
                if not data:
                    core.receive_eof(now)
                else:
                    core.receive_data(data, now)
            if data and self._on_raw_data is not None:
                self._put(Call(self._on_raw_data, (data,)))

    def _select(self, run: _Run, sock: socket.socket | None, deadline: float | None) -> bool:
        """Wait for data, a wake-up or the deadline; True when ``sock`` is readable."""
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        watch = [run.wake_r] if sock is None else [sock, run.wake_r]
        readable, _, _ = select.select(watch, [], [], timeout)
        if run.wake_r in readable:
            run.drain_wakes()
        return sock is not None and sock in readable

    def _has_room(self) -> bool:
        """The consumers have room: every item read went into the queue, and no stream is full."""
        self._move_pending()
        return not self._pending and not any(s.buffer.full for s in self._streams)

    def _put(self, item: Item) -> None:
        """An item for the dispatch thread: into the queue if it fits, else it waits here, in order."""
        if isinstance(item, Deliver) and item.size > self._queue.max_frames:
            size = self._queue.max_frames  # one read can bring thousands: slices the bound can hold
            for start in range(0, item.size, size):
                self._put(Deliver(item.items[start : start + size]))
            return
        if self._pending or not self._queue.fits(item):
            self._pending.append(item)
        else:
            self._queue.put(item)

    def _move_pending(self, all_of_it: bool = False) -> None:
        pending, queue = self._pending, self._queue
        while pending and (all_of_it or queue.fits(pending[0])):
            queue.put(pending.popleft())

    def _reading_changed(self, reading: bool, now: float) -> None:
        """The reader stops (or resumes) reading for its consumers: keepalive waits, the watch counts."""
        with self._lock:
            self._core.set_reading(not reading, now)
        if reading:
            self._watch.unblock(now)
        else:
            self._watch.block(now)

    def _wait_for_room(self, deadline: float | None) -> None:
        """Wait until the consumers make room, the lifecycle's deadline, a wake-up, or the next look of the
        slow-handler watch; then the loop looks again."""
        now = time.monotonic()
        watch = self._watch
        f, busy = self._handlers.running()
        full = [s.buffer.label for s in self._streams if s.buffer.full]
        name = handler_name(f) if f is not None and self._pending else " and ".join(full) or None
        message = watch.check(now, name, busy if f is not None else watch.episode_seconds(now))
        if message:
            self._log.warning(message)
        due = watch.next_check(now)
        waits = [d for d in (deadline, due) if d is not None]
        timeout = None if not waits else max(0.001, min(waits) - now)
        if due is not None:  # look a few times before the warning is due, to see which handler holds it
            timeout = min(timeout or 1.0, max(0.001, (watch.threshold or 0.05) / 4))
        with self._room:
            if not self._has_room():
                self._room.wait(timeout)

    def _close_socket(self) -> None:
        """Close the socket (the caller holds ``_lock``)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _open(self, run: _Run) -> None:
        """The lifecycle wants a connection: open it (a destroy() wakes this up), or report why not."""
        o = self.options
        with self._lock:
            session = self._core.session
            deadline = session.next_deadline() if session is not None else None
        self._log.debug("connecting")
        error: BaseException | None = None
        sock = None
        try:
            wake = Wake(run.wake_r, lambda: self._core.session is not session or self._core.close_expected)
            sock = open_socket(
                o.address, deadline or time.monotonic() + o.connect_timeout, wake, self._ssl_context, o.write_timeout
            )
        except Aborted:
            run.wake()  # the loop's select sees it again
        except (OSError, ssl.SSLError) as exc:  # refused, unreachable, TLS, TimeoutError
            error = exc
        with self._lock:
            if sock is not None and self._core.session is session and not self._core.close_expected:
                self._sock = sock
                sock = None
                opened = True
            else:
                opened = False
                if self._core.session is session:
                    self._core.connection_lost(error, time.monotonic())
        if sock is not None:
            sock.close()
        if opened:
            if self._on_connect is not None:
                self._put(Call(self._on_connect, ()))
            with contextlib.suppress(OSError):
                self._flush(False)

    def _drain_idle(self) -> None:
        """With no reader running, act on what the lifecycle has (a stop: streams end, waiters fail) here."""
        with self._state_lock:
            if self._active_runs:
                return
            with self._lock:
                events = self._core.events_received()
        if events:
            self._act(events, None)

    def _act(self, events: list[Event], run: _Run | None) -> bool:
        """The lifecycle's events, in order: futures settled, frames and the library's events to the dispatch
        thread and the streams. Returns True once the client has stopped."""
        batch: list[Frame | Call] | None = None
        put = self._put
        stopped = False
        for event in events:
            if isinstance(event, FramesReceived):
                frames: list[Any] = event.frames
                if self._streams:
                    with self._room:
                        offer_all([s.buffer for s in self._streams], frames)
                        self._room.notify_all()
                if batch is None:
                    batch = list(frames)
                else:
                    batch.extend(frames)
                continue
            if isinstance(event, ActionDone):
                call = settle(event)
                if call is not None:
                    if batch is None:
                        batch = []
                    batch.append(call)
                continue
            if batch:
                put(Deliver(batch))
            batch = None
            if isinstance(event, OpenTransport):
                assert run is not None  # only start() asks for one, and it starts a reader
                self._open(run)
            elif isinstance(event, LoginActionsWanted):
                actions = self._run_login_providers()
                with self._lock:
                    self._core.login_actions(actions, time.monotonic())
            elif isinstance(event, ConnectResult):
                self._settle_connect(event.error)
            elif isinstance(event, ServerClosed):
                self._server_closed(time.monotonic())
            elif isinstance(event, Closed):
                with self._lock:
                    self._close_socket()
                if self._watch.blocked:
                    self._watch.unblock(time.monotonic())
            elif isinstance(event, Stopped):
                stopped = True
                self._end_streams()
            for name, args in library_events(event):
                put(Emit(name, args))
        if batch:
            put(Deliver(batch))
        return stopped

    def _settle_connect(self, error: BaseException | None) -> None:
        with self._state_lock:
            waiters, self._connect_waiters = self._connect_waiters, []
        for waiter in waiters:
            if not waiter.done():
                with contextlib.suppress(Exception):
                    if error is None:
                        waiter.set_result(None)
                    else:
                        waiter.set_exception(error)

    def _end_streams(self) -> None:
        for stream in list(self._streams):
            stream.close()
