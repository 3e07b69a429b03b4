"""One private Asterisk process: state directory, start (waiting for AMI), kill, stop, restart.

Each sandbox owns a state directory holding generated configuration (AMI on 127.0.0.1 only, plain
and TLS), a self-signed certificate, logs and ``sandbox.json`` (pid, ports, credentials) so another
process -- e.g. the ``scripts/asterisk-sandbox`` CLI -- can find and stop it again.  Processes are
only ever signalled by their recorded pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .common import (
    DEFAULT_CACHE_DIR,
    HOST,
    STATE_FILE,
    Credentials,
    Log,
    PortInUse,
    SandboxError,
    quiet,
)
from .config import READ_WITHOUT_CALL, config_files, make_self_signed_cert, manager_conf
from .fetch import Installation, ensure_installation

BANNER_PREFIX = b"Asterisk Call Manager/"


def free_port(host: str = HOST) -> int:
    """Return a TCP port that is currently free on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _ami_messages(sock: socket.socket) -> Iterator[dict[str, str]]:
    """Yield AMI messages (after the banner) read from ``sock``."""
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buffer += chunk
        raw, buffer = buffer.split(b"\r\n\r\n", 1)
        message: dict[str, str] = {}
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            message.setdefault(key.strip(), value.strip())
        yield message


def _read_banner(sock: socket.socket) -> bytes:
    """Read the AMI banner line."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data.strip()


class AsteriskSandbox:
    """One private Asterisk process with generated configuration under ``state_dir``."""

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        cache_dir: Path | str = DEFAULT_CACHE_DIR,
        host: str = HOST,
        port: int | None = None,
        tls_port: int | None = None,
        startup_timeout: float = 60.0,
        prefer_system: bool = True,
        die_with_parent: bool = False,
        log: Log = quiet,
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="asterisk-sandbox-"))
        self.cache_dir = Path(cache_dir)
        self.host = host
        self.port = port or free_port(host)
        self.tls_port: int | None = tls_port or free_port(host)
        while self.tls_port == self.port:
            self.tls_port = free_port(host)
        self.startup_timeout = startup_timeout
        self.prefer_system = prefer_system
        self.die_with_parent = die_with_parent
        self.log = log
        self.admin = Credentials("admin", secrets.token_hex(12))
        self.system = Credentials("sysonly", secrets.token_hex(12))
        self.nocall = Credentials("nocall", secrets.token_hex(12))  # read: every class but call
        self.wrong_secret = "wrong-" + secrets.token_hex(6)
        self.installation: Installation | None = None
        self.version = ""
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._auto_ports = port is None and tls_port is None  # may pick others if taken on first start
        self._messages_offset = 0

    # ----------------------------------------------------------------- paths

    @property
    def etc_dir(self) -> Path:
        """Directory of the generated configuration."""
        return self.state_dir / "etc"

    @property
    def config_file(self) -> Path:
        """The generated asterisk.conf (passed with -C; also identifies our process)."""
        return self.etc_dir / "asterisk.conf"

    @property
    def certfile(self) -> Path:
        """Self-signed certificate of the TLS listener (also the CA file for clients)."""
        return self.state_dir / "tls" / "cert.pem"

    @property
    def keyfile(self) -> Path:
        """Private key of the TLS listener."""
        return self.state_dir / "tls" / "key.pem"

    @property
    def cafile(self) -> Path | None:
        """CA file for TLS clients, or None when TLS is disabled."""
        return self.certfile if self.tls_port else None

    @property
    def log_file(self) -> Path:
        """Asterisk's stdout/stderr."""
        return self.state_dir / "asterisk.out"

    @property
    def messages_file(self) -> Path:
        """Asterisk's own log (errors and warnings)."""
        return self.state_dir / "log" / "messages.log"

    # ----------------------------------------------------------------- persistence

    def save(self) -> None:
        """Write ``sandbox.json`` so other processes can find this sandbox."""
        data = {
            "host": self.host,
            "port": self.port,
            "tls_port": self.tls_port,
            "cafile": str(self.cafile) if self.cafile else None,
            "admin": asdict(self.admin),
            "system": asdict(self.system),
            "nocall": asdict(self.nocall),
            "wrong_secret": self.wrong_secret,
            "pid": self.pid,
            "version": self.version,
            "config_file": str(self.config_file),
            "log_file": str(self.log_file),
            "cache_dir": str(self.cache_dir),
            "installation": asdict(self.installation) if self.installation else None,
        }
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # holds the secrets
        tmp = self.state_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.state_dir / STATE_FILE)

    @classmethod
    def load(cls, state_dir: Path | str, **kwargs: Any) -> AsteriskSandbox:
        """Recreate a sandbox object from a state directory written by :meth:`save`."""
        state_dir = Path(state_dir)
        try:
            data = json.loads((state_dir / STATE_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise SandboxError(f"no sandbox state in {state_dir}: {exc}") from exc
        kwargs.setdefault("cache_dir", data["cache_dir"])
        sandbox = cls(state_dir, host=data["host"], port=data["port"], tls_port=data["tls_port"], **kwargs)
        sandbox.tls_port = data["tls_port"]
        sandbox.admin = Credentials(**data["admin"])
        sandbox.system = Credentials(**data["system"])
        if data.get("nocall"):  # state files written before the account existed lack it
            sandbox.nocall = Credentials(**data["nocall"])
        sandbox.wrong_secret = data["wrong_secret"]
        sandbox.pid = data["pid"]
        sandbox.version = data["version"]
        if data["installation"]:
            sandbox.installation = Installation(**data["installation"])
        return sandbox

    # ----------------------------------------------------------------- configuration

    def write_config(self) -> None:
        """Generate asterisk.conf, manager.conf, modules.conf, the dialplan and friends."""
        assert self.installation is not None
        state = self.state_dir
        state.mkdir(mode=0o700, parents=True, exist_ok=True)  # manager.conf holds the secrets
        for sub in ("etc", "run", "log", "spool", "lib", "keys", "agi", "cache", "tls"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        if self.tls_port and not self._ensure_cert():
            self.log("no openssl or cryptography: TLS listener disabled")
            self.tls_port = None
        directories = {
            "astetcdir": self.etc_dir,
            "astmoddir": self.installation.moddir,
            "astvarlibdir": state / "lib",
            "astdbdir": state / "lib",
            "astkeydir": state / "keys",
            "astdatadir": self.installation.datadir,
            "astagidir": state / "agi",
            "astspooldir": state / "spool",
            "astrundir": self._run_dir(),
            "astlogdir": state / "log",
            "astsbindir": Path(self.installation.binary).parent,
            "astcachedir": state / "cache",
        }
        manager = manager_conf(
            host=self.host,
            port=self.port,
            tls_port=self.tls_port,
            certfile=self.certfile,
            keyfile=self.keyfile,
            accounts=(
                (self.admin, "all", "all"),
                (self.system, "system", "system"),
                (self.nocall, READ_WITHOUT_CALL, "all"),
            ),
        )
        for name, text in config_files(directories, manager).items():
            (self.etc_dir / name).write_text(text)

    def _ensure_cert(self) -> bool:
        """Create the self-signed certificate unless it exists; False if that is impossible."""
        return self.certfile.exists() or make_self_signed_cert(self.certfile, self.keyfile)

    def _run_dir(self) -> Path:
        """Run directory; kept short because the control socket path is limited to 107 bytes."""
        run_dir = self.state_dir / "run"
        if len(str(run_dir / "asterisk.ctl")) > 100:
            link = Path(tempfile.gettempdir()) / f"asterisk-sandbox-run-{os.getuid()}-{self.port}"
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(run_dir)
            return link
        return run_dir

    # ----------------------------------------------------------------- process control

    def install(self) -> Installation:
        """Locate or download Asterisk (cached) and remember its version."""
        if self.installation is None:
            self.installation = ensure_installation(self.cache_dir, prefer_system=self.prefer_system, log=self.log)
        if not self.version:
            self.version = self.installation.version()
        return self.installation

    def is_running(self) -> bool:
        """True while our Asterisk process (recorded pid) is alive."""
        if self.pid is None:
            return False
        if self._proc is not None and self._proc.pid == self.pid:
            return self._proc.poll() is None
        return _pid_is_ours(self.pid, self.config_file)

    def start(self) -> None:
        """Start Asterisk (no-op if already running) and wait until AMI is fully booted."""
        if self.is_running():
            return
        for attempt in range(3):
            try:
                self._spawn()
                return
            except PortInUse:
                if not self._auto_ports or attempt == 2:
                    raise
                self.log(f"port {self.port} or {self.tls_port} was taken meanwhile, trying others")
                self.port, self.tls_port = free_port(self.host), free_port(self.host)

    def _spawn(self) -> None:
        """Start the process with freshly written configuration and wait for readiness."""
        installation = self.install()
        self.write_config()
        cmd = installation.command("-C", str(self.config_file), "-f", "-n")
        if self.die_with_parent and shutil.which("setpriv"):
            cmd = ["setpriv", "--pdeathsig", "SIGTERM", "--", *cmd]
        with contextlib.suppress(OSError):
            self._messages_offset = self.messages_file.stat().st_size
        with self.log_file.open("ab") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(cmd)}\n".encode())
            out.flush()
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=not self.die_with_parent,
            )
        self.pid = self._proc.pid
        self.save()
        try:
            self.wait_ready(self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self._auto_ports = False  # from now on the ports are part of the contract (restart)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until AMI sends its banner and reports FullyBooted; raise SandboxError on timeout."""
        deadline = time.monotonic() + timeout
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if not self.is_running():
                raise SandboxError(f"Asterisk exited during startup\n{self.log_tail()}")
            if "Unable to bind" in self._new_messages():
                raise PortInUse(f"AMI port {self.port} or {self.tls_port} is in use\n{self.log_tail()}")
            try:
                self._probe(min(2.0, max(0.1, deadline - time.monotonic())))
                return
            except (OSError, SandboxError) as exc:
                last_error = str(exc)
            time.sleep(0.1)
        raise SandboxError(
            f"AMI on {self.host}:{self.port} not ready after {timeout:.0f} s ({last_error})\n{self.log_tail()}"
        )

    def _new_messages(self) -> str:
        """Return what Asterisk logged to messages.log since the last start."""
        try:
            with self.messages_file.open("rb") as handle:
                handle.seek(self._messages_offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def _probe(self, timeout: float) -> None:
        """Check the banner, log in and wait for FullyBooted."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            banner = _read_banner(sock)
            if not banner.startswith(BANNER_PREFIX):
                raise SandboxError(f"unexpected banner {banner!r}")
            login = f"Action: Login\r\nUsername: {self.admin.username}\r\nSecret: {self.admin.secret}\r\n\r\n"
            sock.sendall(login.encode())
            for message in _ami_messages(sock):
                if message.get("Response") == "Error":
                    raise SandboxError(f"login failed: {message.get('Message')}")
                if message.get("Event") == "FullyBooted":
                    sock.sendall(b"Action: Logoff\r\n\r\n")
                    return
            raise SandboxError("connection closed before FullyBooted")

    def kill(self, sig: int = signal.SIGKILL, *, wait: bool | None = None, timeout: float = 10.0) -> None:
        """Send ``sig`` to our Asterisk; by default wait for it to exit if ``sig`` is SIGKILL/SIGTERM."""
        if self.pid is None or not self.is_running():
            return
        if self._proc is not None and self._proc.pid == self.pid:
            self._proc.send_signal(sig)
        else:
            os.kill(self.pid, sig)
        if wait is None:
            wait = sig in (signal.SIGKILL, signal.SIGTERM)
        if wait:
            self._wait_exit(timeout)

    def _wait_exit(self, timeout: float) -> None:
        """Wait for our process to exit (reaping it if it is our child)."""
        if self._proc is not None and self._proc.pid == self.pid:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired as exc:
                raise SandboxError(f"Asterisk pid {self.pid} did not exit in {timeout} s") from exc
            return
        deadline = time.monotonic() + timeout
        while self.is_running():
            if time.monotonic() > deadline:
                raise SandboxError(f"Asterisk pid {self.pid} did not exit in {timeout} s")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Asterisk: SIGTERM, then SIGKILL if it does not exit within ``timeout``."""
        if self.is_running():
            self.kill(signal.SIGCONT, wait=False)  # in case a test stopped it with SIGSTOP
            try:
                self.kill(signal.SIGTERM, timeout=timeout)
            except SandboxError:
                self.kill(signal.SIGKILL, timeout=timeout)
        self.pid = None
        self._proc = None
        if (self.state_dir / STATE_FILE).exists():
            self.save()

    def restart(self) -> None:
        """Stop (if running) and start again on the same ports; wait until AMI answers."""
        self.stop()
        self.start()

    # ----------------------------------------------------------------- reporting

    def log_tail(self, lines: int = 30) -> str:
        """Return the last lines of Asterisk's output and messages log."""
        parts = []
        for path in (self.log_file, self.messages_file):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts) or "(no log output)"

    def env(self) -> dict[str, str]:
        """Environment variables describing this server (as read by tests/integration/conftest.py)."""
        env = {
            "AMI_HOST": self.host,
            "AMI_PORT": str(self.port),
            "AMI_USERNAME": self.admin.username,
            "AMI_SECRET": self.admin.secret,
            "AMI_SYSTEM_USERNAME": self.system.username,
            "AMI_SYSTEM_SECRET": self.system.secret,
            "AMI_NOCALL_USERNAME": self.nocall.username,
            "AMI_NOCALL_SECRET": self.nocall.secret,
            "AMI_SANDBOX_DIR": str(self.state_dir),
        }
        if self.tls_port and self.cafile:
            env["AMI_TLS_PORT"] = str(self.tls_port)
            env["AMI_CAFILE"] = str(self.cafile)
        return env

    def describe(self) -> str:
        """Human-readable summary: host, ports, credentials, files."""
        rows = [
            ("version", self.version),
            ("pid", str(self.pid)),
            ("host", self.host),
            ("port", str(self.port)),
            ("tls_port", str(self.tls_port) if self.tls_port else "(disabled)"),
            ("cafile", str(self.cafile) if self.cafile else "-"),
            ("admin", f"{self.admin.username} / {self.admin.secret}  (read=all write=all)"),
            ("system", f"{self.system.username} / {self.system.secret}  (read=system write=system)"),
            ("nocall", f"{self.nocall.username} / {self.nocall.secret}  (read=all but call write=all)"),
            ("state_dir", str(self.state_dir)),
            ("log", str(self.log_file)),
        ]
        return "\n".join(f"{key + ':':11}{value}" for key, value in rows)


def _pid_is_ours(pid: int, config_file: Path) -> bool:
    """True if ``pid`` is alive, not a zombie, and runs with our asterisk.conf."""
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():  # no procfs: best effort
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
        return False
    return os.fsencode(str(config_file)) in cmdline
