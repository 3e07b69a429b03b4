"""Client options: the node original's names and defaults, plus this library's additions."""

from __future__ import annotations

import dataclasses
import ssl as _ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import HeaderInjectionError, InvalidMessageError
from .filters import check_filters
from .messages import BAD_CHARS


@dataclass
class AmiOptions:
    """Every option ``AsteriskAmi`` accepts. The first nine are the node original's, same defaults."""

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
    # seconds handlers may keep the reader from reading before one WARNING per episode (blocking.py);
    # None: never warn (stats still count)
    slow_handler_warning: float | None = 0.05

    def __post_init__(self) -> None:
        if self.port is None:
            self.port = 5039 if self.ssl else 5038
        self.port = int(self.port)
        if self.auth not in ("plain", "md5"):
            raise ValueError(f"auth must be 'plain' or 'md5', not {self.auth!r}")
        if self.max_queued_frames < 1 or self.max_frame_bytes < 1:
            raise ValueError("max_queued_frames and max_frame_bytes must be positive")
        if self.reconnect_after < 0:
            raise ValueError("reconnect_after must be >= 0")
        if self.slow_handler_warning is not None and not self.slow_handler_warning > 0:
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

    @classmethod
    def from_args(cls, options: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> AmiOptions:
        merged = {**(options or {}), **kwargs}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(merged) - names)
        if unknown:
            raise TypeError(f"unknown AsteriskAmi option(s): {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        return cls(**merged)
