"""What the fake server writes: event-class masks, frames, list and Command answers, and :data:`Reply`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

from ..protocol import Frame

if TYPE_CHECKING:
    from ._session import FakeSession

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


def _perm_mask(line: str) -> int:
    """Asterisk's ``get_perm``: a manager.conf ``read``/``write`` line (``system,call``) to a mask."""
    words = [w.strip() for w in line.split(",")]
    mask = sum(bit for name, bit in _PERMS if name in words)
    return EVENT_ALL if "all" in words else mask


def _mask_to_perm_str(mask: int) -> str:
    """Asterisk's ``user_authority_to_str``: every class the mask has, ``all`` last when it has all."""
    names = [name for name, bit in _PERMS if mask & bit == bit]
    if mask & EVENT_ALL == EVENT_ALL:
        names.append("all")
    return ",".join(names) or "<none>"


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
Reply: TypeAlias = ReplyItem | list[ReplyItem] | tuple[ReplyItem, ...] | None
"""What answers an action: a frame (a mapping of header names as written to values), raw bytes sent
verbatim, an :class:`EventList`, a :class:`CommandOutput`, a list or tuple of those (sent in order), or
None: no answer at all."""
Responder: TypeAlias = Callable[[Frame, "FakeSession"], Reply]
"""``responder(action_frame, session)`` computes the reply when the action arrives. It runs on the
session's thread; ``action_frame`` has lower-cased keys as :class:`~asterisk_ami.protocol.AmiProtocol` gives."""


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
