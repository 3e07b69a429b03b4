"""A private, throw-away Asterisk 22 for integration tests (standard library only).

The sandbox prefers an ``asterisk`` binary already on ``PATH``.  Otherwise it fetches
Asterisk and the libraries it needs from Debian *sid* with a private apt configuration
(the system apt state is never touched), unpacks the packages with ``dpkg -x`` under
``<repo>/.cache/asterisk/root`` and runs the binary through the unpacked dynamic loader,
so sid's libc never mixes with the host's.

Each sandbox owns a state directory holding generated configuration (AMI on 127.0.0.1
only, plain and TLS), a self-signed certificate, logs and ``sandbox.json`` (pid, ports,
credentials) so another process -- e.g. the ``scripts/asterisk-sandbox`` CLI -- can find
and stop it again.  Processes are only ever signalled by their recorded pid.

Environment: ``ASTERISK_SANDBOX_CACHE`` (download cache, default ``<repo>/.cache/asterisk``),
``ASTERISK_SANDBOX_MIRROR`` (Debian archive URI, default: read from the host's apt sources).

Modules: ``common`` (paths, errors, ``Credentials``), ``fetch`` (finding or downloading Asterisk:
``ensure_installation``), ``config`` (the generated configuration and test dialplan), ``process``
(``AsteriskSandbox``), ``cli`` (``main``, used by ``scripts/asterisk-sandbox``).
"""

from .cli import main
from .common import (
    DEFAULT_CACHE_DIR,
    DEFAULT_CLI_STATE_DIR,
    HOST,
    REPO_ROOT,
    STATE_FILE,
    Credentials,
    Log,
    PortInUse,
    SandboxError,
    SandboxUnavailable,
)
from .config import DIALPLAN, INDICATIONS, MODULES, QUEUES, make_self_signed_cert
from .fetch import KEYRING, SUITE, AptFetcher, Installation, ensure_installation, find_debian_mirror
from .process import BANNER_PREFIX, AsteriskSandbox, free_port

__all__ = [
    "BANNER_PREFIX",
    "DEFAULT_CACHE_DIR",
    "DEFAULT_CLI_STATE_DIR",
    "DIALPLAN",
    "HOST",
    "INDICATIONS",
    "KEYRING",
    "MODULES",
    "QUEUES",
    "REPO_ROOT",
    "STATE_FILE",
    "SUITE",
    "AptFetcher",
    "AsteriskSandbox",
    "Credentials",
    "Installation",
    "Log",
    "PortInUse",
    "SandboxError",
    "SandboxUnavailable",
    "ensure_installation",
    "find_debian_mirror",
    "free_port",
    "main",
    "make_self_signed_cert",
]
