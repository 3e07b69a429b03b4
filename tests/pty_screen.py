"""A command in a real terminal (a pty that is its controlling terminal), its screen read back with pyte:
what a user would see. Ctrl-C typed there reaches it as SIGINT, as in a shell."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time

import pyte


class TerminalApp:
    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 40, cols: int = 150) -> None:
        env = {**env, "TERM": "xterm", "LINES": str(rows), "COLUMNS": str(cols)}
        pid, master = pty.fork()
        if pid == 0:  # the child: the pty is its stdin, stdout, stderr and controlling terminal
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execvpe(argv[0], argv, env)
        self.pid = pid
        self.master = master
        self.code: int | None = None
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.master], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                return
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            self.stream.feed(data)

    def wait_for(self, *needles: str, timeout: float = 15.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump(0.1)
            text = self.text()
            if all(n in text for n in needles):
                return text
            if self._exited():
                break
        raise AssertionError(f"never on screen: {needles}\n--- screen:\n{self.text()}")

    def press(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def _exited(self) -> bool:
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code is not None

    def exit_code(self, timeout: float = 15.0) -> int:
        end = time.monotonic() + timeout
        while not self._exited():
            if time.monotonic() > end:
                raise AssertionError(f"still running after {timeout} s\n--- screen:\n{self.text()}")
            self.pump(0.05)
        assert self.code is not None
        return self.code

    def kill(self) -> None:
        if not self._exited():
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.code = -9
        with contextlib.suppress(OSError):
            os.close(self.master)
