"""asterisk_ami: an Asterisk Manager Interface client (a port of node's asterisk-ami)."""

from .actions import ActionResult
from .client import AsteriskAmi
from .errors import (
    ActionError,
    ActionTimeoutError,
    AmiConnectionError,
    AmiError,
    AuthenticationError,
    ConnectionLostError,
    ConnectTimeoutError,
    EventFilterError,
    FrameTooLargeError,
    HeaderInjectionError,
    InvalidMessageError,
    MessageTooLargeError,
    NotConnectedError,
    PermissionDeniedError,
    ProtocolError,
    UsageError,
)
from .options import AmiOptions
from .protocol import AmiProtocol, Frame

__version__ = "0.1.0"

__all__ = [
    "ActionError",
    "ActionResult",
    "ActionTimeoutError",
    "AmiConnectionError",
    "AmiError",
    "AmiOptions",
    "AmiProtocol",
    "AsteriskAmi",
    "AuthenticationError",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "EventFilterError",
    "Frame",
    "FrameTooLargeError",
    "HeaderInjectionError",
    "InvalidMessageError",
    "MessageTooLargeError",
    "NotConnectedError",
    "PermissionDeniedError",
    "ProtocolError",
    "UsageError",
    "__version__",
]
