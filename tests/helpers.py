"""Shared test helpers: record a client's events and wait for them without sleeping blindly."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asterisk_ami import AsteriskAmi

SOCKET_EVENTS = (
    "ami_login",
    "ami_socket_drain",
    "ami_socket_error",
    "ami_socket_timeout",
    "ami_socket_end",
    "ami_socket_close",
    "ami_socket_unwritable",
)


class Recorder:
    """Collects every emitted event of a client as (name, args), in order."""

    def __init__(self, ami: AsteriskAmi, data: bool = True) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self.frames: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        for name in SOCKET_EVENTS:
            ami.on(name, self._make(name))
        if data:
            ami.on("ami_data", self._on_data)

    def _make(self, name: str) -> Callable[..., None]:
        def handler(*args: Any) -> None:
            with self._cond:
                self.events.append((name, args))
                self._cond.notify_all()

        return handler

    def _on_data(self, frame: dict[str, Any]) -> None:
        with self._cond:
            self.frames.append(frame)
            self._cond.notify_all()

    def names(self) -> list[str]:
        with self._cond:
            return [name for name, _ in self.events]

    def frames_now(self) -> list[dict[str, Any]]:
        """The frames so far, copied under the lock (handlers append from another thread)."""
        with self._cond:
            return list(self.frames)

    def count(self, name: str) -> int:
        return self.names().count(name)

    def args(self, name: str) -> list[tuple[Any, ...]]:
        with self._cond:
            return [args for n, args in self.events if n == name]

    def wait(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        end = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; events so far: {self.names()}")
                self._cond.wait(min(left, 0.05))

    def wait_for(self, name: str, n: int = 1, timeout: float = 5.0) -> None:
        self.wait(lambda: sum(1 for e, _ in self.events if e == name) >= n, timeout, f"{n} x {name}")

    def wait_frames(self, predicate: Callable[[dict[str, Any]], bool], n: int = 1, timeout: float = 5.0) -> None:
        self.wait(lambda: sum(1 for f in self.frames if predicate(f)) >= n, timeout, f"{n} matching frames")


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


MakeClient = Callable[..., AsteriskAmi]


def client_threads() -> set[threading.Thread]:
    """The library's live threads (reader and dispatcher of every client)."""
    return {t for t in threading.enumerate() if t.name.startswith("asterisk-ami-") and t.is_alive()}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")
