"""``asterisk-ami``: watch events, fire actions and run CLI commands from a shell.

Exit codes: 0 success, 1 connection/login/action failure, 2 usage error. Expected failures are one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import re
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, TextIO

from . import __version__
from .client import AsteriskAmi
from .errors import ActionError, AmiError, InvalidMessageError
from .filters import name_filter
from .protocol import add_value, normalize_key
from .relay.cli import add_relay_parser, cmd_relay  # loads no NATS code until the relay runs

PROG = "asterisk-ami"


class CliError(Exception):
    """An expected failure: printed as one line, exit code 1."""


class CliUsageError(CliError):
    """Bad arguments: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    conn = argparse.ArgumentParser(add_help=False)
    g = conn.add_argument_group("connection (defaults from AMI_HOST, AMI_PORT, AMI_USERNAME, AMI_SECRET)")
    g.add_argument("--host", default=os.environ.get("AMI_HOST", "localhost"))
    g.add_argument("--port", type=int, default=int(os.environ["AMI_PORT"]) if os.environ.get("AMI_PORT") else None)
    g.add_argument("--username", default=os.environ.get("AMI_USERNAME", "admin"))
    g.add_argument("--secret", help="insecure: visible in the process list; prefer AMI_SECRET or the prompt")
    g.add_argument("--tls", action="store_true", help="AMI over TLS (default port 5039)")
    g.add_argument("--cafile", help="trust this CA/self-signed certificate for --tls")
    g.add_argument("--insecure", action="store_true", help="with --tls: skip certificate and host name checks")
    g.add_argument("--md5", action="store_true", help="MD5 challenge login: the secret never crosses the wire")
    g.add_argument("--timeout", type=float, default=10.0, help="seconds for connect, login and each action")
    g.add_argument("--debug", action="store_true", help="log the protocol to stderr (secrets redacted)")

    parser = argparse.ArgumentParser(prog=PROG, description="Asterisk Manager Interface client.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True)

    ev = sub.add_parser("events", parents=[conn], help="print every event as one JSON object per line")
    _event_options(ev)
    act = sub.add_parser("action", parents=[conn], help="send one action and print its result as JSON")
    act.add_argument("name", help="action name, e.g. CoreShowChannels")
    act.add_argument("headers", nargs="*", metavar="KEY=VALUE", help="headers; repeat a key for several values")
    cmd = sub.add_parser("command", parents=[conn], help="run an Asterisk CLI command and print its output")
    cmd.add_argument("command", help="e.g. 'core show channels'")
    top = sub.add_parser("top", parents=[conn], help="live view of calls, bridges and queues (q quits)")
    top.add_argument("--once", action="store_true", help="print one snapshot as a text table and exit")
    top.add_argument("--json", action="store_true", help="with --once: print the snapshot as JSON")
    demo = sub.add_parser("demo", help="play two calls on a built-in fake Asterisk and stream their events")
    _event_options(demo)
    demo.add_argument("--speed", type=float, default=1.0, help="playback speed factor (default 1.0)")
    demo.add_argument("--top", action="store_true", help="show the calls in the live view (q quits)")
    add_relay_parser(sub)
    return parser


def _event_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--event", action="append", default=[], metavar="NAME", help="only these events (repeatable)")
    p.add_argument(
        "--filter", action="append", default=[], metavar="KEY=REGEX", help="only events whose KEY matches REGEX"
    )
    p.add_argument("--pretty", action="store_true", help="print the AMI text form instead of JSON")
    p.add_argument("--count", type=int, default=0, help="exit 0 after this many events (0: run until Ctrl-C)")


def _headers(items: Sequence[str]) -> dict[str, str | list[str]]:
    headers: dict[str, str | list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliUsageError(f"header {item!r} is not KEY=VALUE")
        add_value(headers, key, value)
    return headers


def _secret(args: argparse.Namespace) -> str:
    if args.secret is not None:
        print(f"{PROG}: warning: --secret is visible to other users; prefer AMI_SECRET", file=sys.stderr)
        return str(args.secret)
    if os.environ.get("AMI_SECRET"):
        return os.environ["AMI_SECRET"]
    if sys.stdin.isatty():
        return getpass.getpass(f"AMI secret for {args.username}@{args.host}: ")
    raise CliError("no secret: set AMI_SECRET, or run in a terminal to be prompted")


def _ssl(args: argparse.Namespace) -> bool | ssl.SSLContext:
    if not args.tls:
        return False
    context = ssl.create_default_context(cafile=args.cafile)
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def make_client(args: argparse.Namespace, **extra: Any) -> AsteriskAmi:
    return AsteriskAmi(
        host=args.host,
        port=args.port,
        username=args.username,
        password=_secret(args),
        ssl=_ssl(args),
        auth="md5" if args.md5 else "plain",
        connect_timeout=args.timeout,
        debug=args.debug,
        **extra,
    )


def _login(ami: AsteriskAmi, timeout: float) -> None:
    """Connect and wait for the login; raise CliError with one clear line on failure."""
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def on_login(success: bool, frame: dict[str, Any]) -> None:
        outcome.setdefault("login", (success, frame))
        done.set()

    def on_error(exc: BaseException) -> None:
        outcome.setdefault("error", exc)

    def on_close(had_error: bool) -> None:
        done.set()

    ami.on("ami_login", on_login)
    ami.on("ami_socket_error", on_error)
    ami.on("ami_socket_timeout", lambda: outcome.setdefault("error", TimeoutError("timed out")))
    ami.on("ami_socket_close", on_close)
    ami.connect()
    o = ami.options
    where = f"{o.host}:{o.port}"
    if not done.wait(timeout + 5):
        ami.destroy()
        raise CliError(f"no answer from {where} within {timeout} s")
    login = outcome.get("login")
    if login is None:
        error = outcome.get("error")
        reason = _describe(error) if error else "connection closed before login"
        raise CliError(f"cannot connect to {where}: {reason}")
    if not login[0]:
        raise CliError(f"login refused for user {o.username!r} at {where}: {login[1].get('message', 'no reason')}")


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return str(error.strerror)
    return str(error) or type(error).__name__


class _EventPrinter:
    """Filters and prints events; counts them for the live rate on a terminal."""

    def __init__(self, args: argparse.Namespace, out: TextIO, done: threading.Event) -> None:
        self.names = {n.lower() for n in args.event}
        self.filters: list[tuple[str, re.Pattern[str]]] = []
        for item in args.filter:
            key, sep, pattern = item.partition("=")
            if not sep or not key:
                raise CliUsageError(f"filter {item!r} is not KEY=REGEX")
            try:
                self.filters.append((normalize_key(key), re.compile(pattern)))
            except re.error as exc:
                raise CliUsageError(f"filter {item!r}: bad regular expression: {exc}") from None
        self.pretty = args.pretty
        self.limit = args.count
        self.out = out
        self.done = done
        self.count = 0

    def matches(self, frame: dict[str, Any]) -> bool:
        event = frame.get("event")
        if not isinstance(event, str):
            return False
        if self.names and event.lower() not in self.names:
            return False
        for key, pattern in self.filters:
            value = frame.get(key)
            values = value if isinstance(value, list) else [value]
            if not any(isinstance(v, str) and pattern.search(v) for v in values):
                return False
        return True

    def __call__(self, frame: dict[str, Any]) -> None:
        if self.done.is_set() or not self.matches(frame):
            return
        if self.pretty:
            lines = []
            for key, value in frame.items():
                for v in value if isinstance(value, list) else [value]:
                    lines.append(f"{key}: {v}")
            text = "\n".join(lines) + "\n\n"
        else:
            text = json.dumps(frame, ensure_ascii=False) + "\n"
        try:
            self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            # the reader went away (`| head`): stop quietly, as Unix tools do
            _silence_stdout()
            self.done.set()
            return
        self.count += 1
        if self.limit and self.count >= self.limit:
            self.done.set()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on a closed pipe."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class StopRequest:
    """Set from a signal handler: a plain attribute, no lock.

    A Python signal handler runs on the main thread between two bytecodes, possibly while that thread
    holds the internal lock of the ``threading.Event`` it is waiting on; ``Event.set()`` in the handler
    then deadlocks (seen under load: ``events`` never exiting on SIGINT). The waiting loop polls this.
    """

    requested = False

    def request(self) -> None:
        self.requested = True


def stream_events(ami: AsteriskAmi, args: argparse.Namespace, login_timeout: float) -> int:
    done = threading.Event()
    printer = _EventPrinter(args, sys.stdout, done)
    closed: list[bool] = []
    ami.on("ami_data", printer)

    def on_close(had_error: bool) -> None:
        closed.append(had_error)
        done.set()

    ami.on("ami_socket_close", on_close)
    stop = StopRequest()
    previous = on_signals(stop.request)
    started = time.monotonic()
    try:
        # a close before login makes _login raise; any close it did not raise for came after login and
        # must end the stream with exit 1, even one that arrived before this thread woke up
        _login(ami, login_timeout)
        _wait_with_counter(done, stop, printer)
    finally:
        restore_signals(previous)
    if printer.limit:
        sys.stderr.write(_summary(printer.count, time.monotonic() - started, ami.stats) + "\n")
    if closed and not (printer.limit and printer.count >= printer.limit):
        raise CliError("connection closed by the server")
    ami.disconnect()
    return 0


def _summary(events: int, seconds: float, stats: dict[str, Any]) -> str:
    """``events --count``'s last line on stderr, from the client's counters (README "Methods": stats)."""
    slowest = stats["slowest_handler"]
    slow = f", slowest handler {stats['slowest_handler_seconds'] * 1000:.1f} ms" if slowest else ""
    return (
        f"{events} events in {seconds:.1f} s; {stats['frames']} frames ({stats['bytes'] / 1024:.0f} KiB) received,"
        f" {stats['logins']} login(s), {stats['reconnects']} reconnect(s), queue high water"
        f" {stats['queue_high_water']}, reader blocked {stats['blocked_seconds']:.3f} s"
        f" ({stats['slow_handler_warnings']} warning(s)){slow}"
    )


def _wait_with_counter(done: threading.Event, stop: StopRequest, printer: _EventPrinter) -> None:
    live = sys.stderr.isatty()
    last_count, last_time = 0, time.monotonic()
    while not done.wait(0.1) and not stop.requested:
        now = time.monotonic()
        if live and now - last_time >= 1.0:
            rate = (printer.count - last_count) / (now - last_time)
            last_count, last_time = printer.count, now
            sys.stderr.write(f"\r{printer.count} events, {rate:.0f}/s ")
            sys.stderr.flush()
    done.set()  # the printer stops printing
    if live:
        sys.stderr.write("\n")


SignalHandler = Callable[[int, FrameType | None], Any] | int | None


def on_signals(callback: Callable[[], None]) -> dict[int, SignalHandler]:
    previous: dict[int, SignalHandler] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda signum, frame: callback())
    return previous


def restore_signals(previous: dict[int, SignalHandler]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def cmd_events(args: argparse.Namespace) -> int:
    # Asterisk sends only the named events (a filter per name, in the syntax every version has); the
    # printer still matches them, for the events sent before the filters are in
    ami = make_client(args, event_filters=[name_filter(name) for name in args.event])
    try:
        return stream_events(ami, args, args.timeout)
    finally:
        ami.destroy()


def cmd_action(args: argparse.Namespace) -> int:
    message: dict[str, Any] = {"Action": args.name, **_headers(args.headers)}
    ami = make_client(args, events=False)
    try:
        _login(ami, args.timeout)
        try:
            result = ami.request(message, timeout=args.timeout)
        except ActionError as exc:
            if exc.result is not None:
                print(json.dumps(exc.result.to_dict(), indent=2, ensure_ascii=False))
            raise CliError(str(exc)) from None
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        ami.disconnect()
        return 0
    finally:
        ami.destroy()


def cmd_command(args: argparse.Namespace) -> int:
    ami = make_client(args, events=False)
    try:
        _login(ami, args.timeout)
        try:
            result = ami.request({"Action": "Command", "Command": args.command}, timeout=args.timeout)
        except ActionError as exc:
            output = exc.result.output if exc.result is not None else []
            raise CliError("; ".join(output) or str(exc)) from None
        for line in result.output:
            print(line)
        ami.disconnect()
        return 0
    finally:
        ami.destroy()


def cmd_top(args: argparse.Namespace) -> int:
    from .live import LiveState
    from .top import render, run_screen, text_lines

    if args.json and not args.once:
        raise CliUsageError("--json needs --once")
    ami = make_client(args)
    try:
        live = LiveState(ami)
        _login(ami, args.timeout)
        if args.once:
            end = time.monotonic() + args.timeout
            while not live.synced and time.monotonic() < end:
                time.sleep(0.02)
            if not live.synced:
                raise CliError(f"the live state did not sync within {args.timeout} s")
            out = json.dumps(live.snapshot(), indent=2, ensure_ascii=False) + "\n" if args.json else None
            sys.stdout.write(out or text_lines(render(live, f"{args.host}:{ami.options.port}")))
        else:
            closed: list[bool] = []
            ami.on("ami_socket_close", closed.append)
            run_screen(live, f"{args.host}:{ami.options.port}", stop=lambda: bool(closed) and not ami.options.reconnect)
            if closed:
                raise CliError("connection closed by the server")
        ami.disconnect()
        return 0
    finally:
        ami.destroy()


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.top:
        return _demo_top(args)
    done = threading.Event()
    printer = _EventPrinter(args, sys.stdout, done)
    # done.set() from the handler is safe here: this thread never waits on done (see StopRequest)
    previous = on_signals(lambda: done.set())
    try:
        run_demo(printer, done, speed=args.speed)
    finally:
        restore_signals(previous)
    return 0


def _demo_top(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .live import LiveState
    from .top import run_screen

    done = threading.Event()
    lives: list[LiveState] = []
    player = threading.Thread(
        target=run_demo,
        args=(lambda frame: None, done, args.speed, lambda ami: lives.append(LiveState(ami)), 0),
        name="asterisk-ami-demo",
        daemon=True,
    )
    player.start()
    try:
        end = time.monotonic() + 10
        while not lives and time.monotonic() < end:
            time.sleep(0.01)
        if not lives:
            raise CliError("the demo did not start")
        run_screen(lives[0], "demo (a built-in fake Asterisk)")
    finally:
        done.set()
        player.join(10)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "events": cmd_events,
    "action": cmd_action,
    "command": cmd_command,
    "demo": cmd_demo,
    "top": cmd_top,
    "relay": cmd_relay,
}


class _TracebacksOnly(logging.Filter):
    """Without --debug the command reports expected failures itself; the library's log adds only bugs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is not None


def _quiet_library_log(debug: bool) -> None:
    if debug:
        return  # the client's debug option installs its own stderr handler
    log = logging.getLogger("asterisk_ami")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    handler.addFilter(_TracebacksOnly())
    log.addHandler(handler)
    log.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_library_log(getattr(args, "debug", False))
    try:
        return COMMANDS[args.cmd](args)
    except (CliUsageError, InvalidMessageError) as exc:  # the arguments themselves are wrong
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except (CliError, AmiError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError) as exc:
        print(f"{PROG}: {_describe(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
