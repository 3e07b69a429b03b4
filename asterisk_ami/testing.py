"""``FakeAsterisk``: a real AMI server on the loopback interface, for tests and benchmarks.

It speaks the bytes Asterisk 22's ``main/manager.c`` writes (see ``tests/data/asterisk22-session.bin``),
so a client under test cannot tell it from a real server for everything it implements::

    from asterisk_ami import AsteriskAmi
    from asterisk_ami.testing import EventList, FakeAsterisk

    with FakeAsterisk(accounts={"admin": "secret"}) as fake:
        ami = AsteriskAmi(host=fake.host, port=fake.port, username="admin", password="secret")
        ami.connect()
        fake.wait_for_clients(1, timeout=5)
        fake.respond("CoreShowChannels", EventList([{"Channel": "PJSIP/100-0001"}],
                                                   "CoreShowChannelsComplete", event="CoreShowChannel"))
        fake.push_event("Hangup", Channel="PJSIP/100-0001", Cause="16")

Built in, as Asterisk does them: the banner, ``Login`` (plain ``Secret`` and MD5 ``Challenge``/``Key``),
``Logoff``, ``Ping``, ``Events``, ``Filter`` (both syntaxes, applied to :meth:`~FakeAsterisk.push_event` as
Asterisk applies them), ``Command`` (outputs registered with :meth:`FakeAsterisk.respond_command`),
``Permission denied`` before login, ``Invalid/unknown command`` for anything else, and the parse errors
(a line over 1024 bytes, more than 128 header lines, no ``Action``). Every other action is answered by
what :meth:`FakeAsterisk.respond` registered.

Threads: one accept thread and one thread per connection, which reads, parses and answers that
connection's actions in order, like Asterisk's ``session_do``. Writes (answers, :meth:`~FakeAsterisk.push_event`,
:meth:`~FakeAsterisk.push_raw`, :meth:`~FakeAsterisk.replay`) go out whole with ``sendall`` under a
per-connection lock, so frames never interleave; pushes run on the caller's thread and block while a
client does not read (unlike Asterisk, which drops such a client after ``writetimeout``). A client that
vanishes only ends its own connection. Nothing is printed: logs go to the ``asterisk_ami.testing`` logger.
Only the standard library, :mod:`asterisk_ami.protocol` (to parse the clients' actions) and
:mod:`asterisk_ami.filters` are used.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeAlias

from .errors import ProtocolError
from .filters import FilterSet
from .protocol import AmiProtocol, Frame

__all__ = [
    "CommandOutput",
    "EventList",
    "FakeAsterisk",
    "FakeSession",
    "Reply",
    "Responder",
    "encode_frame",
    "recorded_frames",
    "render_reply",
    "strings_to_mask",
]

logger = logging.getLogger("asterisk_ami.testing")

#: Asterisk reads into ``inbuf[1025]``: a line whose LF is at offset 1024 or later is too long.
MAX_LINE_BYTES = 1024
#: ``AST_MAX_MANHEADERS``
MAX_HEADERS = 128
_RECV_BYTES = 65536
_WRITER_GRACE = 0.5  # seconds a closing connection waits for a blocked writer before shutting the socket
_DRAIN_LIMIT = 1 << 20

# Event classes (``manager.h`` EVENT_FLAG_*), in Asterisk's ``perms[]`` order.
_PERMS: tuple[tuple[str, int], ...] = (
    ("system", 1 << 0),
    ("call", 1 << 1),
    ("log", 1 << 2),
    ("verbose", 1 << 3),
    ("command", 1 << 4),
    ("agent", 1 << 5),
    ("user", 1 << 6),
    ("config", 1 << 7),
    ("dtmf", 1 << 8),
    ("reporting", 1 << 9),
    ("cdr", 1 << 10),
    ("dialplan", 1 << 11),
    ("originate", 1 << 12),
    ("agi", 1 << 13),
    ("cc", 1 << 15),
    ("aoc", 1 << 16),
    ("test", 1 << 17),
    ("security", 1 << 18),
    ("message", 1 << 19),
)
EVENT_SYSTEM = 1
#: ``all``: INT_MAX, as in Asterisk
EVENT_ALL = 0x7FFFFFFF
_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE = frozenset({"no", "false", "n", "f", "0", "off"})
_BLANKS = bytes(range(1, 33))  # ast_skip_blanks skips every byte below '!'


def strings_to_mask(value: str) -> int:
    """Asterisk's ``strings_to_mask``: ``Events:``/``EventMask:`` text to an event-class mask.

    Empty: -1 (leave the mask as it is; ``Action: Events`` answers ``Invalid event mask``). Digits: that
    number. ``on``/``yes``/``true``…: every class. ``off``/``no``/``false``…: 0. Otherwise a comma list of
    class names (``system,call``), compared exactly as Asterisk does (case-sensitive; unknown names count 0).
    """
    if not value:
        return -1
    if value.isdigit() and value.isascii():
        return int(value) & 0xFFFFFFFF
    low = value.lower()
    if low in _FALSE:
        return 0
    if low in _TRUE:
        return EVENT_ALL
    words = value.split(",")
    mask = 0
    for name, bit in _PERMS:
        if name in words:
            mask |= bit
    if "all" in words:
        mask |= EVENT_ALL
    return mask


def _mask_to_str(mask: int) -> str:
    names = [name for name, bit in _PERMS if mask & bit]
    return ",".join(names) if names else "none"


def _privilege_mask(items: Iterable[tuple[str, object]]) -> int:
    """The event class of an event frame, from its ``Privilege:`` header (0 when it has none)."""
    for key, value in items:
        if key.lower() == "privilege" and isinstance(value, str):
            words = value.split(",")
            return sum(bit for name, bit in _PERMS if name in words)
    return 0


# -- rendering frames ---------------------------------------------------------------------------------

HeaderItems: TypeAlias = list[tuple[str, object]]


def _encode_value(value: object, encoding: str) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode(encoding, "surrogateescape")


def _encode_items(items: Iterable[tuple[str, object]], encoding: str = "utf-8") -> bytes:
    """``Key: value\\r\\n`` per header (list/tuple values repeat the header, None ones are left out),
    then the empty line. Values are written as given: no escaping, no length limit."""
    out = bytearray()
    for key, value in items:
        if value is None:
            continue
        name = key.encode(encoding, "surrogateescape")
        values = value if isinstance(value, list | tuple) else (value,)
        for item in values:
            if item is None:
                continue
            out += name + b": " + _encode_value(item, encoding) + b"\r\n"
    out += b"\r\n"
    return bytes(out)


def encode_frame(frame: Mapping[str, object], encoding: str = "utf-8") -> bytes:
    """The bytes of one frame as the fake writes it: ``Key: value\\r\\n`` per header, then ``\\r\\n``.

    List or tuple values repeat the header; None values are left out; bytes values are written as they
    are. Nothing is escaped or checked. Handy to build big blobs for :meth:`FakeAsterisk.push_raw`
    (``encode_frame({...}) * 100_000``) when per-event calls would be the bottleneck.
    """
    return _encode_items(frame.items(), encoding)


def _with_action_id(items: HeaderItems, action_id: str | None) -> HeaderItems:
    """Echo ``action_id`` into a frame the way Asterisk places it: right after the first header.

    A frame that already has an ``ActionID`` key keeps it where it is; its value is kept, except
    ``None``, which is a placeholder for the action's ActionID (left out when the action had none).
    """
    items = list(items)
    for i, (key, value) in enumerate(items):
        if key.lower() == "actionid":
            if value is None:
                if action_id:
                    items[i] = (key, action_id)
                else:
                    del items[i]
            return items
    if action_id:
        items.insert(1 if items else 0, ("ActionID", action_id))
    return items


def _id_items(action_id: str | None) -> HeaderItems:
    return [("ActionID", action_id)] if action_id else []


@dataclass(frozen=True)
class EventList:
    """A list action's answer, byte for byte as Asterisk 22 writes it (``astman_send_listack`` and
    ``astman_send_list_complete``)::

        Response: Success / ActionID / EventList: start / Message: <message>
        <each event, with ActionID after its first header>
        Event: <complete_event> / ActionID / EventList: Complete / ListItems: <N> / <complete_headers>

    ``event`` names the items that have no ``Event`` key. ``items`` overrides ``ListItems`` (default:
    the number of events); ``list_flag`` is ``start`` (``res_fax`` writes ``Start``).
    """

    events: Sequence[Mapping[str, object]]
    complete_event: str
    message: str | None = "Results will follow"
    event: str | None = None
    list_flag: str = "start"
    complete_headers: Mapping[str, object] = field(default_factory=dict)
    items: int | None = None

    def render(self, action_id: str | None, encoding: str = "utf-8") -> bytes:
        """The bytes answering an action whose ActionID is ``action_id`` (None: it had none)."""
        start: HeaderItems = [("Response", "Success"), *_id_items(action_id), ("EventList", self.list_flag)]
        if self.message is not None:
            start.append(("Message", self.message))
        parts = [_encode_items(start, encoding)]
        for event in self.events:
            items: HeaderItems = list(event.items())
            if self.event is not None and not any(k.lower() == "event" for k, _ in items):
                items.insert(0, ("Event", self.event))
            parts.append(_encode_items(_with_action_id(items, action_id), encoding))
        count = len(self.events) if self.items is None else self.items
        end: HeaderItems = [
            ("Event", self.complete_event),
            *_id_items(action_id),
            ("EventList", "Complete"),
            ("ListItems", count),
            *self.complete_headers.items(),
        ]
        parts.append(_encode_items(end, encoding))
        return b"".join(parts)


@dataclass(frozen=True)
class CommandOutput:
    """The answer to ``Action: Command``: CLI output ``output`` (lines end in ``\\n``).

    Asterisk 14 and later (default)::

        Response: Success (Error when success is False) / ActionID / Message: Command output follows
        Output: <line>            one per line, after one trailing newline is removed

    ``legacy=True`` gives the pre-14 form, the body written verbatim (end it with ``\\n`` for the usual
    layout; without one the marker follows the text on the same line, as some servers did)::

        Response: Follows / Privilege: Command / ActionID / <output>--END COMMAND--
    """

    output: str
    legacy: bool = False
    success: bool = True

    def render(self, action_id: str | None, encoding: str = "utf-8") -> bytes:
        """The bytes answering a Command action whose ActionID is ``action_id``."""
        if self.legacy:
            head = _encode_items([("Response", "Follows"), ("Privilege", "Command"), *_id_items(action_id)], encoding)
            return head[:-2] + self.output.encode(encoding, "surrogateescape") + b"--END COMMAND--\r\n\r\n"
        text = self.output[:-1] if self.output.endswith("\n") else self.output
        items: HeaderItems = [
            ("Response", "Success" if self.success else "Error"),
            *_id_items(action_id),
            ("Message", "Command output follows"),
            ("Output", text.split("\n")),
        ]
        return _encode_items(items, encoding)


ReplyItem: TypeAlias = Mapping[str, object] | bytes | EventList | CommandOutput
#: What answers an action: a frame (a mapping of header names as written to values), raw bytes sent
#: verbatim, an :class:`EventList`, a :class:`CommandOutput`, a list or tuple of those (sent in order),
#: or None: no answer at all.
Reply: TypeAlias = ReplyItem | list[ReplyItem] | tuple[ReplyItem, ...] | None
#: ``responder(action_frame, session)`` computes the reply when the action arrives. It runs on the
#: session's thread; ``action_frame`` has lower-cased keys as :class:`~asterisk_ami.protocol.AmiProtocol` gives.
Responder: TypeAlias = Callable[[Frame, "FakeSession"], Reply]


def render_reply(reply: object, action_id: str | None, encoding: str = "utf-8", line_end: str = "\r\n") -> bytes:
    """The bytes for ``reply`` (see :data:`Reply`) answering an action with ``action_id``.

    ``line_end="\n"`` writes what is rendered with bare LFs (bytes are always sent as they are)."""
    if reply is None:
        return b""
    if isinstance(reply, bytes | bytearray | memoryview):
        return bytes(reply)
    if isinstance(reply, EventList | CommandOutput):
        return _with_line_end(reply.render(action_id, encoding), line_end)
    if isinstance(reply, Mapping):
        return _with_line_end(_encode_items(_with_action_id(list(reply.items()), action_id), encoding), line_end)
    if isinstance(reply, list | tuple):
        return b"".join(render_reply(item, action_id, encoding, line_end) for item in reply)
    raise TypeError(f"cannot answer an action with a {type(reply).__name__}")


def _with_line_end(data: bytes, line_end: str) -> bytes:
    """Rendered bytes with ``line_end`` for every CRLF (a server that ends lines with a bare LF)."""
    return data if line_end == "\r\n" else data.replace(b"\r\n", line_end.encode())


# -- reading actions ------------------------------------------------------------------------------------


class _Message:
    """One client message: its header lines (bytes, line ends removed) and how parsing went."""

    __slots__ = ("hdr_loss", "lines", "too_long")

    def __init__(self, lines: list[bytes], too_long: bool, hdr_loss: bool) -> None:
        self.lines = lines
        self.too_long = too_long
        self.hdr_loss = hdr_loss

    def header(self, name: str, skip_empty: bool = False) -> str:
        """``astman_get_header``: the first header called exactly ``name`` (any case), leading blanks
        skipped; '' when there is none."""
        key = name.lower().encode("ascii")
        n = len(key)
        for line in self.lines:
            if len(line) > n and line[n] == 0x3A and line[:n].lower() == key:
                value = line[n + 1 :].lstrip(_BLANKS)
                if skip_empty and not value:
                    continue
                return value.decode("utf-8", "surrogateescape")
        return ""


class _ActionReader:
    """Asterisk's ``get_input``/``do_message`` line rules: a line ends at LF (a CR before it is dropped),
    an empty line ends a message, a line whose LF is 1024 bytes or more from its start is discarded and
    marks the message ``too_long``, lines past 128 mark it ``hdr_loss``."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._lines: list[bytes] = []
        self._too_long = False
        self._hdr_loss = False
        self._skipping = False  # inside the rest of a too-long line

    def feed(self, data: bytes) -> list[_Message]:
        buf = self._buf
        buf += data
        out: list[_Message] = []
        pos = 0
        size = len(buf)
        while pos < size:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if self._skipping:
                    pos = size
                elif size - pos >= MAX_LINE_BYTES:
                    self._too_long = self._skipping = True
                    pos = size
                break
            if self._skipping:
                self._skipping = False
            elif nl - pos >= MAX_LINE_BYTES:
                self._too_long = True
            else:
                end = nl - 1 if nl > pos and buf[nl - 1] == 0x0D else nl
                if end == pos:
                    out.append(_Message(self._lines, self._too_long, self._hdr_loss))
                    self._lines, self._too_long, self._hdr_loss = [], False, False
                elif len(self._lines) < MAX_HEADERS:
                    self._lines.append(bytes(buf[pos:end]))
                else:
                    self._hdr_loss = True
            pos = nl + 1
        del buf[:pos]
        return out


# -- sessions ---------------------------------------------------------------------------------------------


class FakeSession:
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

    # -- actions -------------------------------------------------------------------------------------

    def _respond(self, msg: _Message, response: str, message: str | None) -> None:
        """``astman_send_response_full``."""
        items: HeaderItems = [("Response", response), *_id_items(msg.header("ActionID") or None)]
        if message is not None:
            items.append(("Message", message))
        self._send(_encode_items(items, self.server.encoding))

    def _error(self, msg: _Message, message: str) -> None:
        self._respond(msg, "Error", message)

    def _parse(self, msg: _Message) -> Frame:
        data = b"\r\n".join(msg.lines) + b"\r\n\r\n"
        try:
            frames = self._protocol.receive_data(data)
        except ProtocolError:
            self._protocol = AmiProtocol(self.server.encoding)
            frames = []
        return frames[0] if frames else {"raw": data.decode(self.server.encoding, "replace")}

    def _handle(self, msg: _Message) -> bool:
        """Answer one message; False when the session must close afterwards."""
        srv = self.server
        if msg.hdr_loss:
            self._error(msg, "Too many lines in message or allocation failure")
            return True
        if msg.too_long:
            self._error(msg, "Failed to parse message: line too long")
            return True
        frame = self._parse(msg)
        self.actions.append(frame)
        srv._record(frame)
        action = msg.header("Action", skip_empty=True)
        if not action:
            self._error(msg, "Missing action in request")
            return True
        name = action.lower()
        if not self.logged_in and name not in ("login", "logoff", "challenge"):
            self._error(msg, "Permission denied")
            return True
        if name == "login":
            return self._login(msg)
        if name == "challenge":
            self._challenge_action(msg)
            return True
        found, reply = srv._responder(name)
        if found:
            self._reply(msg, frame, action, reply)
            return True
        if name == "logoff":
            self._respond(msg, "Goodbye", "Thanks for all the fish.")
            return False
        if name == "ping":
            items: HeaderItems = [
                ("Response", "Success"),
                *_id_items(msg.header("ActionID") or None),
                ("Ping", "Pong"),
                ("Timestamp", f"{time.time():.6f}"),
            ]
            self._send(_encode_items(items, srv.encoding))
        elif name == "events":
            self._events_action(msg)
        elif name == "filter":
            self._filter_action(msg)
        elif name == "command":
            self._command_action(msg)
        else:
            self._error(msg, f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands.")
        return True

    def _reply(self, msg: _Message, frame: Frame, action: str, reply: Reply | Responder) -> None:
        srv = self.server
        if callable(reply):
            try:
                reply = reply(frame, self)
            except Exception as exc:
                logger.exception("the responder for %s raised; no answer sent", action)
                srv._responder_failed(exc)
                return
        try:
            data = render_reply(reply, msg.header("ActionID") or None, srv.encoding, srv.line_end)
        except (TypeError, ValueError, UnicodeError) as exc:
            logger.exception("cannot render the reply to %s; no answer sent", action)
            srv._responder_failed(exc)
            return
        if data:
            self.send_raw(data)

    def _login(self, msg: _Message) -> bool:
        srv = self.server
        if self.logged_in:
            self._respond(msg, "Success", "Already authenticated")
            return True
        if self._sleep(srv.login_delay):
            return False
        username = msg.header("Username")
        secret = srv._secret_for(username)
        ok = False
        if secret is not None:
            if msg.header("AuthType").lower() == "md5":
                key = msg.header("Key")
                if key and self._challenge:
                    digest = hashlib.md5((self._challenge + secret).encode(srv.encoding), usedforsecurity=False)
                    ok = key == digest.hexdigest()
            else:
                ok = msg.header("Secret") == secret
        if not ok:
            logger.info("session #%d: authentication as %r failed", self.number, username)
            if self._sleep(srv.auth_fail_delay):
                return False
            self._error(msg, "Authentication failed")
            return False
        mask = strings_to_mask(msg.header("Events"))
        with self._wlock:
            if mask >= 0:
                self.event_mask = mask
            self.username = username
            self.logged_in = True
            items: HeaderItems = [
                ("Response", "Success"),
                *_id_items(msg.header("ActionID") or None),
                ("Message", "Authentication accepted"),
            ]
            data = _encode_items(items, srv.encoding)
            if srv.send_fully_booted and self.event_mask & EVENT_SYSTEM:
                uptime = int(time.monotonic() - srv._started_at)
                data += _encode_items(
                    [
                        ("Event", "FullyBooted"),
                        ("Privilege", "system,all"),
                        ("Uptime", uptime),
                        ("LastReload", uptime),
                        ("Status", "Fully Booted"),
                    ]
                )
            # counted before the answer goes out, under the write lock: a client that sees the answer
            # also sees login_count, and what a test sends after wait_for_clients() follows the answer
            srv._logged_in(self)
            self._write_locked(_with_line_end(data, srv.line_end))
        logger.debug("session #%d: logged in as %s", self.number, username)
        return True

    def _challenge_action(self, msg: _Message) -> None:
        if msg.header("AuthType").lower() != "md5":
            self._error(msg, "Must specify AuthType")
            return
        if not self._challenge:
            self._challenge = self.server.challenge or str(random.randrange(2**31))[:9]
        items: HeaderItems = [
            ("Response", "Success"),
            *_id_items(msg.header("ActionID") or None),
            ("Challenge", self._challenge),
        ]
        self._send(_encode_items(items, self.server.encoding))

    def _events_action(self, msg: _Message) -> None:
        mask = strings_to_mask(msg.header("EventMask"))
        if mask < 0:
            self._error(msg, "Invalid event mask")
            return
        items: HeaderItems = [
            ("Response", "Success"),
            *_id_items(msg.header("ActionID") or None),
            ("Events", "On" if mask else "Off"),
        ]
        with self._wlock:  # the new mask and its answer together: no event slips in before the answer
            self.event_mask = mask
            self._write_locked(_with_line_end(_encode_items(items, self.server.encoding), self.server.line_end))

    def _filter_action(self, msg: _Message) -> None:
        if msg.header("Operation").lower() != "add":
            self._error(msg, "Unknown operation")
            return
        with self._wlock:  # the filter and its answer together, as for Events
            problem = self.filters.add(msg.header("MatchCriteria"), msg.header("Filter"))
        if problem:
            self._error(msg, problem)
        else:
            self._respond(msg, "Success", "Success")

    def _command_action(self, msg: _Message) -> None:
        command = msg.header("Command")
        if not command:
            self._error(msg, "No command provided")
            return
        output = self.server._command_output(command)
        if output is None:
            best = " ".join(command.split())
            output = CommandOutput(
                f"No such command '{command}' (type 'core show help {best}' for other possible commands)\n",
                success=False,
            )
        self._send(output.render(msg.header("ActionID") or None, self.server.encoding))


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


def _command_key(command: str) -> str:
    return " ".join(command.split()).lower()


# -- the server ---------------------------------------------------------------------------------------------


class FakeAsterisk:
    """A fake Asterisk AMI server listening on ``host:port`` (port 0: an ephemeral port).

    Options (all keyword):

    * ``accounts``: username -> secret (usernames match in any case, as in Asterisk). Every account
      may read every event class.
    * ``banner``: the first line, without CRLF; None sends none (the session goes on without it).
    * ``banner_delay``, ``login_delay``: seconds before the banner / before answering ``Login``.
    * ``auth_fail_delay``: seconds before ``Authentication failed`` (real Asterisk sleeps 1 s; the
      default 0 keeps tests fast). The connection is closed after it.
    * ``send_fully_booted``: send ``Event: FullyBooted`` after a login whose event mask has ``system``.
    * ``authtimeout``: seconds a connection may stay without logging in (Asterisk: 30); None: forever.
    * ``authlimit``: when this many connections are not logged in, a new one is closed before the
      banner (notes E3; Asterisk: 50); None: no limit.
    * ``challenge``: a fixed MD5 challenge (default: random, up to 9 digits, as Asterisk).
    * ``encoding``: for text written and read (default utf-8; undecodable bytes round-trip).
    * ``line_end``: ``"\r\n"`` (Asterisk), or ``"\n"`` to play an old or broken server that ends every
      line it writes with a bare LF (the banner included; bytes given to it are sent as they are).
    """

    def __init__(
        self,
        *,
        accounts: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        banner: str | None = "Asterisk Call Manager/11.0.0",
        login_delay: float = 0.0,
        auth_fail_delay: float = 0.0,
        send_fully_booted: bool = True,
        banner_delay: float = 0.0,
        authtimeout: float | None = 30.0,
        authlimit: int | None = 50,
        challenge: str | None = None,
        encoding: str = "utf-8",
        line_end: str = "\r\n",
    ) -> None:
        "".encode(encoding)
        if line_end not in ("\r\n", "\n"):
            raise ValueError("line_end must be '\\r\\n' or '\\n'")
        self._accounts = dict({"admin": "secret"} if accounts is None else accounts)
        self.host = host
        self.port = port
        self.banner = banner
        self.login_delay = login_delay
        self.auth_fail_delay = auth_fail_delay
        self.send_fully_booted = send_fully_booted
        self.banner_delay = banner_delay
        self.authtimeout = authtimeout
        self.authlimit = authlimit
        self.challenge = challenge
        self.encoding = encoding
        self.line_end = line_end
        #: connections accepted, logins accepted and connections refused by ``authlimit``, ever
        self.connection_count = 0
        self.login_count = 0
        self.rejected_count = 0
        #: exceptions raised by responders (each is also logged)
        self.responder_errors: list[BaseException] = []
        self._cond = threading.Condition(threading.RLock())
        self._sessions: list[FakeSession] = []
        self._actions: list[Frame] = []
        self._cursors: dict[str | None, int] = {}
        self._responses: dict[str, Reply | Responder] = {}
        self._commands: dict[str, CommandOutput] = {}
        self._stalled = False
        self._started = False
        self._closed = False
        self._started_at = time.monotonic()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeAsterisk:
        """Bind, listen and start accepting (in a background thread); returns self."""
        with self._cond:
            if self._closed:
                raise RuntimeError("this FakeAsterisk is closed; make a new one")
            if self._started:
                return self
            family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0][0]
            listener = socket.create_server((self.host, self.port), family=family, backlog=128)
            listener.setblocking(False)
            self._listener = listener
            self.port = listener.getsockname()[1]
            self._wake_r, self._wake_w = socket.socketpair()
            self._started_at = time.monotonic()
            self._accept_thread = threading.Thread(
                target=self._accept_loop, name=f"fake-asterisk-accept-{self.port}", daemon=True
            )
            self._started = True
            self._accept_thread.start()
        logger.debug("listening on %s:%d", self.host, self.port)
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection and join every thread. Safe to call twice."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stalled = False
            sessions = list(self._sessions)
            self._cond.notify_all()
        end = time.monotonic() + timeout
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        if self._accept_thread is not None and self._accept_thread is not threading.current_thread():
            self._accept_thread.join(max(0.0, end - time.monotonic()))
        for session in sessions:
            session.close()
        for session in sessions:
            if not session.wait_closed(max(0.0, end - time.monotonic())):
                logger.warning("session #%d did not finish within %s s", session.number, timeout)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        logger.debug("closed %s:%d", self.host, self.port)

    def __enter__(self) -> FakeAsterisk:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "listening" if self._started else "not started"
        return f"<FakeAsterisk {self.host}:{self.port} {state} sessions={len(self._sessions)}>"

    @property
    def url(self) -> str:
        """``ami://host:port`` (never any secret)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ami://{host}:{self.port}"

    def client_options(self, username: str | None = None) -> dict[str, object]:
        """Keyword arguments for ``AsteriskAmi`` to log in here (the first account by default)."""
        if username is None:
            username = next(iter(self._accounts))
        return {"host": self.host, "port": self.port, "username": username, "password": self._accounts[username]}

    # -- state -------------------------------------------------------------------------------------

    @property
    def sessions(self) -> list[FakeSession]:
        """The connections open now (logged in or not), oldest first."""
        with self._cond:
            return list(self._sessions)

    @property
    def actions(self) -> list[Frame]:
        """Every action received from every session, as parsed frames, in arrival order."""
        with self._cond:
            return list(self._actions)

    @property
    def stalled(self) -> bool:
        """True while :meth:`stall` holds the server."""
        return self._stalled

    def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> None:
        """Block until ``predicate()`` is true, re-checked whenever sessions, logins or actions change.

        Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        end = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = end - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s")
                self._cond.wait(remaining)

    def wait_for_clients(self, count: int = 1, timeout: float = 5.0) -> list[FakeSession]:
        """Block until at least ``count`` sessions are logged in; returns them.

        A session counts as its login answer is written: anything sent to it afterwards follows the answer,
        and a client that has seen the answer also sees ``login_count`` include it.

        Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                logged = [s for s in self._sessions if s._announced]
                if len(logged) >= count:
                    return logged
                remaining = end - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{len(logged)} of {count} client(s) logged in within {timeout} s "
                        f"({len(self._sessions)} connected)"
                    )
                self._cond.wait(remaining)

    def wait_for_action(self, name: str | None = None, timeout: float = 5.0) -> Frame:
        """The next action called ``name`` (any case; None: any action) not yet returned by this method.

        The first call returns the first such action ever received, the next call the one after it,
        waiting for it to arrive if need be. Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        key = None if name is None else name.lower()
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                actions = self._actions
                for i in range(self._cursors.get(key, 0), len(actions)):
                    if key is None or _action_name(actions[i]).lower() == key:
                        self._cursors[key] = i + 1
                        return actions[i]
                self._cursors[key] = len(actions)
                remaining = end - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(_action_name(a) for a in actions[-20:]) or "none"
                    raise TimeoutError(f"no {name or 'action'} within {timeout} s (last actions: {seen})")
                self._cond.wait(remaining)

    # -- scripting answers ---------------------------------------------------------------------------

    def respond(self, action: str, reply: Reply | Responder) -> None:
        """Answer every later ``Action: <action>`` (any case) with ``reply``, replacing what was set before.

        ``reply`` is a :data:`Reply` (a frame dict, bytes, an :class:`EventList`, a :class:`CommandOutput`,
        a list of those, or None for no answer at all) or a :data:`Responder` callable
        ``(action_frame, session) -> Reply``. The action's ActionID is echoed into every frame after its
        first header (see :class:`EventList` for lists); bytes are sent verbatim. It overrides the
        built-in ``Ping``, ``Events``, ``Logoff`` (the connection then stays open) and ``Command``;
        ``Login`` and ``Challenge`` cannot be overridden. Works only for logged-in clients, as Asterisk.
        """
        if action.lower() in ("login", "challenge"):
            raise ValueError(f"{action} is built in; use the accounts/login_delay/challenge options")
        with self._cond:
            self._responses[action.lower()] = reply

    def reset_responses(self, *actions: str) -> None:
        """Forget what :meth:`respond` set for ``actions`` (none given: for every action)."""
        with self._cond:
            if not actions:
                self._responses.clear()
            for action in actions:
                self._responses.pop(action.lower(), None)

    def respond_command(self, command: str, output: str, *, legacy: bool = False, success: bool = True) -> None:
        """Answer ``Action: Command`` / ``Command: <command>`` with ``output`` (see :class:`CommandOutput`).

        Commands match with runs of blanks collapsed, in any case. A command with no output registered
        gets Asterisk's ``Response: Error`` with ``Output: No such command '…' (type 'core show help …'
        for other possible commands)``.
        """
        with self._cond:
            self._commands[_command_key(command)] = CommandOutput(output, legacy, success)

    # -- pushing -------------------------------------------------------------------------------------

    def push_event(self, event: str | Mapping[str, object], /, **headers: object) -> int:
        """Send ``Event: <event>`` with ``headers`` (in order) to every logged-in session with events on.

        ``event`` can also be a whole frame mapping (``{"Event": "Hangup", "Cause-txt": ...}``: header
        names that are not Python identifiers). With a ``Privilege`` header, a session whose event mask is
        partial gets it only when the mask has all its classes, as in Asterisk. Returns how many sessions
        it was sent to.
        """
        if isinstance(event, Mapping):
            items: HeaderItems = [*event.items(), *headers.items()]
        else:
            items = [("Event", event), *headers.items()]
        data = _with_line_end(_encode_items(items, self.encoding), self.line_end)
        category = _privilege_mask(items)
        pairs = [(str(k), str(v)) for k, v in items]
        info = (next((v for k, v in pairs if k.lower() == "event"), ""), pairs)
        return sum(session._send_if_logged_in(data, category, info) for session in self.sessions)

    def push_raw(self, data: bytes) -> int:
        """Send ``data`` verbatim (malformed or split frames…) to every logged-in session; returns how many."""
        return sum(session._send_if_logged_in(bytes(data)) for session in self.sessions)

    def replay(
        self,
        source: str | os.PathLike[str] | bytes,
        chunk_size: int | None = None,
        *,
        skip_login: bool = True,
        repeat: int = 1,
    ) -> int:
        """Send a recorded session to every logged-in session; returns the bytes sent to each.

        ``source`` is a file path or the bytes. The banner line is dropped and, with ``skip_login``, so is
        every frame up to the login answer (``Message: Authentication accepted``): a recording such as
        ``tests/data/asterisk22-session.bin`` then delivers the frames after its login. ``chunk_size``
        writes the bytes in pieces of that size (frames split anywhere); ``repeat`` sends it that many times.
        """
        data = bytes(source) if isinstance(source, bytes | bytearray) else Path(source).read_bytes()
        payload = recorded_frames(data, skip_login=skip_login)
        sent = 0
        for session in self.sessions:
            if self._replay_to(session, payload, chunk_size, repeat):
                sent += 1
        return len(payload) * repeat if sent else 0

    @staticmethod
    def _replay_to(session: FakeSession, payload: bytes, chunk_size: int | None, repeat: int) -> bool:
        view = memoryview(payload)
        for _ in range(repeat):
            if not chunk_size:
                if not session._send_if_logged_in(payload):
                    return False
                continue
            for offset in range(0, len(view), chunk_size):
                if not session._send_if_logged_in(bytes(view[offset : offset + chunk_size])):
                    return False
        return True

    # -- failures ------------------------------------------------------------------------------------

    def drop(self, rst: bool = False, timeout: float = 5.0) -> int:
        """Close every client connection (``rst``: abort it with a TCP RST); returns how many.

        Waits until they are closed and gone from :attr:`sessions`. New connections are still accepted.
        """
        sessions = self.sessions
        for session in sessions:
            session.close(rst=rst)
        end = time.monotonic() + timeout
        for session in sessions:
            session.wait_closed(max(0.0, end - time.monotonic()))
        return len(sessions)

    def stall(self, on: bool = True) -> None:
        """``stall(True)``: stop reading and answering on every connection, like a hung server (new
        connections get no banner); ``stall(False)`` resumes. :meth:`push_event`, :meth:`push_raw` and
        :meth:`replay` still write while stalled."""
        with self._cond:
            self._stalled = on
            self._cond.notify_all()

    # -- internals (called by sessions) ------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener, wake = self._listener, self._wake_r
        assert listener is not None and wake is not None
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        selector.register(wake, selectors.EVENT_READ)
        try:
            while not self._closed:
                for key, _ in selector.select():
                    if key.fileobj is wake or self._closed:
                        return
                    try:
                        conn, peer = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as exc:  # e.g. out of file descriptors: do not spin
                        logger.warning("accept failed: %s", exc)
                        time.sleep(0.05)
                        continue
                    self._admit(conn, peer)
        except Exception:
            logger.exception("accept thread crashed")
        finally:
            selector.close()

    def _admit(self, conn: socket.socket, peer: object) -> None:
        try:
            conn.setblocking(True)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            conn.close()
            return
        with self._cond:
            if self._closed:
                conn.close()
                return
            if self.authlimit is not None:
                unauthenticated = sum(1 for s in self._sessions if not s.logged_in)
                if unauthenticated >= self.authlimit:
                    self.rejected_count += 1
                    logger.info("authlimit %d reached: closing %s before the banner", self.authlimit, peer)
                    conn.close()
                    return
            try:
                session = FakeSession(self, conn, peer, self.connection_count + 1)
                session._start()  # under the lock: drop() and close() never see a session not yet started
            except (OSError, RuntimeError) as exc:  # out of file descriptors or threads
                logger.warning("cannot serve %s: %s", peer, exc)
                conn.close()
                return
            self.connection_count += 1
            self._sessions.append(session)
            self._cond.notify_all()
        logger.debug("session #%d: connection from %s", session.number, peer)

    def _session_gone(self, session: FakeSession) -> None:
        with self._cond:
            if session in self._sessions:
                self._sessions.remove(session)
            self._cond.notify_all()
        logger.debug("session #%d: closed", session.number)

    def _record(self, frame: Frame) -> None:
        with self._cond:
            self._actions.append(frame)
            self._cond.notify_all()

    def _logged_in(self, session: FakeSession) -> None:
        with self._cond:
            session._announced = True
            self.login_count += 1
            self._cond.notify_all()

    def _responder(self, name: str) -> tuple[bool, Reply | Responder]:
        with self._cond:
            if name not in self._responses:
                return False, None
            return True, self._responses[name]

    def _responder_failed(self, exc: BaseException) -> None:
        with self._cond:
            self.responder_errors.append(exc)

    def _command_output(self, command: str) -> CommandOutput | None:
        with self._cond:
            return self._commands.get(_command_key(command))

    def _secret_for(self, username: str) -> str | None:
        if not username:
            return None
        for name, secret in self._accounts.items():
            if name.lower() == username.lower():
                return secret
        return None


def _action_name(frame: Frame) -> str:
    value = frame.get("action", "")
    return value if isinstance(value, str) else (value[0] if value else "")


def recorded_frames(data: bytes, skip_login: bool = True) -> bytes:
    """The part of a recorded server stream that :meth:`FakeAsterisk.replay` sends: without the banner
    line and, with ``skip_login``, without the frames up to and including the login answer."""
    if data.startswith(b"Asterisk Call Manager"):
        nl = data.find(b"\n")
        data = b"" if nl < 0 else data[nl + 1 :]
    if skip_login:
        mark = data.find(b"Message: Authentication accepted\r\n")
        if mark >= 0:
            end = data.find(b"\r\n\r\n", mark)
            if end >= 0:
                data = data[end + 4 :]
    return data
