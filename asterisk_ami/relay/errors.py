"""The relay's errors: part of the library's ``AmiError`` tree (``asterisk_ami.errors``)."""

from __future__ import annotations

from ..errors import ActionError, AmiError


class RelayError(AmiError):
    """Something about the relay or the bus (NATS, JetStream) failed."""


class RelayConfigError(RelayError, ValueError):
    """A relay configuration (command line, file or ``RelayConfig``) is wrong; the message says where.
    It never echoes a secret."""


class ActionNotAllowedError(ActionError):
    """The relay refused an action by its allow/deny list for that PBX (or because it would change the
    relay's own AMI session: Login, Logoff, Challenge, Events, Filter, WaitEvent)."""
