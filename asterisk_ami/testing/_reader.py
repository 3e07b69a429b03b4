"""How the fake server splits a client's bytes into messages: Asterisk's line rules, not the client parser's."""

from __future__ import annotations

from ..protocol import MAX_HEADERS, MAX_LINE_BYTES

_BLANKS = bytes(range(1, 33))  # ast_skip_blanks skips every byte below '!'


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
