"""The command line: ``asterisk-sandbox start|stop|status|env`` (see scripts/asterisk-sandbox)."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .common import DEFAULT_CACHE_DIR, DEFAULT_CLI_STATE_DIR, STATE_FILE, SandboxError
from .process import AsteriskSandbox

DESCRIPTION = "A private, throw-away Asterisk 22 for integration tests (standard library only)."


def main(argv: Sequence[str] | None = None) -> int:
    """``asterisk-sandbox start|stop|status|env``."""
    parser = argparse.ArgumentParser(prog="asterisk-sandbox", description=DESCRIPTION)
    parser.add_argument("command", choices=("start", "stop", "status", "env"))
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_CLI_STATE_DIR, help="default: %(default)s")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="default: %(default)s")
    parser.add_argument("--port", type=int, help="AMI port (default: a free one)")
    parser.add_argument("--tls-port", type=int, help="AMI TLS port (default: a free one)")
    parser.add_argument("--download", action="store_true", help="ignore an installed asterisk")
    parser.add_argument("--timeout", type=float, default=60.0, help="startup timeout in seconds")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"asterisk-sandbox: {message}", file=sys.stderr, flush=True)

    existing: AsteriskSandbox | None = None
    if (args.state_dir / STATE_FILE).exists():
        existing = AsteriskSandbox.load(args.state_dir, log=log)
    try:
        if args.command == "start":
            if existing and existing.is_running():
                log("already running")
                print(existing.describe())
                return 0
            sandbox = AsteriskSandbox(
                args.state_dir,
                cache_dir=args.cache_dir,
                port=args.port or (existing.port if existing else None),
                tls_port=args.tls_port or (existing.tls_port if existing else None),
                startup_timeout=args.timeout,
                prefer_system=not args.download,
                log=log,
            )
            if existing:  # keep the credentials stable across restarts
                sandbox.admin, sandbox.system = existing.admin, existing.system
                sandbox.nocall = existing.nocall
                sandbox.wrong_secret = existing.wrong_secret
            sandbox.start()
            print(sandbox.describe())
            return 0
        if existing is None or not existing.is_running():
            if args.command == "stop":
                log("not running")
                return 0
            log(f"not running (no live sandbox in {args.state_dir})")
            return 1
        if args.command == "stop":
            pid = existing.pid
            existing.stop()
            log(f"stopped pid {pid}")
        elif args.command == "status":
            print(existing.describe())
        else:
            for key, value in existing.env().items():
                print(f"export {key}={shlex.quote(value)}")
        return 0
    except SandboxError as exc:
        log(str(exc))
        return 2
