"""``FakeSession``'s connection: writing (any thread), closing, and the thread that reads and answers."""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..filters import FilterSet
from ..protocol import AmiProtocol, Frame
from ._actions import SessionActions
from ._reader import _ActionReader, _Message
from ._wire import EVENT_ALL, _encode_items, _mask_to_str, _with_line_end

if TYPE_CHECKING:
    from ._server import FakeAsterisk

logger = logging.getLogger("asterisk_ami.testing")  # not __name__: the one name tests and users filter on

_RECV_BYTES = 65536
_WRITER_GRACE = 0.5  # seconds a closing connection waits for a blocked writer before shutting the socket
_DRAIN_LIMIT = 1 << 20


class FakeSession(SessionActions):
    """One client connection to a :class:`FakeAsterisk`.

    Attributes: ``username`` (as given at login, or None), ``logged_in``, ``event_mask`` (int; see
    :attr:`events_on`), ``actions`` (the frames this client sent, in order), ``peer`` (its address).
    """

    def __init__(self, server: FakeAsterisk, sock: socket.socket, peer: object, number: int) -> None:
        self.server = server
        self.peer = peer
        self.number = number
        self.username: str | None = None
        self.logged_in = False
        self.event_mask = EVENT_ALL
        self.read_mask = EVENT_ALL  # the account's read classes, from the login on
        self.filters = FilterSet()  # what Action: Filter added, applied to push_event() as Asterisk does
        self.actions: list[Frame] = []
        self._announced = False  # login counted, its answer on the way: what wait_for_clients waits for
        self.connected_at = time.monotonic()
        self._sock = sock
        self._wlock = threading.Lock()
        self._close_lock = threading.Lock()
        self._closing = threading.Event()
        self._closed = False
        self._rst = False
        self._challenge: str | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._protocol = AmiProtocol(server.encoding)
        self._thread = threading.Thread(
            target=self._run, name=f"fake-asterisk-session-{server.port}-{number}", daemon=True
        )

    def __repr__(self) -> str:
        state = "logged in" if self.logged_in else "closed" if self._closed else "connected"
        return f"<FakeSession #{self.number} {self.username or '-'} {state} peer={self.peer}>"

    @property
    def events_on(self) -> bool | str:
        """True (all event classes), False (events off) or the event-class mask, e.g. ``'system,call'``."""
        mask = self.event_mask
        if mask == 0:
            return False
        if mask & EVENT_ALL == EVENT_ALL:
            return True
        return _mask_to_str(mask)

    @property
    def closed(self) -> bool:
        """True once the connection is closed."""
        return self._closed

    # -- writing (any thread) ---------------------------------------------------------------------

    def send_raw(self, data: bytes) -> bool:
        """Write ``data`` verbatim; False when the connection is closed or the write failed."""
        with self._wlock:
            return self._write_locked(data)

    def send_frame(self, frame: Mapping[str, object]) -> bool:
        """Write one frame (header names as written; list values repeat the header)."""
        return self._send(_encode_items(frame.items(), self.server.encoding))

    def _send(self, data: bytes) -> bool:
        """Write rendered bytes, with the server's ``line_end``."""
        return self.send_raw(_with_line_end(data, self.server.line_end))

    def _write_locked(self, data: bytes | memoryview) -> bool:
        if self._closed or self._closing.is_set():
            return False
        try:
            self._sock.sendall(data)
            return True
        except OSError as exc:
            logger.debug("session #%d: write failed: %s", self.number, exc)
            self.close()
            return False

    def _send_if_logged_in(
        self, data: bytes, category: int | None = None, event: tuple[str, list[tuple[str, str]]] | None = None
    ) -> bool:
        """Write when logged in (and, for an event of class ``category``, when events allow it; for an
        ``event`` (its name and headers), when the session's filters let it through)."""
        with self._wlock:
            if not self.logged_in:
                return False
            if category is not None:
                mask = self.event_mask
                if mask == 0 or (category and mask & category != category):
                    return False
            filters = self.filters
            if event is not None and filters and not filters.allows(*event, data.decode(self.server.encoding)):
                return False
            return self._write_locked(data)

    # -- closing (any thread) -----------------------------------------------------------------------

    def close(self, rst: bool = False) -> None:
        """Ask the session to close its connection (``rst``: with SO_LINGER 0, so the client gets RST).

        Returns at once; :meth:`wait_closed` waits for it.
        """
        if rst:
            self._rst = True
        self._closing.set()
        with self._close_lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    self._wake_w.send(b"x")
        with self.server._cond:
            self.server._cond.notify_all()

    def wait_closed(self, timeout: float | None = 5.0) -> bool:
        """Wait until the session's thread has closed the connection; True if it has."""
        if threading.current_thread() is self._thread:
            return self._closed
        if not self._thread.is_alive():
            return True
        end = None if timeout is None else time.monotonic() + timeout
        self._thread.join(_WRITER_GRACE if timeout is None else min(_WRITER_GRACE, timeout))
        if self._thread.is_alive():
            self._force_shutdown()  # a write blocked on a client that does not read
            self._thread.join(None if end is None else max(0.0, end - time.monotonic()))
        return not self._thread.is_alive()

    def _force_shutdown(self) -> None:
        with self._close_lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)

    # -- the session thread ------------------------------------------------------------------------

    def _start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            self._serve()
        except OSError as exc:
            logger.debug("session #%d: %s", self.number, exc)
        except Exception:
            logger.exception("session #%d crashed", self.number)
        finally:
            self._teardown()

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; True when the session is closing (stop at once)."""
        return seconds > 0 and self._closing.wait(seconds)

    def _wait_running(self) -> bool:
        """Block while the server is stalled; False when the session is closing."""
        cond = self.server._cond
        with cond:
            while self.server._stalled and not self._closing.is_set():
                cond.wait()
        return not self._closing.is_set()

    def _serve(self) -> None:
        srv = self.server
        if self._sleep(srv.banner_delay) or not self._wait_running():
            return
        if srv.banner is not None:
            self.send_raw(f"{srv.banner}{srv.line_end}".encode(srv.encoding))
        reader = _ActionReader()
        pending: deque[_Message] = deque()
        selector = selectors.DefaultSelector()
        try:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            auth_deadline = None if srv.authtimeout is None else self.connected_at + srv.authtimeout
            while True:
                while pending:
                    if not self._wait_running():
                        return
                    if not self._handle(pending.popleft()):
                        return
                if not self._wait_running():
                    return
                timeout = None
                if auth_deadline is not None and not self.logged_in:
                    timeout = auth_deadline - time.monotonic()
                    if timeout <= 0:
                        logger.info("session #%d: failed to authenticate in %s seconds", self.number, srv.authtimeout)
                        return
                ready = selector.select(timeout)
                if self._closing.is_set():
                    return
                if not ready:
                    continue
                data = self._sock.recv(_RECV_BYTES)
                if not data:
                    logger.debug("session #%d: client closed the connection", self.number)
                    return
                pending.extend(reader.feed(data))
        finally:
            selector.close()

    def _teardown(self) -> None:
        if not self._wlock.acquire(timeout=_WRITER_GRACE):
            self._force_shutdown()  # unblock a writer stuck on a client that does not read
            self._wlock.acquire()
        try:
            with self._close_lock:
                self._closed = True
                sock = self._sock
                try:
                    if self._rst:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    else:
                        sock.shutdown(socket.SHUT_WR)
                        _drain(sock)  # unread input would turn close() into a RST
                except OSError:
                    pass
                sock.close()
                self._wake_r.close()
                self._wake_w.close()
        finally:
            self._wlock.release()
        self._closing.set()
        self.server._session_gone(self)


def _drain(sock: socket.socket) -> None:
    sock.setblocking(False)
    total = 0
    try:
        while total < _DRAIN_LIMIT:
            chunk = sock.recv(_RECV_BYTES)
            if not chunk:
                return
            total += len(chunk)
    except OSError:
        return
