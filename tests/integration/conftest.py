"""Integration-test fixtures: a real Asterisk from ``scripts/asterisk_sandbox/``.

``asterisk_server`` starts a private Asterisk 22 once per session (downloaded from Debian sid
into ``.cache/asterisk`` on first use), or uses an external server when ``AMI_HOST``,
``AMI_PORT``, ``AMI_USERNAME`` and ``AMI_SECRET`` are set (optional: ``AMI_TLS_PORT``,
``AMI_CAFILE``, ``AMI_SYSTEM_USERNAME``, ``AMI_SYSTEM_SECRET``, ``AMI_NOCALL_USERNAME``,
``AMI_NOCALL_SECRET``; ``AMI_SANDBOX_DIR`` from
``scripts/asterisk-sandbox env`` also enables kill/restart).  If Asterisk cannot be obtained
the tests are skipped -- or fail when ``CI`` is set.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import ssl
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from asterisk_ami import AsteriskAmi

from ..helpers import wait_until

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE.parent.parent / "scripts"
if str(SCRIPTS) not in sys.path:  # the sandbox is a package in scripts/, not an installed one
    sys.path.insert(0, str(SCRIPTS))

from asterisk_sandbox import (  # noqa: E402
    AsteriskSandbox,
    Credentials,
    SandboxError,
    SandboxUnavailable,
    ensure_installation,
)

_EXTERNAL_VARS = ("AMI_HOST", "AMI_PORT", "AMI_USERNAME", "AMI_SECRET")
_prefetch_error: Exception | None = None


@dataclass(frozen=True)
class Accounts:
    """AMI accounts of the test server."""

    admin: Credentials  # read=all write=all
    system: Credentials | None  # read=system write=system (None: external server without one)
    no_call: Credentials | None  # read=every class but call, write=all (None: external server without one)
    wrong_secret: str  # a secret that is wrong for every account


@dataclass
class AsteriskServer:
    """What a test needs to reach the Asterisk under test, and to kill/restart it."""

    host: str
    port: int
    tls_port: int | None
    cafile: str | None
    accounts: Accounts
    version: str = ""
    sandbox: AsteriskSandbox | None = None  # when we control the process, else None

    @property
    def certfile(self) -> str | None:
        """The server's self-signed certificate (same file as ``cafile``)."""
        return self.cafile

    @property
    def managed(self) -> bool:
        """True when this session controls the Asterisk process (kill/start/restart work)."""
        return self.sandbox is not None

    @property
    def pid(self) -> int | None:
        """Pid of the managed Asterisk process (None if external or not running)."""
        return self.sandbox.pid if self.sandbox is not None and self.sandbox.is_running() else None

    def options(self, account: Credentials | None = None, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for a client logged in as ``account`` (default ``admin``) here (``extra`` on top)."""
        creds = account or self.accounts.admin
        return {"host": self.host, "port": self.port, "username": creds.username, "password": creds.secret, **extra}

    def logged_in_client(self, account: Credentials | None = None, **extra: Any) -> AsteriskAmi:
        """A threaded client of ``account`` (default ``admin``), connected and logged in (the caller destroys it)."""
        ami = AsteriskAmi(**self.options(account, **extra))
        logged_in = threading.Event()
        ami.on("ami_login", lambda ok, frame: logged_in.set() if ok else None)
        ami.connect()
        if not logged_in.wait(15):
            ami.destroy()
            raise AssertionError(f"no login at {self.host}:{self.port} within 15 s")
        return ami

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context trusting the server certificate (hostname: localhost or 127.0.0.1)."""
        if self.tls_port is None or self.cafile is None:
            pytest.skip("the AMI server under test has no TLS listener")
        return ssl.create_default_context(cafile=self.cafile)

    def _require_sandbox(self) -> AsteriskSandbox:
        if self.sandbox is None:
            pytest.skip("external AMI server: this session cannot kill or restart it")
        return self.sandbox

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to Asterisk (by its recorded pid); waits for exit on SIGKILL/SIGTERM."""
        self._require_sandbox().kill(sig)

    def start(self) -> None:
        """Start Asterisk again on the same ports (no-op if running); waits until AMI answers."""
        self._require_sandbox().start()

    def freeze(self) -> None:
        """SIGSTOP Asterisk and wait until it really is stopped (kill() returns before that)."""
        pid = self.pid
        assert pid is not None
        self.kill(signal.SIGSTOP)
        wait_until(lambda: _process_state(pid) in ("T", "t"), 5, "Asterisk to stop")

    def restart(self) -> None:
        """Stop Asterisk if running, start it on the same ports and wait until AMI answers."""
        self._require_sandbox().restart()


def _process_state(pid: int) -> str:
    """The state letter of ``pid`` from /proc ('R', 'S', 'T' = stopped, ...)."""
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rpartition(")")[2].split()[0]


def _is_integration(item: pytest.Item) -> bool:
    return HERE in item.path.parents


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in tests/integration with ``integration``."""
    for item in items:
        if _is_integration(item):
            item.add_marker(pytest.mark.integration)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Download Asterisk now (first run only) so it is not charged to a test's timeout."""
    global _prefetch_error
    if session.config.option.collectonly or os.environ.get("AMI_HOST"):
        return
    if not any(_is_integration(item) for item in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def log(message: str) -> None:
        if reporter is not None:
            reporter.write_line(f"asterisk sandbox: {message}")

    try:
        ensure_installation(log=log)
    except (SandboxError, OSError) as exc:
        _prefetch_error = exc


def _unavailable(reason: str) -> NoReturn:
    """Skip (locally) or fail (when CI is set) because Asterisk cannot be obtained."""
    message = f"Asterisk not available: {reason}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is an error)", pytrace=False)
    pytest.skip(message)


def _external_server() -> AsteriskServer:
    """Describe the server given by AMI_* environment variables."""
    missing = [name for name in _EXTERNAL_VARS if not os.environ.get(name)]
    if missing:
        pytest.fail(f"AMI_HOST is set but {', '.join(missing)} missing", pytrace=False)
    env = os.environ
    sandbox = None
    if env.get("AMI_SANDBOX_DIR"):
        try:
            sandbox = AsteriskSandbox.load(env["AMI_SANDBOX_DIR"])
        except SandboxError as exc:
            pytest.fail(f"AMI_SANDBOX_DIR: {exc}", pytrace=False)
    system = None
    if env.get("AMI_SYSTEM_USERNAME") and env.get("AMI_SYSTEM_SECRET"):
        system = Credentials(env["AMI_SYSTEM_USERNAME"], env["AMI_SYSTEM_SECRET"])
    no_call = None
    if env.get("AMI_NOCALL_USERNAME") and env.get("AMI_NOCALL_SECRET"):
        no_call = Credentials(env["AMI_NOCALL_USERNAME"], env["AMI_NOCALL_SECRET"])
    tls_port = env.get("AMI_TLS_PORT")
    return AsteriskServer(
        host=env["AMI_HOST"],
        port=int(env["AMI_PORT"]),
        tls_port=int(tls_port) if tls_port else None,
        cafile=env.get("AMI_CAFILE") or None,
        accounts=Accounts(
            admin=Credentials(env["AMI_USERNAME"], env["AMI_SECRET"]),
            system=system,
            no_call=no_call,
            wrong_secret="wrong-" + secrets.token_hex(6),
        ),
        version=sandbox.version if sandbox else "",
        sandbox=sandbox,
    )


@pytest.fixture(scope="session")
def asterisk_server() -> Iterator[AsteriskServer]:
    """A running Asterisk with AMI on 127.0.0.1 (plain + TLS); stopped at session end."""
    if os.environ.get("AMI_HOST"):
        yield _external_server()
        return
    if isinstance(_prefetch_error, SandboxUnavailable):
        _unavailable(str(_prefetch_error))
    if _prefetch_error is not None:
        pytest.fail(f"installing the Asterisk sandbox failed: {_prefetch_error}", pytrace=False)
    state_dir = Path(tempfile.mkdtemp(prefix="asterisk-sandbox-"))
    sandbox = AsteriskSandbox(state_dir, die_with_parent=True)
    try:
        sandbox.start()
    except SandboxUnavailable as exc:
        shutil.rmtree(state_dir, ignore_errors=True)
        _unavailable(str(exc))
    except (SandboxError, OSError) as exc:
        pytest.fail(f"Asterisk sandbox failed to start (state kept in {state_dir}): {exc}", pytrace=False)
    server = AsteriskServer(
        host=sandbox.host,
        port=sandbox.port,
        tls_port=sandbox.tls_port,
        cafile=str(sandbox.cafile) if sandbox.cafile else None,
        accounts=Accounts(
            admin=sandbox.admin,
            system=sandbox.system,
            no_call=sandbox.nocall,
            wrong_secret=sandbox.wrong_secret,
        ),
        version=sandbox.version,
        sandbox=sandbox,
    )
    try:
        yield server
    finally:
        sandbox.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
