"""``AsteriskAmi``: the threaded AMI client.

Threads (paho-mqtt's cut): one *runner* thread per ``connect()`` owns the socket. It connects, logs in,
reads and parses, matches responses to actions, keeps time (action timeouts, keepalive pings) and
reconnects by its ``ReconnectPolicy``. It never runs user code. A *dispatch* thread runs every user
handler and callback in frame order, so a slow handler never stops the socket being read. Writes
come from any thread and are serialised by one lock.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from pyee import EventEmitter

from .actions import ActionResult, ActionTracker, Completion, PendingAction, ResponseCallback
from .dispatch import DispatchQueue
from .errors import (
    ActionError,
    ActionTimeoutError,
    AmiError,
    AuthenticationError,
    ConnectionLostError,
    ConnectTimeoutError,
    InvalidMessageError,
    NotConnectedError,
    ProtocolError,
    UsageError,
)
from .options import AmiOptions
from .protocol import (
    ActionIdGenerator,
    AmiProtocol,
    Frame,
    encode_message,
    find_action_id,
    frame_kind,
    login_message,
    md5_login_message,
)
from .reconnect import ReconnectPolicy

logger = logging.getLogger("asterisk_ami")

DISCONNECTED = "disconnected"
CONNECTING = "connecting"
CONNECTED = "connected"
RECONNECT_WAIT = "reconnect_wait"

_SECRET_KEYS = frozenset({"secret", "key", "password"})
_RECV_BYTES = 65536
_PYEE_EVENTS = frozenset({"error", "new_listener"})
_TICK = 0.25  # the runner wakes at least this often to check timers and stop requests


def redact(message: Mapping[str, object]) -> dict[str, object]:
    """A copy of ``message`` safe to log: secrets replaced by ``***``."""
    return {k: "***" if k.lower() in _SECRET_KEYS else v for k, v in message.items()}


def _enable_debug_logging() -> None:
    if not any(getattr(h, "_asterisk_ami_debug", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s asterisk_ami %(levelname)s %(message)s"))
        handler._asterisk_ami_debug = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


class _Call:
    """A user callback queued for the dispatch thread."""

    __slots__ = ("args", "fn")

    def __init__(self, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args


class _Stop(Exception):
    """Internal: the connection ends; carries how, for the close events."""

    def __init__(self, had_error: bool, auth_failed: bool = False) -> None:
        self.had_error = had_error
        self.auth_failed = auth_failed


class AsteriskAmi(EventEmitter):
    """AMI client. ``AsteriskAmi(host=..., username=..., password=...)`` or ``AsteriskAmi({...})``.

    Emits ``ami_data(frame)`` for every frame, every event frame also under its own name
    (``'Hangup'``), ``ami_login(success, frame)``, and ``ami_socket_drain``, ``ami_socket_error(exc)``,
    ``ami_socket_timeout``, ``ami_socket_end``, ``ami_socket_close(had_error)``,
    ``ami_socket_unwritable``. Handlers run on the dispatch thread.
    """

    def __init__(self, options: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        self._handlers_version = 0  # bumped on every on()/once()/remove: the dispatch thread's snapshot key
        super().__init__()
        self.options = AmiOptions.from_args(options, kwargs)
        if self.options.debug:
            _enable_debug_logging()
        self.banner: str | None = None
        self.protocol_version: str | None = None
        self._ids = ActionIdGenerator()
        self._tracker = ActionTracker()
        self._state = DISCONNECTED
        self._state_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._queue = DispatchQueue(self.options.max_queued_frames)
        self._sock: socket.socket | None = None
        self._prelogin: list[bytes] = []
        self._stop = threading.Event()
        self._stop.set()
        self._generation = 0
        self._active_runs = 0
        self._runner: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None
        self._dispatcher_waiting = 0
        self._on_connect: Callable[[], object] | None = None
        self._on_raw_data: Callable[[bytes], object] | None = None
        self._logoff_deadline: float | None = None
        self._policy = ReconnectPolicy(self.options.reconnect_after, self.options.reconnect_max)
        self._ssl_context = self._make_ssl_context()

    def __repr__(self) -> str:
        o = self.options
        return f"<AsteriskAmi {o.username}@{o.host}:{o.port} {self._state}>"

    # -- public API ------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """'disconnected', 'connecting', 'connected' (logged in) or 'reconnect_wait'."""
        return self._state

    @property
    def connected(self) -> bool:
        """True while logged in."""
        return self._state == CONNECTED

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
            self._generation += 1
            self._active_runs += 1
            self._state = CONNECTING
            self._on_connect = on_connect
            self._on_raw_data = on_raw_data
            self._logoff_deadline = None
            self._policy.reset()
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
        future: Future[ActionResult] = Future()
        future.set_running_or_notify_cancel()
        if timeout is None:
            timeout = self.options.action_timeout
        self._submit(message, None, future, timeout)
        return future

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
            future = self.action(message, timeout)
            try:
                return future.result(None if timeout is None else timeout + _TICK * 4)
            except TimeoutError as exc:
                if isinstance(exc, AmiError):
                    raise
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
            stop = self._stop
            already = stop.is_set()
            stop.set()
            sock = self._sock if self._state == CONNECTED else None
            self._logoff_deadline = time.monotonic() + self.options.logoff_timeout
        if not already and sock is not None:
            data = encode_message({"Action": "Logoff", "ActionID": self._ids()}, self.options.ami_encoding)
            try:
                with self._write_lock:
                    self._write(sock, data)
            except OSError:
                self._shutdown(sock)
        elif not already:
            self._shutdown_current()
        self._join(timeout)

    def destroy(self, timeout: float | None = 5.0) -> None:
        """Close the socket at once, without Logoff, and do not reconnect. Safe at any time."""
        with self._state_lock:
            self._stop.set()
            self._logoff_deadline = None
        self._shutdown_current()
        self._join(timeout)

    # -- sending ---------------------------------------------------------------------------------

    def _submit(
        self,
        message: Mapping[str, object],
        callback: ResponseCallback | None,
        future: Future[ActionResult] | None,
        timeout: float | None,
    ) -> str:
        if not isinstance(message, Mapping):
            raise TypeError(f"an action must be a mapping of header names to values, not {type(message).__name__}")
        msg = dict(message)
        key, action_id = find_action_id(msg)
        if not action_id:
            action_id = self._ids()
            msg[key or "ActionID"] = action_id
        data = encode_message(msg, self.options.ami_encoding)
        entry = None
        if callback is not None or future is not None:
            name = next((str(v) for k, v in msg.items() if k.lower() == "action"), "action")
            deadline = None if timeout is None else time.monotonic() + timeout
            entry = PendingAction(action_id, name, future, callback, deadline)
        with self._write_lock:
            with self._state_lock:
                state, sock = self._state, self._sock
                if state in (CONNECTED, CONNECTING) and entry is not None:
                    if action_id in self._tracker:
                        raise ValueError(f"ActionID {action_id!r} is already waiting for a result")
                    self._tracker.add(entry)
                if state == CONNECTING:
                    self._prelogin.append(data)
                    return action_id
            if state == CONNECTED and sock is not None:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("send %s", redact(msg))
                try:
                    self._write(sock, data)
                    return action_id
                except OSError as exc:
                    logger.debug("write failed: %s", exc)
                    self._shutdown(sock)  # the runner sees it and closes the connection
                    with self._state_lock:
                        self._tracker.remove(action_id)
                    if future is not None:
                        future.set_exception(ConnectionLostError(f"write failed: {exc}"))
                    return action_id
        logger.debug("send with no connection: %s", msg.get(key or "ActionID"))
        self._emit_soon("ami_socket_unwritable")
        if future is not None:
            future.set_exception(NotConnectedError("not connected to Asterisk"))
        return action_id

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

    # -- the runner thread -------------------------------------------------------------------------

    def _run(self, generation: int, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                auth_failed = self._connection(generation, stop)
                if stop.is_set() or not self.options.reconnect:
                    break
                if auth_failed:
                    logger.error("login refused: not reconnecting (fix the credentials and call connect())")
                    break
                delay = self._policy.next_delay()
                self._set_state(generation, RECONNECT_WAIT)
                logger.info("reconnecting in %.3f s (attempt %d)", delay, self._policy.attempt)
                if stop.wait(delay):
                    break
                self._set_state(generation, CONNECTING)
        except Exception:  # a bug of ours: say so loudly rather than die silently
            logger.exception("reader thread crashed")
        finally:
            with self._state_lock:
                if generation == self._generation:
                    self._state = DISCONNECTED
                    stop.set()
                self._active_runs -= 1
            self._queue.put(("stop",))

    def _set_state(self, generation: int, state: str) -> None:
        with self._state_lock:
            if generation == self._generation:
                self._state = state

    def _connection(self, generation: int, stop: threading.Event) -> bool:
        """One connection from TCP connect to close. Returns True when the login was refused."""
        o = self.options
        sock: socket.socket | None = None
        had_error = False
        auth_failed = False
        try:
            logger.debug("connecting to %s:%s", o.host, o.port)
            deadline = time.monotonic() + o.connect_timeout
            sock = socket.create_connection((o.host, o.port), timeout=o.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl_context is not None:
                sock = self._ssl_context.wrap_socket(sock, server_hostname=o.host)
            sock.settimeout(None)
            with self._state_lock:
                if stop.is_set():
                    raise _Stop(False)
                self._sock = sock
            if self._on_connect is not None:
                self._queue.put(("call", _Call(self._on_connect, ())))
            self._read_loop(sock, generation, stop, deadline)
        except _Stop as end:
            had_error, auth_failed = end.had_error, end.auth_failed
        except (TimeoutError, ConnectTimeoutError) as exc:
            logger.warning("timed out: %s", exc)
            self._queue.put(("emit", "ami_socket_timeout", ()))
        except ProtocolError as exc:
            logger.error("protocol error: %s", exc)
            self._queue.put(("emit", "ami_socket_error", (exc,)))
            had_error = True
        except InvalidMessageError as exc:
            # the login itself cannot be written (options are checked up front, so only a bug gets
            # here): report it and stop, as a refused login does, rather than retry forever
            logger.error("cannot log in: %s", exc)
            self._queue.put(("emit", "ami_socket_error", (exc,)))
            had_error = auth_failed = True
        except OSError as exc:
            if not stop.is_set():
                logger.warning("socket error: %s", exc)
                self._queue.put(("emit", "ami_socket_error", (exc,)))
                had_error = True
        finally:
            with self._state_lock:
                self._sock = None
                self._prelogin.clear()
                lost = self._tracker.drain()
            if sock is not None:
                self._shutdown(sock)
                sock.close()
            for entry in lost:
                self._fail(entry, ConnectionLostError("connection to Asterisk closed before the result arrived"))
            self._queue.put(("emit", "ami_socket_close", (had_error,)))
        return auth_failed

    def _read_loop(self, sock: socket.socket, generation: int, stop: threading.Event, deadline: float) -> None:
        o = self.options
        proto = AmiProtocol(o.ami_encoding, o.max_frame_bytes)
        login_id = self._ids()
        challenge_id: str | None = None
        if o.auth == "md5":
            challenge_id = login_id + "c"
            self._write_now(sock, {"Action": "Challenge", "AuthType": "MD5", "ActionID": challenge_id})
        else:
            self._write_now(sock, login_message(o.username, o.password, o.events, login_id))
        logged_in = False
        ping_id: str | None = None
        ping_deadline = 0.0
        last_rx = time.monotonic()
        queue, tracker = self._queue, self._tracker
        is_tls = isinstance(sock, ssl.SSLSocket)
        full = False
        while True:
            now = time.monotonic()
            if stop.is_set() and (self._logoff_deadline is None or now >= self._logoff_deadline):
                raise _Stop(False)
            if not logged_in and now >= deadline:
                raise ConnectTimeoutError(f"no login answer from {o.host}:{o.port} within {o.connect_timeout} s")
            if len(tracker):
                self._expire(now)
            if logged_in and o.ping_interval:
                if ping_id is not None and now >= ping_deadline:
                    raise ConnectTimeoutError(f"no answer to keepalive Ping within {o.ping_timeout} s")
                if ping_id is None and now - last_rx >= o.ping_interval:
                    ping_id = self._ids()
                    ping_deadline = now + o.ping_timeout
                    with self._write_lock:
                        self._write(sock, encode_message({"Action": "Ping", "ActionID": ping_id}))
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
                readable, _, _ = select.select([sock], [], [], _TICK)
                if not readable:
                    continue
                data = sock.recv(_RECV_BYTES)
            full = not is_tls and len(data) == _RECV_BYTES
            if not data:
                if proto.pending_bytes:
                    logger.warning("connection closed inside a frame; %d bytes dropped", proto.pending_bytes)
                if not (stop.is_set() and self._logoff_deadline is None):  # not our own destroy()
                    queue.put(("emit", "ami_socket_end", ()))
                raise _Stop(False)
            last_rx = time.monotonic()
            ping_id = None
            if self._on_raw_data is not None:
                queue.put(("call", _Call(self._on_raw_data, (data,))))
            frames = proto.receive_data(data)
            if self.banner is None and proto.banner is not None:
                self.banner, self.protocol_version = proto.banner, proto.protocol_version
                logger.debug("banner: %s", proto.banner)
            if not frames:
                continue
            if not logged_in:
                frames, logged_in = self._handle_login(sock, frames, login_id, challenge_id, generation)
                if not frames:
                    continue
            batch: list[Any] = frames
            if len(tracker):
                batch = []
                with self._state_lock:
                    completions = [(f, tracker.feed(f)) for f in frames]
                for frame, done in completions:
                    batch.append(frame)
                    if done is not None:
                        self._complete(done, batch)
            self._put_frames(batch, stop)

    def _handle_login(
        self, sock: socket.socket, frames: list[Frame], login_id: str, challenge_id: str | None, generation: int
    ) -> tuple[list[Frame], bool]:
        """Look for the login (and challenge) answers; returns the frames left and whether logged in."""
        o = self.options
        for i, frame in enumerate(frames):
            action_id = frame.get("actionid")
            if frame_kind(frame) != "response":
                continue
            if challenge_id is not None and action_id == challenge_id:
                challenge = frame.get("challenge")
                if not isinstance(challenge, str) or str(frame.get("response")).lower() != "success":
                    self._login_refused(frames[: i + 1], frame, "MD5 challenge refused")
                    raise AssertionError  # unreachable: _login_refused raises
                self._write_now(sock, md5_login_message(o.username, challenge, o.password, o.events, login_id))
            elif action_id == login_id:
                if str(frame.get("response")).lower() != "success":
                    self._login_refused(frames[: i + 1], frame, str(frame.get("message") or "login refused"))
                with self._write_lock:
                    with self._state_lock:
                        if generation == self._generation:
                            self._state = CONNECTED
                        pending, self._prelogin = self._prelogin, []
                    for data in pending:
                        self._write(sock, data)
                self._policy.reset()
                logger.info("logged in to %s:%s as %s", o.host, o.port, o.username)
                self._put_frames(frames[: i + 1])
                self._queue.put(("emit", "ami_login", (True, frame)))
                return frames[i + 1 :], True
        self._put_frames(frames)
        return [], False

    def _put_frames(self, batch: list[Any], stop: threading.Event | None = None) -> None:
        """Hand frames to the dispatch thread in slices the queue bound can hold (one read can bring
        thousands); blocks while the queue is full, which is the back-pressure."""
        size = self.options.max_queued_frames
        if len(batch) <= size:
            self._queue.put(("frames", batch), len(batch), stop)
            return
        for start in range(0, len(batch), size):
            part = batch[start : start + size]
            self._queue.put(("frames", part), len(part), stop)

    def _login_refused(self, frames: list[Frame], frame: Frame, message: str) -> None:
        logger.error("login as %s refused: %s", self.options.username, message)
        self._queue.put(("frames", frames), len(frames))
        self._queue.put(("emit", "ami_login", (False, frame)))
        self._queue.put(("emit", "ami_socket_error", (AuthenticationError(message, frame),)))
        raise _Stop(True, auth_failed=True)

    def _write_now(self, sock: socket.socket, message: Mapping[str, object]) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("send %s", redact(message))
        data = encode_message(message, self.options.ami_encoding)
        with self._write_lock:
            self._write(sock, data)

    def _complete(self, done: Completion, batch: list[Any]) -> None:
        entry = done.entry
        if done.response is not None and entry.callback is not None:
            batch.append(_Call(entry.callback, (done.response,)))
        if entry.future is not None and done.outcome is not None:
            if isinstance(done.outcome, ActionError):
                entry.future.set_exception(done.outcome)
            else:
                entry.future.set_result(done.outcome)

    def _expire(self, now: float) -> None:
        with self._state_lock:
            if self._tracker.next_deadline() is None:
                return
            expired = self._tracker.expire(now)
        for entry in expired:
            self._fail(entry, ActionTimeoutError(f"{entry.name} ({entry.action_id}): no result in time"))

    @staticmethod
    def _fail(entry: PendingAction, exc: AmiError) -> None:
        if entry.future is not None and not entry.future.done():
            entry.future.set_exception(exc)

    def _shutdown(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def _shutdown_current(self) -> None:
        with self._state_lock:
            sock = self._sock
        if sock is not None:
            self._shutdown(sock)

    def _join(self, timeout: float | None) -> None:
        current = threading.current_thread()
        runner, dispatcher = self._runner, self._dispatcher
        if current in (runner, dispatcher):
            return
        end = None if timeout is None else time.monotonic() + timeout
        for thread in (runner, dispatcher):
            if thread is not None and thread.is_alive():
                thread.join(None if end is None else max(0.0, end - time.monotonic()))

    def _make_ssl_context(self) -> ssl.SSLContext | None:
        value = self.options.ssl
        if isinstance(value, ssl.SSLContext):
            return value
        return ssl.create_default_context() if value else None

    # -- the dispatch thread -------------------------------------------------------------------

    def _emit_soon(self, event: str, *args: Any) -> None:
        """Emit on the dispatch thread when it runs, else here and now."""
        with self._state_lock:
            running = self._dispatcher is not None
            if running:  # under the lock, so the dispatch thread cannot exit in between
                self._queue.put(("emit", event, args))
        if not running:
            self.emit(event, *args)

    def _dispatch_loop(self) -> None:
        queue = self._queue
        while True:
            items = queue.get_all(1.0)
            for item in items:
                kind = item[0]
                try:
                    if kind == "frames":
                        self._deliver(item[1])
                        queue.release(item[2] if len(item) > 2 else len(item[1]))
                    elif kind == "emit":
                        self.emit(item[1], *item[2])
                    elif kind == "call":
                        self._run_call(item[1])
                except Exception:
                    logger.exception("dispatch failed")
            with self._state_lock:
                if self._active_runs == 0 and not len(queue):
                    self._dispatcher = None
                    return

    def _deliver(self, batch: list[Any]) -> None:
        # The handler lists are snapshotted once per batch (and again only when a handler is added or
        # removed), not per frame as pyee's emit() does: that costs a lock and two allocations a frame.
        identifier = self.options.identifier
        version = -1
        on_data: tuple[Callable[..., Any], ...] = ()
        named: dict[str, tuple[Callable[..., Any], ...]] = {}
        failed = self._handler_failed
        for frame in batch:
            if frame.__class__ is _Call:
                self._run_call(frame)
                continue
            if version != self._handlers_version:
                version = self._handlers_version
                on_data, named = self._snapshot_handlers()
            if identifier is not None:
                frame["identifier"] = identifier
            for f in on_data:
                try:
                    f(frame)
                except Exception as exc:
                    failed(f, exc)
            if named:
                event = frame.get("event")
                if event.__class__ is str and event in named:
                    for f in named[event]:
                        try:
                            f(frame)
                        except Exception as exc:
                            failed(f, exc)

    def _snapshot_handlers(self) -> tuple[tuple[Callable[..., Any], ...], dict[str, tuple[Callable[..., Any], ...]]]:
        """``ami_data`` handlers, and handlers by Asterisk event name (never the library's or pyee's own
        names: a server sending ``Event: ami_login`` or ``Event: error`` must not reach those handlers)."""
        with self._lock:
            events = self._events
            on_data = tuple(events["ami_data"].values()) if "ami_data" in events else ()
            named = {
                name: tuple(handlers.values())
                for name, handlers in events.items()
                if handlers and not name.startswith("ami_") and name not in _PYEE_EVENTS
            }
        return on_data, named

    # pyee calls these for on(), once(), remove_listener() and remove_all_listeners()
    def _add_event_handler(self, event: str, k: Callable[..., Any], v: Callable[..., Any]) -> None:
        super()._add_event_handler(event, k, v)
        self._handlers_version += 1

    def _remove_listener(self, event: str, f: Callable[..., Any]) -> None:
        super()._remove_listener(event, f)
        self._handlers_version += 1

    def remove_all_listeners(self, event: str | None = None) -> None:
        super().remove_all_listeners(event)
        self._handlers_version += 1

    def _run_call(self, call: _Call) -> None:
        try:
            call.fn(*call.args)
        except Exception as exc:
            self._handler_failed(call.fn, exc)

    def _emit_run(self, f: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # pyee runs handlers one after another; a raising handler must not stop the others or a thread
        try:
            f(*args, **kwargs)
        except Exception as exc:
            self._handler_failed(f, exc)

    def _handler_failed(self, f: Callable[..., Any], exc: Exception) -> None:
        logger.error("handler %r raised", getattr(f, "__qualname__", f), exc_info=exc)
        if "error" in self._events and f not in self._events["error"]:
            self.emit("error", exc)
