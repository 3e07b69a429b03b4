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
    ProtocolError,
    UsageError,
)
from .options import AmiOptions
from .protocol import AmiProtocol, Frame

__version__ = "0.1.0"
"""This release's version (the distribution ``asterisk-ami-client``)."""

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
    "ProtocolError",
    "UsageError",
    "__version__",
]
