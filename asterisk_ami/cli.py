"""``asterisk-ami``: watch events, fire actions and run CLI commands from a shell.

Exit codes: 0 success, 1 connection/login/action failure, 2 usage error. Expected failures are one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn, TextIO

from . import __version__
from .cli_catalogue import HELP as CATALOGUE_HELP
from .cli_catalogue import ActionHelp, catalogue_arguments, cmd_catalogue, warn_unknown_events  # lazy: see there
from .cli_connection import (
    CONNECTION,
    PROG,
    CliError,
    CliUsageError,
    add_connection_options,
    complete,
    count,
    describe,
    login,
    make_client,
)
from .errors import ActionError, AmiError, InvalidMessageError
from .filters import name_filter
from .patterns import EventMatcher
from .protocol import add_value, normalize_key
from .relay.cli import RELAY_HELP, cmd_relay, relay_arguments  # loads no NATS code until the relay runs
from .sync import AsteriskAmi

# the connection's helpers under the names they had when they lived here (subcommands call them so)
_login, _describe = login, describe
__all__ = ["CONNECTION", "SUBCOMMANDS", "CliError", "CliUsageError", "Parser", "Subcommand", "build_parser"]
__all__ += ["login", "main", "make_client", "parse_args", "stream_events"]


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2: ``asterisk-ami: argument --count: ...``); the whole command line's
    parser also completes the connection options (``cli_connection.complete``)."""

    completes = False

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: {message} (see {self.prog} --help)\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extra = super().parse_known_args(args, namespace)
        if self.completes:
            try:
                complete(parsed)
            except CliUsageError as exc:
                self.error(str(exc))
        return parsed, extra


@dataclass(frozen=True)
class Subcommand:
    """One ``asterisk-ami`` subcommand: ``run(args)`` returns the exit code; ``arguments(parser)`` adds its
    own arguments; ``connects``: it takes the connection options."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    connects: bool = True


def build_parser(subcommands: Sequence[Subcommand] | None = None) -> argparse.ArgumentParser:
    """The whole command line: the connection options and every subcommand of ``SUBCOMMANDS``."""
    parser = Parser(prog=PROG, description="Asterisk Manager Interface client.")
    parser.completes = True
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_connection_options(parser)
    sub = parser.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    for command in SUBCOMMANDS if subcommands is None else subcommands:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        p.set_defaults(run=command.run, connects=command.connects)
        if command.connects:
            add_connection_options(p)
        command.arguments(p)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The checked arguments, connection defaults filled in; a usage error exits 2 with one line."""
    return build_parser().parse_args(argv)


def _event_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--event", action="append", default=[], metavar="NAME",
        help="only these events (repeatable); a pattern such as 'Queue*' matches in any case",
    )
    p.add_argument(
        "--filter", action="append", default=[], metavar="KEY=REGEX", help="only events whose KEY matches REGEX"
    )
    p.add_argument("--pretty", action="store_true", help="print the AMI text form instead of JSON")
    p.add_argument(
        "--count", type=count, default=0, help="exit 0 after this many events (default: 0, run until Ctrl-C)"
    )


def _action_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="action name, e.g. CoreShowChannels (Action: ListCommands lists them all)")
    p.add_argument("headers", nargs="*", metavar="KEY=VALUE", help="headers; repeat a key for several values")
    # `action NAME --help` adds NAME's parameters from the catalogue. argparse has no public way to replace
    # the -h it made, and a new -h would move in the usage line: the existing one changes class instead
    for known in p._actions:
        if isinstance(known, argparse._HelpAction):
            known.__class__ = ActionHelp


def _command_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("command", help="e.g. 'core show channels'")


def _top_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--once", action="store_true", help="print one snapshot as a text table and exit")
    p.add_argument("--json", action="store_true", help="with --once: print the snapshot as JSON")


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    _event_options(p)
    p.add_argument("--speed", type=float, default=1.0, help="playback speed factor (default: 1.0)")
    p.add_argument("--top", action="store_true", help="show the calls in the live view (q quits)")


def _headers(items: Sequence[str]) -> dict[str, str | list[str]]:
    headers: dict[str, str | list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliUsageError(f"header {item!r} is not KEY=VALUE")
        add_value(headers, key, value)
    return headers


class _EventPrinter:
    """Filters and prints events; counts them for the live rate on a terminal."""

    def __init__(self, args: argparse.Namespace, out: TextIO, done: threading.Event) -> None:
        # exact names in any case, as Asterisk reads them; Queue*-style patterns (patterns.py) too
        self.names = EventMatcher(n.lower() for n in args.event)
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
        if not self.names.everything and not self.names.matches(event.lower()):
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
    event_filters = [name_filter(name) for name in args.event]  # a name that cannot be one fails here
    if args.event:  # a misspelt name would silently match nothing: say so, and go on
        warn_unknown_events(args.event)
    ami = make_client(args, event_filters=event_filters)
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


def is_terminal() -> bool:
    """The full-screen view reads keys from stdin and draws on stdout: both must be a terminal."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def cmd_top(args: argparse.Namespace) -> int:
    from .live import LiveState
    from .top import render, run_screen, text_lines

    if args.json and not args.once:
        raise CliUsageError("--json needs --once")
    # without a terminal (cron, CI, a pipe, `top > file`) one snapshot, as --once prints it
    once = args.once or not is_terminal()
    ami = make_client(args)
    try:
        live = LiveState(ami)
        _login(ami, args.timeout)
        title = f"{args.host}:{ami.options.port}"
        if once:
            end = time.monotonic() + args.timeout
            while not live.synced and time.monotonic() < end:
                time.sleep(0.02)
            if not live.synced:
                raise CliError(f"the live state did not sync within {args.timeout} s")
            out = json.dumps(live.snapshot(), indent=2, ensure_ascii=False) + "\n" if args.json else None
            sys.stdout.write(out or text_lines(render(live, title)))
        else:
            closed: list[bool] = []
            ami.on("ami_socket_close", closed.append)
            _screen(lambda: run_screen(live, title, stop=lambda: bool(closed) and not ami.options.reconnect))
            if closed:
                raise CliError("connection closed by the server")
        ami.disconnect()
        return 0
    finally:
        ami.destroy()


def _screen(run: Callable[[], None]) -> None:
    """Run the curses view; a terminal curses cannot drive (TERM unset or unknown) is one line, exit 2."""
    import curses

    try:
        run()
    except curses.error as exc:
        term = os.environ.get("TERM") or "unset"
        raise CliUsageError(f"cannot draw the live view on this terminal (TERM={term}: {exc}); use --once") from None


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.top:
        if not is_terminal():
            raise CliUsageError("demo --top needs a terminal (without --top, the demo prints its events)")
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
        _screen(lambda: run_screen(lives[0], "demo (a built-in fake Asterisk)"))
    finally:
        done.set()
        player.join(10)
    return 0


#: every subcommand, in the order --help lists them: a new one is one entry here (its arguments in its
#: own function; ``connects=False`` when it takes no connection options)
SUBCOMMANDS: list[Subcommand] = [
    Subcommand("events", "print every event as one JSON object per line", cmd_events, _event_options),
    Subcommand("action", "send one action and print its result as JSON", cmd_action, _action_arguments),
    Subcommand("command", "run an Asterisk CLI command and print its output", cmd_command, _command_arguments),
    Subcommand("top", "live view of calls, bridges and queues (q quits)", cmd_top, _top_arguments),
    Subcommand(
        "demo",
        "play two calls on a built-in fake Asterisk and stream their events",
        cmd_demo,
        _demo_arguments,
        connects=False,
    ),
    Subcommand("relay", RELAY_HELP, cmd_relay, relay_arguments, connects=False),
    Subcommand("catalogue", CATALOGUE_HELP, cmd_catalogue, catalogue_arguments, connects=False),
]
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {c.name: c.run for c in SUBCOMMANDS}


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


def _warning_line(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    # the clients' catalogue warnings name a problem of the user's action: one line, no source excerpt
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _quiet_library_log(getattr(args, "debug", False))
    with warnings.catch_warnings():  # restored after: tests call main() in their own process
        warnings.showwarning = _warning_line
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args))
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
