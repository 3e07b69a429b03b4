"""The threaded client's old import path: ``asterisk_ami.client.AsteriskAmi`` is ``asterisk_ami.sync``'s."""

from .session import redact
from .sync.client import AsteriskAmi

__all__ = ["AsteriskAmi", "redact"]
