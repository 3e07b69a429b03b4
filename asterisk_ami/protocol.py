"""Sans-IO AMI protocol: bytes in, frames out (messages in, bytes out: messages.py, re-exported here).

No sockets, threads or clocks live here, so every parsing rule is tested without a network.

Frame rules (what ``AmiProtocol.receive_data`` returns):

* A frame is a dict. Keys are lower-cased with every ``-`` removed (``Content-Type`` -> ``contenttype``).
* A value is everything after the first ``:`` with exactly one following space removed, so
  ``AppData: TestEvent,Foo: bar`` keeps ``TestEvent,Foo: bar`` and ``AccountCode: `` is ``''``.
* A key that repeats in one frame gives a list of its values in arrival order; a key seen once is a str.
* Lines with no ``:`` at all are never dropped: they are joined with ``\\n`` under the key ``raw``.
* A line ends at LF, with one CR before it removed (a lone CR is text). A frame ends at an empty line,
  whether that line ends in CRLF or a bare LF (``\\r\\n\\r\\n``, ``\\r\\n\\n``, ``\\n\\n``, ``\\n\\r\\n``),
  in strict and lenient mode alike. Runs of blank lines between frames are skipped.
* The first line of a connection that is not a ``Key: value`` header is the banner, whatever product it
  names; ``protocol_version`` is the text after its last ``/``. A first line ending in a bare LF makes the
  connection lenient, which only changes how a ``Response: Follows`` frame's headers are told from its body.
* ``Response: Follows`` frames (Asterisk before 14) run over blank lines up to the piece holding
  ``--END COMMAND--``; they carry the body, split into lines and without the marker, as a list under
  ``output``.
* Everything held between reads (a partial frame, the first line, an unfinished Follows body) counts
  toward ``max_frame_bytes``; past it, ``FrameTooLargeError``. The header-name cache is bounded too.
* Bytes are decoded after splitting on frame boundaries (never per raw chunk) with a configurable
  codec and ``errors='replace'``, so undecodable or split multibyte characters never break the reader.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import cast

from .errors import FrameTooLargeError, ProtocolError

# messages to bytes live in messages.py; importable from here too, where they always were
from .messages import MAX_HEADERS as MAX_HEADERS
from .messages import MAX_LINE_BYTES as MAX_LINE_BYTES
from .messages import ActionIdGenerator as ActionIdGenerator
from .messages import encode_message as encode_message
from .messages import events_value as events_value
from .messages import find_action_id as find_action_id
from .messages import login_message as login_message
from .messages import md5_key as md5_key
from .messages import md5_login_message as md5_login_message

Frame = dict[str, str | list[str]]
"""One AMI frame as the library hands it out: lower-cased keys without ``-``, ``str`` values, a ``list``
of values for a key that repeats."""

_CParse = Callable[[str, dict[str, str], str], tuple[list[Frame | str], int] | None]
_c_parse_simple: _CParse | None
try:
    # the optional C fast path (setup.py builds it when a compiler is there); same frames, faster
    if os.environ.get("ASTERISK_AMI_PURE_PYTHON"):
        raise ImportError("ASTERISK_AMI_PURE_PYTHON is set")
    from ._speedups import parse_simple as _c_parse_simple
except ImportError:
    _c_parse_simple = None

SPEEDUPS = _c_parse_simple is not None
"""True when the C fast path is built and enabled (``ASTERISK_AMI_PURE_PYTHON=1`` turns it off)."""

DEFAULT_MAX_FRAME_BYTES = 1 << 20

_END_COMMAND = "--END COMMAND--"
_END_COMMAND_B = _END_COMMAND.encode()
_FOLLOWS = "Response: Follows"
_FOLLOWS_B = _FOLLOWS.encode()
_HEADER_RE = re.compile(r"[A-Za-z0-9_-]+: ")
_FOLLOWS_HEADER_RE = re.compile(r"(?i:response|privilege|actionid): ")
_HEADER_LINE_B = re.compile(rb"[^\s:]+:")  # a first line that starts like this is a header, not a banner
# a line end (CRLF or LF), then an empty line (CRLF or LF): the end of a frame
_FRAME_SEP = re.compile("\r?\n\r?\n")
_FRAME_SEP_B = re.compile(rb"\r?\n\r?\n")
_MAX_CACHED_KEYS = 4096
# header name -> frame key, shared by every connection (normalize_key is a pure function, and a thousand
# connections then keep one table, as the C fast path keeps one); dict reads and writes are atomic
_KEYS: dict[str, str] = {}
_MAX_CACHED_NAME = 128  # longer header names are normalised every time: the cache stays small
_CR, _LF = 13, 10


def normalize_key(key: str) -> str:
    """The frame key for a header name: lower case, every '-' removed."""
    return key.strip().lower().replace("-", "")


def _skip_blank(data: bytes | bytearray, pos: int, stop: int | None = None) -> int:
    """The first offset at or after ``pos`` that is not CR or LF: blank lines before a frame are skipped."""
    end = len(data) if stop is None else stop
    while pos < end and data[pos] in (_CR, _LF):
        pos += 1
    return pos


def _split_frames(text: str) -> list[str]:
    """Frame texts, split at every empty line whatever the line ends (E30)."""
    return text.split("\n\n") if "\r" not in text else _FRAME_SEP.split(text)


class AmiProtocol:
    """Incremental AMI stream parser and message encoder for one connection.

    Feed it every byte received with :meth:`receive_data`; it returns the frames completed so far.
    After a :class:`ProtocolError` the object is spent: make a new one for the next connection.
    ``speedups=False`` keeps to the pure-Python parser even when the C fast path is built (the frames
    are the same; tests and the benchmarks compare the two).

    Every byte it holds between reads is in one buffer, and that buffer never grows past
    ``max_frame_bytes``: a partial frame, the first line before its line end, an unfinished
    ``Response: Follows`` body. Blank lines between frames are dropped as they arrive.
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
        #: the first line ended in a bare LF: a Follows frame's headers are then told from its body by name
        self.lenient = False
        self._first_line_seen = False
        self._buf = bytearray()  # never starts with CR or LF between calls
        self._scan = 0  # where the next search for a frame end starts (never re-scan old bytes)
        self._follows_open = False  # _buf starts with a Follows frame whose --END COMMAND-- is not in yet
        self._marker_scan = 0  # where the next search for that marker starts
        self._keys = _KEYS
        self._failed: ProtocolError | None = None
        self._c_parse = _c_parse_simple if speedups else None  # same frames either way

    @property
    def pending_bytes(self) -> int:
        """Bytes received that do not form a complete frame yet (e.g. a frame cut by a close).

        Blank lines between frames are never counted: they are dropped as they arrive."""
        return len(self._buf)

    @property
    def resume_offset(self) -> int:
        """Where in the pending bytes the next search for a frame end starts: a frame that grows over
        many reads is searched once, never again from its start (parsing stays linear)."""
        return self._scan

    def receive_data(self, data: bytes) -> list[Frame]:
        """Take the next bytes from the server; return the frames they complete, in order."""
        if self._failed is not None:
            raise ProtocolError("the protocol failed earlier and cannot continue") from self._failed
        buf = self._buf
        src: bytes | bytearray
        if buf or not self._first_line_seen:
            buf += data
            src = buf
            if not self._first_line_seen and not self._read_first_line():
                return []
            if self._follows_open and not self._follows_marker_in():
                return []
        else:
            src = data  # nothing held: parse the read itself, no copy into the buffer first
        end, rest = self._frame_end(src)
        if rest < 0:
            self._hold(src, 0)
            self._scan = max(0, len(buf) - 2)
            return []
        if end > self.max_frame_bytes:
            self._check_frames(src, end)
        with memoryview(src) as view:
            text = str(view[:end], self.encoding, self.errors)
        try:
            frames = self._parse_region(text)
        except _FollowsFound:  # pre-14 Command output: its body may hold blank lines
            frames, cut = self._parse_with_follows(bytes(src[:end]))
            if cut is not None:
                rest = cut
                self._follows_open = True
                self._marker_scan = 0
        self._hold(src, rest)
        self._scan = 0
        return frames

    # -- internals -----------------------------------------------------------------------------

    def _fail(self, exc: ProtocolError) -> ProtocolError:
        self._failed = exc
        self._buf.clear()
        return exc

    def _check_size(self, size: int) -> None:
        if size > self.max_frame_bytes:
            limit = self.max_frame_bytes
            raise self._fail(FrameTooLargeError(f"frame of {size} bytes exceeds max_frame_bytes={limit}"))

    def _hold(self, src: bytes | bytearray, start: int) -> None:
        """Keep ``src[start:]`` (the start of the next frame, blank lines before it dropped) in the
        buffer, within max_frame_bytes."""
        if start < len(src) and src[start] in (_CR, _LF):
            start = _skip_blank(src, start)
        buf = self._buf
        if src is buf:
            del buf[:start]
        elif start < len(src):
            buf += memoryview(src)[start:]
        if len(buf) > self.max_frame_bytes:
            self._check_size(len(buf))

    def _check_frames(self, src: bytes | bytearray, end: int) -> None:
        """Each frame of ``src[:end]`` (larger than max_frame_bytes together) within the limit."""
        start = 0
        for sep in _FRAME_SEP_B.finditer(bytes(src[:end])):  # a copy: a bytearray stays resizable
            self._check_size(sep.start() - start)
            start = sep.end()
        self._check_size(end - start)

    def _frame_end(self, src: bytes | bytearray) -> tuple[int, int]:
        """Where the text of the complete frames in ``src`` ends, and where what follows them starts.

        (-1, -1) when no frame is complete. A frame ends at an empty line: a line end (CRLF or LF)
        followed by CRLF or by a bare LF (E30). Blank lines before that one are not part of the text.
        """
        scan = self._scan
        crlf = src.rfind(b"\n\r\n", scan)  # usually within the last frame of the read
        lf = src.rfind(b"\n\n", crlf + 2 if crlf >= 0 else scan)  # only a later end matters
        if lf >= 0:
            nl, rest = lf, lf + 2
        elif crlf >= 0:
            nl, rest = crlf, crlf + 3
        else:
            return -1, -1
        end = nl - 1 if nl and src[nl - 1] == _CR else nl
        while end and src[end - 1] == _LF:  # more blank lines before the last: the text ends at the first
            end -= 1
            if end and src[end - 1] == _CR:
                end -= 1
        return end, rest

    def _read_first_line(self) -> bool:
        """Consume the banner if there is one and note the line-end mode. False: need more bytes.

        The first line that is not a ``Key: value`` header is the banner, whatever product it names
        (E1, E31): ``Asterisk Call Manager/11.0.0``, ``Asterisk Call Manager Proxy/…``,
        ``PBX Call Manager/5.0.0``. ``protocol_version`` is the text after its last ``/``.
        """
        buf = self._buf
        del buf[: _skip_blank(buf, 0)]
        nl = buf.find(b"\n")
        if nl < 0:
            self._check_size(len(buf))
            return False
        self._first_line_seen = True
        self.lenient = buf[nl - 1] != _CR
        if not _HEADER_LINE_B.match(buf):
            line = bytes(buf[:nl]).decode(self.encoding, self.errors).strip()
            self.banner = line
            slash = line.rfind("/")
            self.protocol_version = (line[slash + 1 :].strip() or None) if slash >= 0 else None
            del buf[: _skip_blank(buf, nl + 1)]
        return True

    def _follows_marker_in(self) -> bool:
        """An unfinished Follows frame holds the buffer: has its ``--END COMMAND--`` arrived?"""
        buf = self._buf
        found = buf.find(_END_COMMAND_B, self._marker_scan)
        if found < 0:
            self._marker_scan = max(0, len(buf) - len(_END_COMMAND_B) + 1)
            self._check_size(len(buf))
            return False
        self._follows_open = False
        self._scan = max(self._scan, found)  # the frame's end comes after the marker
        return True

    def _parse_region(self, text: str) -> list[Frame]:
        if self.lenient:
            return self._parse_pieces(_split_frames(text), True)
        if self._c_parse is not None:
            c_frames = self._parse_with_c(self._c_parse, text)
            if c_frames is not None:
                return c_frames
            if text.isascii():  # then the C code refused it for a bare LF: only the general parser can
                return self._parse_pieces(_split_frames(text), True)
        pieces = text.split("\r\n\r\n")
        # Fast path for the common frame: well-formed "Key: value" lines with cached key names. Anything
        # else (raw lines, a new key name) goes to _parse_pieces. A bare LF (a frame ending in \r\n\n,
        # broken servers) is caught by counting: then the whole region is parsed again by the general
        # parser. Parsing keeps no state between pieces, so parsing a region twice is safe.
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
            frames.extend(self._parse_pieces((piece,), False))  # also caches the key names it meets
        if text.count("\n") != newlines:
            return self._parse_pieces(_split_frames(text), True)
        return frames

    def _parse_with_c(self, c_parse: _CParse, text: str) -> list[Frame] | None:
        """The C fast path: the same frames as the loop in _parse_region. None: it cannot take this text."""
        parsed = c_parse(text, self._keys, _FOLLOWS)
        if parsed is None:  # not one byte per character, or a bare LF: the Python parser decides
            return None
        items, slow = parsed
        if not slow:
            return cast("list[Frame]", items)
        frames: list[Frame] = []
        for item in items:
            if isinstance(item, str):  # a piece the C code left to the Python parser, in order
                frames.extend(self._parse_pieces((item,), False))
            else:
                frames.append(item)
        return frames

    def _parse_with_follows(self, region: bytes) -> tuple[list[Frame], int | None]:
        """A region that holds pre-14 ``Command`` output (E13): a frame whose first line is exactly
        ``Response: Follows`` runs over blank lines up to the piece holding ``--END COMMAND--``.

        Returns the frames, and the offset where an unfinished Follows frame starts (None: there is
        none). The bytes from there on stay in the buffer, where max_frame_bytes bounds them.
        """
        bounds: list[tuple[int, int]] = []
        start = 0
        for sep in _FRAME_SEP_B.finditer(region):
            bounds.append((start, sep.start()))
            start = sep.end()
        bounds.append((start, len(region)))
        frames: list[Frame] = []
        decode = self.encoding, self.errors
        i = 0
        while i < len(bounds):
            start, end = bounds[i]
            start = _skip_blank(region, start, end)
            if not _is_follows_at(region, start, end):
                if start < end:
                    self._check_size(end - start)
                    frames.append(self._parse_frame(region[start:end].decode(*decode), True))
                i += 1
                continue
            last = i
            while region.find(_END_COMMAND_B, max(start, bounds[last][0]), bounds[last][1]) < 0:
                last += 1
                if last == len(bounds):
                    return frames, start
            end = bounds[last][1]
            self._check_size(end - start)
            frames.append(self._parse_follows(region[start:end].decode(*decode)))
            i = last + 1
        return frames, None

    def _parse_pieces(self, pieces: Iterable[str], bare_lf: bool) -> list[Frame]:
        """Frames of ordinary pieces; ``bare_lf``: a bare LF may end a line too.

        Raises _FollowsFound at a Follows frame: its end is found on the bytes (_parse_with_follows)."""
        frames: list[Frame] = []
        parse = self._parse_frame
        for piece in pieces:
            if not piece or piece[0] in "\r\n":
                piece = piece.lstrip("\r\n")
                if not piece:
                    continue
            if _is_follows(piece):
                raise _FollowsFound
            frames.append(parse(piece, bare_lf))
        return frames

    def _parse_frame(self, text: str, bare_lf: bool) -> Frame:
        lines = text.replace("\r\n", "\n").split("\n") if bare_lf else text.split("\r\n")
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
                if len(keys) < _MAX_CACHED_KEYS and len(name) <= _MAX_CACHED_NAME:
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
            # every line may end in LF here, so only known header names can start the frame
            lines = text.replace("\r\n", "\n").split("\n")
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


class _FollowsFound(Exception):
    """Internal: a region holds a Follows frame, which only _parse_with_follows can take."""


def _is_follows(text: str) -> bool:
    """Whether a frame's first line is exactly ``Response: Follows`` (pre-14 Command output)."""
    return text.startswith(_FOLLOWS) and (text == _FOLLOWS or text.startswith(("\r\n", "\n"), len(_FOLLOWS)))


def _is_follows_at(region: bytes, start: int, end: int) -> bool:
    """Whether the piece ``region[start:end]`` starts with the line ``Response: Follows`` (E13)."""
    if not region.startswith(_FOLLOWS_B, start, end):
        return False
    after = start + len(_FOLLOWS_B)
    # the line must end there: CRLF, LF or the end of the piece (a lone CR does not end it)
    return after == end or region[after] == _LF or region.startswith(b"\r\n", after, end)


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
