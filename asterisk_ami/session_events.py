"""What a connection's session (``session.py``) and the client lifecycle above it (``lifecycle.py``) report.

Small frozen classes, one per kind of happening, so that a shell's switch over them is checked by mypy. A
shell acts on them in the order they come; :func:`library_events` says which ``ami_*`` events each one
stands for, the same for both shells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from .actions import ActionDone
from .errors import AuthenticationError, ConnectTimeoutError, EventFilterError
from .protocol import Frame

# -- one connection (AmiSession) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FramesReceived:
    """Frames from the server, in order (the login answer included): for ``ami_data`` and event names."""

    frames: list[Frame]


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """The login was accepted (``ami_login(True, frame)``)."""

    frame: Frame


@dataclass(frozen=True, slots=True)
class LoginActionsWanted:
    """Right after the login answer: the shell asks its login-actions providers (user code, run outside
    any lock) and answers with ``login_actions()``; actions queued meanwhile wait behind them."""


@dataclass(frozen=True, slots=True)
class LoginRefused:
    """The login or the MD5 challenge was refused (``ami_login(False, frame)``, then ``ami_socket_error``)."""

    frame: Frame
    error: AuthenticationError


@dataclass(frozen=True, slots=True)
class TimedOut:
    """No login answer within ``connect_timeout``, or no answer to a keepalive Ping (``ami_socket_timeout``)."""

    error: ConnectTimeoutError


@dataclass(frozen=True, slots=True)
class Failed:
    """The connection failed: a ``ProtocolError``, a write that timed out, a login that cannot be written,
    or a socket error (``ami_socket_error(error)``)."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class FilterRejected:
    """Asterisk refused (or did not answer) a filter of ``event_filters``: ``ami_socket_error(error)``;
    the connection stays up."""

    error: EventFilterError


@dataclass(frozen=True, slots=True)
class ServerClosed:
    """The server closed the connection (``ami_socket_end``)."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is over (``ami_socket_close(had_error)``); always the last event of a session.

    ``fatal``: the login was refused or cannot be written, so nobody reconnects by itself. ``error``:
    what ended it (None for a clean close: Logoff, or Asterisk closing)."""

    had_error: bool
    fatal: bool
    error: BaseException | None = field(default=None, compare=False)


# -- the client above the connections (ClientLifecycle) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenTransport:
    """The shell opens a TCP (or TLS) connection to the options' address now, for the lifecycle's new
    session, and reports it with ``connection_made()`` or ``connection_lost(error)``."""


@dataclass(frozen=True, slots=True)
class ConnectResult:
    """How the first login after ``connect()`` went: ``error`` None once logged in; else what a
    connect-and-wait raises (the refused login's ``AuthenticationError``, the failed attempt's error
    without ``reconnect``, ``NotConnectedError`` when the client was stopped first)."""

    error: BaseException | None


@dataclass(frozen=True, slots=True)
class Stopped:
    """The client is down for good, until ``connect()`` again: no connection, no reconnect. ``error``:
    what stopped it (None for ``disconnect()``/``destroy()``)."""

    error: BaseException | None


SessionEvent: TypeAlias = (
    FramesReceived
    | LoggedIn
    | LoginActionsWanted
    | LoginRefused
    | ActionDone
    | TimedOut
    | Failed
    | FilterRejected
    | ServerClosed
    | Closed
)
Event: TypeAlias = SessionEvent | OpenTransport | ConnectResult | Stopped
Emits = tuple[tuple[str, tuple[Any, ...]], ...]


def library_events(event: Event) -> Emits:
    """The ``ami_*`` events (name, arguments) a session event stands for; () for the others."""
    if isinstance(event, LoggedIn):
        return (("ami_login", (True, event.frame)),)
    if isinstance(event, LoginRefused):
        return (("ami_login", (False, event.frame)), ("ami_socket_error", (event.error,)))
    if isinstance(event, TimedOut):
        return (("ami_socket_timeout", ()),)
    if isinstance(event, Failed | FilterRejected):  # a refused filter leaves the connection up
        return (("ami_socket_error", (event.error,)),)
    if isinstance(event, ServerClosed):
        return (("ami_socket_end", ()),)
    if isinstance(event, Closed):
        return (("ami_socket_close", (event.had_error,)),)
    return ()


__all__ = [
    "ActionDone",
    "Closed",
    "ConnectResult",
    "Event",
    "Failed",
    "FilterRejected",
    "FramesReceived",
    "LoggedIn",
    "LoginActionsWanted",
    "LoginRefused",
    "OpenTransport",
    "ServerClosed",
    "SessionEvent",
    "Stopped",
    "TimedOut",
    "library_events",
]
