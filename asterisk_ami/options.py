"""Client options: the node original's names and defaults, plus this library's additions.

:class:`AmiOptions` is the one list of options; :class:`AmiOptionsDict` is the same list for a type
checker (``AsteriskAmi(reconect=True)`` is a mypy error); a test keeps the two equal.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import ssl as _ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from .errors import HeaderInjectionError, InvalidMessageError
from .filters import check_filters
from .messages import BAD_CHARS

if TYPE_CHECKING:
    from .catalogue import Catalogue


@dataclass
class AmiOptions:
    """Every option ``AsteriskAmi`` accepts (both shells). The first nine are the node original's, same defaults."""

    port: int | None = None  # 5038, or 5039 when ssl is on
    host: str = "localhost"
    username: str = "username"
    password: str = field(default="password", repr=False)
    debug: bool = False
    reconnect: bool = False
    reconnect_after: float = 3000  # milliseconds, as in the original
    events: bool | str = True  # True/False -> Events: on/off; a str is sent as the event-class mask
    identifier: str | None = None
    ami_encoding: str = "utf-8"
    # additions
    max_frame_bytes: int = 1 << 20
    connect_timeout: float = 10.0  # seconds for TCP connect + banner + login
    # dispatch queue bound; the reader stops reading when it is full. ~1.5 KB a parsed frame, so this keeps
    # a stalled handler's backlog near 3 MB; the kernel's socket buffers hold more before Asterisk waits
    max_queued_frames: int = 2_000
    auth: Literal["plain", "md5"] = "plain"
    ssl: bool | _ssl.SSLContext = False
    ping_interval: float | None = None  # seconds idle before a keepalive Ping; None: off
    ping_timeout: float = 5.0
    reconnect_max: float | None = None  # milliseconds; set for exponential backoff with jitter
    logoff_timeout: float = 2.0  # seconds disconnect() waits for Goodbye before closing
    action_timeout: float | None = None  # default timeout of action(); None: wait forever
    # server-side filters, written with Action: Filter after every login (filters.py has the syntax)
    event_filters: Sequence[str] = ()
    # seconds handlers may keep the reader from reading before one WARNING per episode (backpressure.py);
    # None: never warn (stats still count)
    slow_handler_warning: float | None = 0.05
    # a write Asterisk does not take within this many seconds kills the connection (WriteTimeoutError)
    write_timeout: float = 10.0
    # bytes waiting to be written (or queued for the login) past which send() refuses and action() waits
    max_write_bytes: int = 1 << 20
    # the logger the client logs through (each line names the connection); default: "asterisk_ami"
    logger: logging.Logger | None = field(default=None, repr=False)
    # the catalogue actions are checked against: None picks the release from the server's banner; a
    # release ("22"), a path to a server's core-en_US.xml, or a Catalogue pins it; False checks nothing
    catalogue: str | os.PathLike[str] | Catalogue | bool | None = None
    # True: an action missing a required parameter raises MissingParameterError (else a warning)
    strict_actions: bool = False

    def __post_init__(self) -> None:
        if self.port is None:
            self.port = 5039 if self.ssl else 5038
        self.port = int(self.port)
        if self.auth not in ("plain", "md5"):
            raise ValueError(f"auth must be 'plain' or 'md5', not {self.auth!r}")
        if self.max_queued_frames < 1 or self.max_frame_bytes < 1 or self.max_write_bytes < 1:
            raise ValueError("max_queued_frames, max_frame_bytes and max_write_bytes must be positive")
        if self.reconnect_after < 0:
            raise ValueError("reconnect_after must be >= 0")
        for name in ("connect_timeout", "ping_timeout", "logoff_timeout", "write_timeout"):
            setattr(self, name, check_timeout(getattr(self, name), name, allow_none=False))
        for name in ("ping_interval", "action_timeout", "slow_handler_warning"):
            setattr(self, name, check_timeout(getattr(self, name), name))
        if self.slow_handler_warning == 0:
            raise ValueError("slow_handler_warning must be positive seconds, or None (no warning)")
        "".encode(self.ami_encoding)  # LookupError now rather than on the reader thread
        self.event_filters = check_filters(self.event_filters, self.ami_encoding)
        # these go into the Login action: refuse CR/LF/NUL now, by name, never echoing the value
        for name in ("username", "password", "events"):
            value = getattr(self, name)
            if not isinstance(value, str):
                continue
            if BAD_CHARS.search(value):
                raise HeaderInjectionError(f"option {name!r} contains CR, LF or NUL")
            try:
                value.encode(self.ami_encoding)
            except UnicodeEncodeError:  # its message would quote a character of the secret
                raise InvalidMessageError(f"option {name!r} cannot be written in {self.ami_encoding}") from None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to connect to; the port is resolved from ``ssl`` when not given."""
        return self.host, int(self.port or 0)

    @property
    def label(self) -> str:
        """How log lines name this client's connection: ``host:port``, and the ``identifier`` if set."""
        text = f"{self.host}:{self.port}"
        return f"{text} {self.identifier}" if self.identifier else text

    @classmethod
    def from_args(cls, options: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> AmiOptions:
        merged = {**(options or {}), **kwargs}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(merged) - names)
        if unknown:
            raise TypeError(f"unknown AsteriskAmi option(s): {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        return cls(**merged)


class AmiOptionsDict(TypedDict, total=False):
    """The keyword options of both clients, for type checkers (the same names as :class:`AmiOptions`)."""

    port: int | None
    host: str
    username: str
    password: str
    debug: bool
    reconnect: bool
    reconnect_after: float
    events: bool | str
    identifier: str | None
    ami_encoding: str
    max_frame_bytes: int
    connect_timeout: float
    max_queued_frames: int
    auth: Literal["plain", "md5"]
    ssl: bool | _ssl.SSLContext
    ping_interval: float | None
    ping_timeout: float
    reconnect_max: float | None
    logoff_timeout: float
    action_timeout: float | None
    event_filters: Sequence[str]
    slow_handler_warning: float | None
    write_timeout: float
    max_write_bytes: int
    logger: logging.Logger | None
    catalogue: str | os.PathLike[str] | Catalogue | bool | None
    strict_actions: bool


def check_timeout(value: object, name: str = "timeout", *, allow_none: bool = True) -> float | None:
    """A timeout as the user passed it, checked where it was passed: seconds (an int or a float, not a
    bool), finite and not negative; None means "no timeout" where ``allow_none``. Returns it as a float."""
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be a number of seconds, not None")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds (or None), not {type(value).__name__} {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"{name} must be 0 or more seconds, not {value!r}")
    if math.isinf(seconds):
        if allow_none:
            return None  # no timeout, as None says
        raise ValueError(f"{name} must be a finite number of seconds, not {value!r}")
    return seconds
