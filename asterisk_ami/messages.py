"""Sans-IO AMI messages out: an action as bytes, ActionIDs, the Login actions. No sockets, threads or clocks.

Asterisk's limits on what it reads: a line of at most 1024 bytes with its CRLF, at most 128 header
lines; a bare LF ends a line there too, so CR, LF and NUL are refused in keys and values.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping
from itertools import count

from .errors import HeaderInjectionError, InvalidMessageError, MessageTooLargeError

#: Asterisk reads a line into ``inbuf[1025]``: 1024 bytes with the CRLF is the longest it accepts
MAX_LINE_BYTES = 1024
#: ``AST_MAX_MANHEADERS``: more header lines than this and Asterisk rejects the message
MAX_HEADERS = 128
#: CR, LF or NUL: Asterisk ends a line at a bare LF, so any of them in a key or value could inject a header
BAD_CHARS = re.compile("[\r\n\x00]")
_BAD_KEY_RE = re.compile(r"[\s:]")


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
        if isinstance(key, str) and key.lower() == "actionid":  # other keys are encode_message's to refuse
            return key, None if value is None else str(value)
    return None, None


#: what a header value may be: written as ``str()`` writes it (``True`` as ``True``, ``5`` as ``5``)
SCALARS = (str, int, float)  # bool is an int


def _values(value: object) -> Iterable[object]:
    if isinstance(value, list | tuple):
        return value
    return (value,)


def _text(key: str, item: object) -> str:
    """One header value as text; anything whose ``str()`` is a Python repr (bytes, dict, set, objects)
    is refused, naming the header and the type but never the value (it may be a secret)."""
    if isinstance(item, str):
        return item
    if isinstance(item, SCALARS):
        return str(item)
    kind = type(item).__name__
    hint = ": decode it first" if isinstance(item, bytes | bytearray | memoryview) else ""
    if isinstance(item, list | tuple):
        hint = ": repeated headers are one list of values, not nested lists"
    raise InvalidMessageError(
        f"value of header {key!r} is a {kind}{hint}; a value is a str, int, float or bool (a list or tuple"
        " of them for repeated headers)"
    )


def encode_message(message: Mapping[str, object], encoding: str = "utf-8") -> bytes:
    """The bytes for one action: ``Key: value`` lines and a blank line.

    Keys are written as given (Asterisk compares header names case-insensitively). A list or tuple
    value becomes repeated headers; ``None`` values are left out. A value is a ``str``, ``int``,
    ``float`` or ``bool`` (written as ``str()`` writes it). Raises an ``InvalidMessageError`` subclass,
    naming the key but never echoing the value (it may be a secret), when a key is not a non-empty
    ``str``, a value is of another type (bytes, dict, set, objects: their ``str()`` is a Python repr),
    or the message could inject a header or would be rejected by Asterisk for its size.
    """
    lines: list[bytes] = []
    for key, value in message.items():
        if not isinstance(key, str):
            raise InvalidMessageError(f"header names are strings; one is a {type(key).__name__}: {key!r}")
        if not key:
            raise InvalidMessageError("a header name is empty")
        if BAD_CHARS.search(key):
            raise HeaderInjectionError(f"header name {key!r} contains CR, LF or NUL")
        if _BAD_KEY_RE.search(key):
            raise InvalidMessageError(f"header name {key!r} contains ':' or whitespace")
        if value is None:
            continue
        for item in _values(value):
            if item is None:
                continue
            text = item if item.__class__ is str else _text(key, item)
            if BAD_CHARS.search(text):
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
