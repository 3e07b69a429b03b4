"""Sans-IO AMI protocol: bytes in, frames out; messages in, bytes out.

No sockets, threads or clocks live here, so every parsing rule is tested without a network.

Frame rules (what ``AmiProtocol.receive_data`` returns):

* A frame is a dict. Keys are lower-cased with every ``-`` removed (``Content-Type`` -> ``contenttype``).
* A value is everything after the first ``:`` with exactly one following space removed, so
  ``AppData: TestEvent,Foo: bar`` keeps ``TestEvent,Foo: bar`` and ``AccountCode: `` is ``''``.
* A key that repeats in one frame gives a list of its values in arrival order; a key seen once is a str.
* Lines with no ``:`` at all are never dropped: they are joined with ``\\n`` under the key ``raw``.
* ``Response: Follows`` frames (Asterisk before 14) carry the command body, split into lines and
  without the ``--END COMMAND--`` marker, as a list under ``output``.
* Frames end with an empty line. ``\\r\\n`` is the line end; a server whose first line ends in a bare
  ``\\n`` is read in lenient mode where ``\\n`` alone ends lines too.
* Bytes are decoded after splitting on frame boundaries (never per raw chunk) with a configurable
  codec and ``errors='replace'``, so undecodable or split multibyte characters never break the reader.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from itertools import count
from typing import cast

from .errors import (
    FrameTooLargeError,
    HeaderInjectionError,
    InvalidMessageError,
    MessageTooLargeError,
    ProtocolError,
)

Frame = dict[str, str | list[str]]
"""One AMI frame as the library hands it out."""

_CParse = Callable[[str, dict[str, str], str], tuple[list[Frame | str], int] | None]
_c_parse_simple: _CParse | None
try:
    # the optional C fast path (setup.py builds it when a compiler is there); same frames, faster
    if os.environ.get("ASTERISK_AMI_PURE_PYTHON"):
        raise ImportError("ASTERISK_AMI_PURE_PYTHON is set")
    from ._speedups import parse_simple as _c_parse_simple
except ImportError:
    _c_parse_simple = None

#: True when the C fast path is built and enabled (``ASTERISK_AMI_PURE_PYTHON=1`` turns it off).
SPEEDUPS = _c_parse_simple is not None

#: Asterisk reads a line into ``inbuf[1025]``: 1024 bytes with the CRLF is the longest it accepts.
MAX_LINE_BYTES = 1024
#: ``AST_MAX_MANHEADERS``: more header lines than this and Asterisk rejects the message.
MAX_HEADERS = 128
DEFAULT_MAX_FRAME_BYTES = 1 << 20

_BANNER_PREFIX = b"Asterisk Call Manager"
_BANNER_RE = re.compile(r"^(Asterisk Call Manager(?: Proxy)?)/(\S+)")
_END_COMMAND = "--END COMMAND--"
_FOLLOWS = "Response: Follows"
_FOLLOWS_LINE_ENDS = ("\r\n", "\n")  # a lone CR does not end the line
_HEADER_RE = re.compile(r"[A-Za-z0-9_-]+: ")
_FOLLOWS_HEADER_RE = re.compile(r"(?i:response|privilege|actionid): ")
_MAX_CACHED_KEYS = 4096
_BAD_VALUE_RE = re.compile("[\r\n\x00]")
_BAD_KEY_RE = re.compile(r"[\s:]")


def normalize_key(key: str) -> str:
    """The frame key for a header name: lower case, every '-' removed."""
    return key.strip().lower().replace("-", "")


class AmiProtocol:
    """Incremental AMI stream parser and message encoder for one connection.

    Feed it every byte received with :meth:`receive_data`; it returns the frames completed so far.
    After a :class:`ProtocolError` the object is spent: make a new one for the next connection.
    ``speedups=False`` keeps to the pure-Python parser even when the C fast path is built (the frames
    are the same; tests and the benchmarks compare the two).
    """

    def __init__(
        self,
        encoding: str = "utf-8",
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        errors: str = "replace",
        speedups: bool = True,
    ) -> None:
        "".encode(encoding)  # fail early on an unknown codec name
        self.encoding = encoding
        self.errors = errors
        self.max_frame_bytes = max_frame_bytes
        self.banner: str | None = None
        self.protocol_version: str | None = None
        self.lenient = False
        self._first_line_seen = False
        self._buf = bytearray()
        self._scan = 0  # where the next search for a frame end starts (never re-scan old bytes)
        self._term = b"\r\n\r\n"
        self._term_str = "\r\n\r\n"
        self._follows: list[str] | None = None  # a Follows body split by a bare-LF server
        self._keys: dict[str, str] = {}
        self._failed: ProtocolError | None = None
        self._bare_lf = False
        self._cr_held = False  # lenient mode: a read ended in CR
        self._c_parse = _c_parse_simple if speedups else None  # same frames either way

    @property
    def pending_bytes(self) -> int:
        """Bytes received that do not form a complete frame yet (e.g. a frame cut by a close)."""
        return len(self._buf) + self._cr_held

    def receive_data(self, data: bytes) -> list[Frame]:
        """Take the next bytes from the server; return the frames they complete, in order."""
        if self._failed is not None:
            raise ProtocolError("the protocol failed earlier and cannot continue") from self._failed
        buf = self._buf
        buf += self._lf_only(data) if self.lenient else data
        if not self._first_line_seen and not self._read_first_line():
            self._check_size(self.pending_bytes)
            return []
        term = self._term
        end = buf.find(term, self._scan)
        if end < 0:
            self._scan = max(0, len(buf) - len(term) + 1)
            self._check_size(self.pending_bytes)
            return []
        end = buf.rfind(term)
        # extra blank lines after a frame overlap the terminator: end the region at the first of them,
        # so it never ends in a line break (a Follows body would take it for an output line)
        step = len(term) // 2
        while end >= step and buf[end - step : end] == term[:step]:
            end -= step
        region = bytes(buf[:end])
        del buf[: end + len(term)]
        self._scan = 0
        self._check_size(self.pending_bytes)
        return self._parse_region(region)

    # -- internals -----------------------------------------------------------------------------

    def _fail(self, exc: ProtocolError) -> ProtocolError:
        self._failed = exc
        self._buf.clear()
        return exc

    def _lf_only(self, data: bytes) -> bytes:
        """Lenient mode: CRLF becomes LF; a CR at the end of a read waits for the next one."""
        if self._cr_held:
            data = b"\r" + data
            self._cr_held = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._cr_held = True
        return data.replace(b"\r\n", b"\n")

    def _check_size(self, size: int) -> None:
        if size > self.max_frame_bytes:
            limit = self.max_frame_bytes
            raise self._fail(FrameTooLargeError(f"frame of {size} bytes exceeds max_frame_bytes={limit}"))

    def _read_first_line(self) -> bool:
        """Consume the banner if there is one and pick the line-end mode. False: need more bytes."""
        buf = self._buf
        nl = buf.find(b"\n")
        if nl < 0:
            return False
        self._first_line_seen = True
        if nl == 0 or buf[nl - 1] != 0x0D:
            self.lenient = True
            self._term = b"\n\n"
            self._term_str = "\n\n"
            # from here on the buffer holds LF line ends only, so frame boundaries never depend on
            # whether a CRLF was split between two reads
            rest = self._lf_only(bytes(buf[nl + 1 :]))
            del buf[nl + 1 :]
            buf += rest
        if buf.startswith(_BANNER_PREFIX):
            line = bytes(buf[:nl]).decode(self.encoding, self.errors).rstrip("\r")
            self.banner = line
            m = _BANNER_RE.match(line)
            self.protocol_version = m.group(2) if m else None
            del buf[: nl + 1]
        return True

    def _parse_region(self, region: bytes) -> list[Frame]:
        if len(region) > self.max_frame_bytes:
            for part in region.split(self._term):
                self._check_size(len(part))
        text = region.decode(self.encoding, self.errors)
        if self.lenient:
            return self._parse_pieces(text.split("\n\n"))  # CRLFs were made LFs on arrival
        if self._c_parse is not None:
            c_frames = self._parse_with_c(self._c_parse, text)
            if c_frames is not None:
                return c_frames
        pieces = text.split("\r\n\r\n")
        # Fast path for the common frame: well-formed "Key: value" lines with cached key names. Anything
        # else (raw lines, Follows, a new key name) goes to _parse_pieces. A bare LF (old Follows bodies,
        # broken servers) is caught by counting: then the whole region is parsed again line by line.
        # Only lenient mode keeps state between pieces (_follows), so parsing a region twice is safe.
        frames: list[Frame] = []
        append = frames.append
        keys = self._keys
        newlines = 2 * len(pieces) - 2  # the CRLFs of the frame separators
        for piece in pieces:
            lines = piece.split("\r\n")
            newlines += len(lines) - 1
            frame: Frame = {}
            try:
                for line in lines:
                    name, sep, value = line.partition(": ")
                    if not sep:
                        raise KeyError(name)
                    frame[keys[name]] = value
            except KeyError:
                pass
            else:
                if len(frame) != len(lines):
                    frame = _with_repeats(lines, keys)  # e.g. two State: headers, Variable: lists
                # _parse_pieces strips CR/LF at the start of a piece (blank lines between frames): such a
                # piece and Follows output must go there, whatever names happen to be cached
                if lines[0] != _FOLLOWS and piece[0] not in "\r\n":
                    append(frame)
                    continue
            frames.extend(self._parse_pieces((piece,)))  # also caches the key names it meets
        if text.count("\n") != newlines:
            self._bare_lf = True
            try:
                return self._parse_pieces(pieces)
            finally:
                self._bare_lf = False
        return frames

    def _parse_with_c(self, c_parse: _CParse, text: str) -> list[Frame] | None:
        """The C fast path: the same frames as the loop in _parse_region. None: it cannot take this text."""
        parsed = c_parse(text, self._keys, _FOLLOWS)
        if parsed is None:  # not one byte per character, or a bare LF: the loop below knows what to do
            return None
        items, slow = parsed
        if not slow:
            return cast("list[Frame]", items)
        frames: list[Frame] = []
        for item in items:
            if isinstance(item, str):  # a piece the C code left to the Python parser, in order
                frames.extend(self._parse_pieces((item,)))
            else:
                frames.append(item)
        return frames

    def _parse_pieces(self, pieces: Iterable[str]) -> list[Frame]:
        frames: list[Frame] = []
        parse = self._parse_frame
        for piece in pieces:
            if self._follows is not None:
                self._follows.append(piece)
                if _END_COMMAND not in piece:
                    continue
                piece = self._term_str.join(self._follows)
                self._follows = None
            elif not piece or piece[0] in "\r\n":
                piece = piece.lstrip("\r\n")
                if not piece:
                    continue
            if self.lenient and _is_follows(piece) and _END_COMMAND not in piece:
                self._follows = [piece]  # its body held a blank line: keep joining
                continue
            frames.append(parse(piece))
        return frames

    def _parse_frame(self, text: str) -> Frame:
        if _is_follows(text):
            return self._parse_follows(text)
        if self.lenient:
            lines = text.split("\n")
        elif self._bare_lf:
            lines = text.replace("\r\n", "\n").split("\n")
        else:
            lines = text.split("\r\n")
        frame: Frame = {}
        keys = self._keys
        raw: list[str] | None = None
        for line in lines:
            i = line.find(":")
            if i <= 0:
                if line:
                    raw = raw or []
                    raw.append(line)
                continue
            name = line[:i]
            key = keys.get(name)
            if key is None:
                key = normalize_key(name)
                if len(keys) < _MAX_CACHED_KEYS and ":" not in name:
                    keys[name] = key
            value = line[i + 2 :] if line[i + 1 : i + 2] == " " else line[i + 1 :]
            # add_value() inlined: lenient (LF-only) servers take this path for every line
            old = frame.get(key)
            if old is None:
                frame[key] = value
            elif isinstance(old, list):
                old.append(value)
            else:
                frame[key] = [old, value]
        if raw:
            _add_raw(frame, raw)
        return frame

    def _parse_follows(self, text: str) -> Frame:
        """Pre-14 ``Command`` output: CRLF headers, then a bare-LF body ending in ``--END COMMAND--``."""
        frame: Frame = {}
        if self.lenient:
            # every line ends in LF here, so only known header names can start the frame
            lines = text.split("\n")
            is_header = _FOLLOWS_HEADER_RE.match
        else:
            lines = text.split("\r\n")
            is_header = _HEADER_RE.match
        body_start = len(lines)
        for n, line in enumerate(lines):
            if "\n" in line or _END_COMMAND in line or not is_header(line):
                body_start = n
                break
            name, _, value = line.partition(": ")
            frame[normalize_key(name)] = value
        body = "\n".join(lines[body_start:]).split("\n")
        if body and body[-1].rstrip().endswith(_END_COMMAND):
            last = body[-1].rstrip()[: -len(_END_COMMAND)].rstrip(" ")
            if last:
                body[-1] = last
            else:
                body.pop()
        frame["output"] = body
        return frame


def _is_follows(text: str) -> bool:
    """Whether a frame's first line is exactly ``Response: Follows`` (pre-14 Command output)."""
    return text.startswith(_FOLLOWS) and (text == _FOLLOWS or text.startswith(_FOLLOWS_LINE_ENDS, len(_FOLLOWS)))


def _with_repeats(lines: list[str], keys: dict[str, str]) -> Frame:
    """A frame of well-formed lines with cached key names where some key repeats: its values as a list."""
    frame: Frame = {}
    for line in lines:
        name, _, value = line.partition(": ")
        # add_value() inlined: every frame with a repeated key comes here (tests/test_perf_guard.py counts calls)
        key = keys[name]
        old = frame.get(key)
        if old is None:
            frame[key] = value
        elif isinstance(old, list):
            old.append(value)
        else:
            frame[key] = [old, value]
    return frame


def add_value(frame: Frame, key: str, value: str) -> None:
    """Set ``frame[key]``; a key already there collects its values in a list, in arrival order."""
    old = frame.get(key)
    if old is None:
        frame[key] = value
    elif isinstance(old, list):
        old.append(value)
    else:
        frame[key] = [old, value]


def _add_raw(frame: Frame, raw: list[str]) -> None:
    add_value(frame, "raw", "\n".join(raw))


class ActionIdGenerator:
    """ActionIDs unique across clients and processes: a random per-client prefix plus a counter.

    Asterisk broadcasts ``OriginateResponse`` with the sender's ActionID to every client with call
    rights, so counting from 1 like other clients do would match another client's frames.
    """

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or uuid.uuid4().hex[:12]
        self._counter = count(1)

    def __call__(self) -> str:
        return f"{self.prefix}-{next(self._counter)}"


def find_action_id(message: Mapping[str, object]) -> tuple[str | None, str | None]:
    """The key used for ActionID in ``message`` (any case) and its value, or (None, None)."""
    for key, value in message.items():
        if key.lower() == "actionid":
            return key, None if value is None else str(value)
    return None, None


def _values(value: object) -> Iterable[object]:
    if isinstance(value, list | tuple):
        return value
    return (value,)


def encode_message(message: Mapping[str, object], encoding: str = "utf-8") -> bytes:
    """The bytes for one action: ``Key: value`` lines and a blank line.

    Keys are written as given (Asterisk compares header names case-insensitively). A list or tuple
    value becomes repeated headers; ``None`` values are left out. Raises an ``InvalidMessageError``
    subclass, naming the key but never echoing the value (it may be a secret), when the message could
    inject a header or would be rejected by Asterisk for its size.
    """
    lines: list[bytes] = []
    for key, value in message.items():
        if not isinstance(key, str) or not key:
            raise InvalidMessageError(f"header names must be non-empty strings, got {key!r}")
        if _BAD_VALUE_RE.search(key):
            raise HeaderInjectionError(f"header name {key!r} contains CR, LF or NUL")
        if _BAD_KEY_RE.search(key):
            raise InvalidMessageError(f"header name {key!r} contains ':' or whitespace")
        if value is None:
            continue
        for item in _values(value):
            if item is None:
                continue
            text = item if isinstance(item, str) else str(item)
            if _BAD_VALUE_RE.search(text):
                raise HeaderInjectionError(f"value of header {key!r} contains CR, LF or NUL")
            line = f"{key}: {text}\r\n".encode(encoding)
            if len(line) > MAX_LINE_BYTES:
                raise MessageTooLargeError(
                    f"header {key!r} is {len(line)} bytes with its CRLF; Asterisk accepts {MAX_LINE_BYTES}"
                )
            lines.append(line)
    if len(lines) > MAX_HEADERS:
        raise MessageTooLargeError(f"message has {len(lines)} header lines; Asterisk accepts {MAX_HEADERS}")
    if not lines:
        raise InvalidMessageError("message has no headers")
    lines.append(b"\r\n")
    return b"".join(lines)


def events_value(events: bool | str) -> str:
    """The ``Events:`` header for the ``events`` option: on, off, or an event-class mask."""
    if events is True:
        return "on"
    if events is False:
        return "off"
    return str(events)


def login_message(username: str, secret: str, events: bool | str, action_id: str) -> dict[str, str]:
    """A plain-text ``Login`` action."""
    return {
        "Action": "Login",
        "ActionID": action_id,
        "Username": username,
        "Secret": secret,
        "Events": events_value(events),
    }


def md5_key(challenge: str, secret: str) -> str:
    """``Key`` for an MD5 login: lowercase hex md5 of challenge + secret (Asterisk uses strcmp)."""
    return hashlib.md5((challenge + secret).encode("utf-8"), usedforsecurity=False).hexdigest()


def md5_login_message(username: str, challenge: str, secret: str, events: bool | str, action_id: str) -> dict[str, str]:
    """A ``Login`` answering an MD5 ``Challenge``: the secret itself never crosses the wire."""
    return {
        "Action": "Login",
        "ActionID": action_id,
        "AuthType": "MD5",
        "Username": username,
        "Key": md5_key(challenge, secret),
        "Events": events_value(events),
    }


def frame_kind(frame: Mapping[str, object]) -> str:
    """'event', 'response' or 'unknown', by the frame's first header (not by 'has a Response key').

    ``OriginateResponse`` events carry a ``Response:`` header too; only the first line tells.
    """
    for key in frame:
        if key == "event":
            return "event"
        if key == "response":
            return "response"
        return "unknown"
    return "unknown"
