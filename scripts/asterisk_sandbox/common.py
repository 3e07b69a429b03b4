"""What every part of the sandbox shares: default paths, the address, the errors, an AMI account."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_CACHE_DIR = Path(os.environ.get("ASTERISK_SANDBOX_CACHE") or REPO_ROOT / ".cache" / "asterisk")
DEFAULT_CLI_STATE_DIR = DEFAULT_CACHE_DIR / "cli"
HOST = "127.0.0.1"
STATE_FILE = "sandbox.json"

Log = Callable[[str], None]


def quiet(_: str) -> None:
    """Default progress sink: say nothing."""


class SandboxError(RuntimeError):
    """Asterisk could not be started or controlled."""


class SandboxUnavailable(SandboxError):
    """Asterisk cannot be obtained here (not Debian, no network, download failed, ...)."""


class PortInUse(SandboxError):
    """Asterisk could not bind its AMI port(s)."""


@dataclass(frozen=True)
class Credentials:
    """An AMI account."""

    username: str
    secret: str
