"""asterisk_ami: an Asterisk Manager Interface client (a port of node's asterisk-ami)."""

from .actions import ActionResult
from .errors import (
    ActionError,
    ActionNotSentError,
    ActionTimeoutError,
    AmiConnectionError,
    AmiError,
    AuthenticationError,
    CatalogueError,
    ConnectionLostError,
    ConnectTimeoutError,
    EventFilterError,
    FrameTooLargeError,
    HeaderInjectionError,
    InvalidMessageError,
    MessageTooLargeError,
    MissingParameterError,
    NotConnectedError,
    PermissionDeniedError,
    ProtocolError,
    UsageError,
    WriteBufferFullError,
    WriteTimeoutError,
)
from .lifecycle import ClientState
from .options import AmiOptions, AmiOptionsDict
from .originate import OriginateResult
from .protocol import AmiProtocol, Frame
from .session_events import (
    Closed,
    ConnectResult,
    Failed,
    FilterRejected,
    FramesReceived,
    LoggedIn,
    LoginActionsWanted,
    LoginRefused,
    OpenTransport,
    ServerClosed,
    Stopped,
    TimedOut,
)
from .sync import AsteriskAmi, EventStream

__version__ = "0.1.0"
"""This release's version (the distribution ``asterisk-ami-client``)."""

__all__ = [
    "ActionError",
    "ActionNotSentError",
    "ActionResult",
    "ActionTimeoutError",
    "AmiConnectionError",
    "AmiError",
    "AmiOptions",
    "AmiOptionsDict",
    "AmiProtocol",
    "AsteriskAmi",
    "AuthenticationError",
    "CatalogueError",
    "ClientState",
    "Closed",
    "ConnectResult",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "EventFilterError",
    "EventStream",
    "Failed",
    "FilterRejected",
    "Frame",
    "FrameTooLargeError",
    "FramesReceived",
    "HeaderInjectionError",
    "InvalidMessageError",
    "LoggedIn",
    "LoginActionsWanted",
    "LoginRefused",
    "MessageTooLargeError",
    "MissingParameterError",
    "NotConnectedError",
    "OpenTransport",
    "OriginateResult",
    "PermissionDeniedError",
    "ProtocolError",
    "ServerClosed",
    "Stopped",
    "TimedOut",
    "UsageError",
    "WriteBufferFullError",
    "WriteTimeoutError",
    "__version__",
]
