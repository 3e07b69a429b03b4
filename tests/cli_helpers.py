"""Run the ``asterisk-ami`` command in a subprocess, as a user would (``python -m asterisk_ami``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

TIMEOUT = 30


@dataclass
class Done:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def cli_env(secret: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMI_")}
    if secret is not None:
        env["AMI_SECRET"] = secret
    return env


def conn_args(host: str, port: int, username: str) -> list[str]:
    return ["--host", host, "--port", str(port), "--username", username, "--timeout", "5"]


def args_for(fake: Any, username: str = "admin") -> list[str]:
    """The connection options for a FakeAsterisk."""
    return conn_args(fake.host, fake.port, username)


def run_cli(*args: str, secret: str | None = "secret", timeout: float = TIMEOUT) -> Done:
    proc = subprocess.run(
        [sys.executable, "-m", "asterisk_ami", *args],
        capture_output=True,
        text=True,
        env=cli_env(secret),
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )
    return Done(proc.returncode, proc.stdout, proc.stderr)


def start_cli(*args: str, secret: str | None = "secret") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "asterisk_ami", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=cli_env(secret),
    )


def interrupt(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> Done:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=TIMEOUT)
    return Done(proc.returncode, out, err)


def one_clear_line(err: str) -> str:
    """The whole stderr must be one line naming the program, never a traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("asterisk-ami: "), err
    return lines[0]
