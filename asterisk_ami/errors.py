"""The library's error hierarchy: every error it raises or emits is an ``AmiError``.

The subclasses also derive from the matching built-in (``ValueError``, ``ConnectionError``,
``TimeoutError``) so that code written against plain Python exceptions keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # protocol.py and actions.py import this module
    from .actions import ActionResult
    from .protocol import Frame


class AmiError(Exception):
    """Base class of every error raised or emitted by asterisk_ami."""


class ProtocolError(AmiError):
    """The server sent bytes that break the AMI protocol."""


class FrameTooLargeError(ProtocolError):
    """A frame from the server grew past ``max_frame_bytes``; the connection is closed."""


class InvalidMessageError(AmiError, ValueError):
    """A message given to ``send()`` cannot be written safely; nothing was sent."""


class HeaderInjectionError(InvalidMessageError):
    """A key or value contains CR, LF or NUL, which would start a new header or action."""


class MessageTooLargeError(InvalidMessageError):
    """A line over 1024 bytes or a message over 128 headers: Asterisk would reject it."""


class AmiConnectionError(AmiError, ConnectionError):
    """Base of the connection failures."""


class NotConnectedError(AmiConnectionError):
    """There is no connection to write to."""


class ConnectionLostError(AmiConnectionError):
    """The connection closed while an action was waiting for its result."""


class ActionNotSentError(ConnectionLostError, NotConnectedError):
    """The connection ended before the action was written (it waited for the login): Asterisk never saw
    it, so sending it again is safe. ``__cause__`` is what ended the connection."""


class AuthenticationError(AmiError):
    """Asterisk refused the login; ``frame`` is its response."""

    def __init__(self, message: str, frame: Frame | None = None) -> None:
        super().__init__(message)
        self.frame = frame


class ActionError(AmiError):
    """Asterisk answered an action with ``Response: Error``.

    ``frame`` is the response; ``result`` the full ``ActionResult`` (``Command`` errors carry output).
    """

    def __init__(self, message: str, frame: Frame | None = None, result: ActionResult | None = None) -> None:
        super().__init__(message)
        self.frame = frame
        self.result = result


class PermissionDeniedError(ActionError):
    """Asterisk refused the action with ``Message: Permission denied``: the account's manager.conf
    ``write`` lacks the action's class (or the action is not loaded). ``action`` is the action's name."""

    def __init__(
        self, message: str, action: str, frame: Frame | None = None, result: ActionResult | None = None
    ) -> None:
        super().__init__(message, frame, result)
        self.action = action


class EventFilterError(ActionError):
    """Asterisk refused a filter of ``event_filters`` (or did not answer it); the connection stays up and
    the events that filter was for are not filtered. ``expression`` is the filter as given."""

    def __init__(self, message: str, expression: str, frame: Frame | None = None) -> None:
        super().__init__(message, frame)
        self.expression = expression


class UsageError(AmiError, RuntimeError):
    """The API was called in a way that cannot work (e.g. a blocking wait on the reader thread)."""


class ActionTimeoutError(AmiError, TimeoutError):
    """An action got no (complete) result within its timeout."""


class ConnectTimeoutError(AmiConnectionError, TimeoutError):
    """TCP connect, banner or login did not complete within ``connect_timeout``."""


class WriteTimeoutError(AmiConnectionError, TimeoutError):
    """A write to Asterisk could not complete within ``write_timeout``: Asterisk stopped reading. The
    connection is treated as dead (closed, and reconnected when enabled)."""


class WriteBufferFullError(AmiConnectionError):
    """``send()`` refused an action: more than ``max_write_bytes`` are already waiting to be written
    (Asterisk is not reading, or the login is not answered yet). Nothing was queued. Wait for room:
    ``await ami.drain()`` (asyncio), or use ``action()``/``request()``, which wait by themselves."""


class MissingParameterError(InvalidMessageError):
    """With ``strict_actions=True``: the action lacks a parameter its release requires; nothing was sent."""

    def __init__(self, message: str, *, action: str, parameter: str) -> None:
        super().__init__(message)
        self.action = action
        self.parameter = parameter


class CatalogueError(AmiError, ValueError):
    """A catalogue could not be loaded: an unknown release, or an XML file that cannot be read."""


class CatalogueWarning(UserWarning):
    """Not an error: ``on()`` was given an event name no release's catalogue knows (it would never fire),
    or an action has a problem by its release's catalogue (a missing or unknown parameter, an unknown
    action) and is sent anyway. Each is given once. Silence them with
    ``warnings.filterwarnings("ignore", category=CatalogueWarning)``."""
