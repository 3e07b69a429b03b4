"""The ``asterisk-ami`` command's connection: its options (before or after the subcommand), the client
they make, and the login with one clear line for each way it can fail."""

from __future__ import annotations

import argparse
import getpass
import math
import os
import ssl
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .sync import AsteriskAmi

PROG = "asterisk-ami"


class CliError(Exception):
    """An expected failure: printed as one line, exit code 1."""


class CliUsageError(CliError):
    """Bad arguments: printed as one line, exit code 2."""


def positive_seconds(text: str) -> float:
    """``--timeout``: seconds, finite and above 0 (0 would make the sockets non-blocking)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0")
    return value


def count(text: str) -> int:
    """``--count``: 0 (no limit) or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 (no limit) or a positive count")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return value


@dataclass(frozen=True)
class Option:
    """A connection option: its flags, its default and how argparse reads it."""

    flags: tuple[str, ...]
    default: Callable[[], Any]
    help: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.flags[0].lstrip("-").replace("-", "_")


def _env(name: str, fallback: str | None = None) -> Callable[[], str | None]:
    return lambda: os.environ.get(name) or fallback


#: the connection options of every subcommand that connects (before or after its name); defaults are read
#: when the arguments are parsed, so the environment of the moment counts
CONNECTION: tuple[Option, ...] = (
    Option(("--host",), _env("AMI_HOST", "localhost"), "Asterisk host (default: $AMI_HOST, else localhost)"),
    Option(
        ("--port",),
        _env("AMI_PORT"),
        "AMI port (default: $AMI_PORT, else 5038, or 5039 with --tls)",
        {"type": port},
    ),
    Option(("--username",), _env("AMI_USERNAME", "admin"), "manager.conf user (default: $AMI_USERNAME, else admin)"),
    Option(
        ("--secret", "--password"),
        lambda: None,
        "its secret; visible to other users in the process list: prefer $AMI_SECRET (or $AMI_PASSWORD), or"
        " the prompt (default: $AMI_SECRET, else $AMI_PASSWORD, else asked for on a terminal)",
    ),
    Option(("--tls",), lambda: False, "AMI over TLS (default: off; port 5039)", {"action": "store_true"}),
    Option(("--cafile",), lambda: None, "with --tls: trust this CA or self-signed certificate (default: the system's)"),
    Option(
        ("--insecure",),
        lambda: False,
        "with --tls: skip the certificate and host name checks (default: off)",
        {"action": "store_true"},
    ),
    Option(
        ("--md5",),
        lambda: False,
        "MD5 challenge login: the secret never crosses the wire (default: off, plain login)",
        {"action": "store_true"},
    ),
    Option(
        ("--timeout",),
        lambda: 10.0,
        "seconds for connect, login and each action, above 0 (default: 10)",
        {"type": positive_seconds, "metavar": "SECONDS"},
    ),
    Option(
        ("--debug",),
        lambda: False,
        "log the protocol to stderr, secrets redacted (default: off)",
        {"action": "store_true"},
    ),
)


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """The connection options, on the main parser and on every subcommand that connects. Their default is
    SUPPRESS everywhere, so one given before the subcommand is not reset by the subcommand's copy;
    ``complete()`` fills in the real defaults afterwards."""
    group = parser.add_argument_group("connection (before or after the subcommand)")
    for option in CONNECTION:
        group.add_argument(
            *option.flags, dest=option.dest, default=argparse.SUPPRESS, help=option.help, **option.kwargs
        )


def complete(args: argparse.Namespace) -> None:
    """After parsing: the connection options not given get their defaults (read now, so the environment
    of the moment counts); a subcommand that does not connect must have been given none; combinations
    that cannot work are refused. Raises ``CliUsageError``."""
    given = [o.flags[0] for o in CONNECTION if hasattr(args, o.dest)]
    if not getattr(args, "connects", True):
        if given:
            raise CliUsageError(f"{args.cmd} does not connect to Asterisk: {', '.join(given)} is not for it")
        return
    for option in CONNECTION:
        if not hasattr(args, option.dest):
            default = option.default()
            kind = option.kwargs.get("type")
            if kind is not None and isinstance(default, str):  # from the environment
                try:
                    default = kind(default)
                except argparse.ArgumentTypeError as exc:
                    raise CliUsageError(f"$AMI_{option.dest.upper()}: {exc}") from None
            setattr(args, option.dest, default)
    if not args.tls:
        extra = [flag for flag in ("--insecure", "--cafile") if getattr(args, flag[2:])]
        if extra:
            raise CliUsageError(f"{' and '.join(extra)} only {'work' if len(extra) > 1 else 'works'} with --tls")


def secret(args: argparse.Namespace) -> str:
    if args.secret is not None:
        print(f"{PROG}: warning: --secret/--password is visible to other users; prefer AMI_SECRET", file=sys.stderr)
        return str(args.secret)
    for name in ("AMI_SECRET", "AMI_PASSWORD"):  # the library says password, manager.conf says secret
        if os.environ.get(name):
            return os.environ[name]
    if sys.stdin.isatty():
        return getpass.getpass(f"AMI secret for {args.username}@{args.host}: ")
    raise CliError("no secret: set AMI_SECRET (or AMI_PASSWORD), or run in a terminal to be prompted")


def ssl_context(args: argparse.Namespace) -> bool | ssl.SSLContext:
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
        password=secret(args),
        ssl=ssl_context(args),
        auth="md5" if args.md5 else "plain",
        connect_timeout=args.timeout,
        debug=args.debug,
        **extra,
    )


def login(ami: AsteriskAmi, timeout: float) -> None:
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
        if ami.options.ssl and _not_tls(error):
            raise CliUsageError(
                f"{where} does not speak TLS (it answered the TLS handshake in plain text): drop --tls for the"
                " plain AMI port, or give Asterisk's TLS port (manager.conf tlsbindaddr, 5039 by default)"
            )
        reason = describe(error) if error else "connection closed before login"
        raise CliError(f"cannot connect to {where}: {reason}")
    if not login[0]:
        raise CliError(f"login refused for user {o.username!r} at {where}: {login[1].get('message', 'no reason')}")


#: OpenSSL's reasons for a peer whose first bytes are not a TLS record (a plain AMI banner): 1.1 and 3.0
#: say WRONG_VERSION_NUMBER, 3.2+ RECORD_LAYER_FAILURE; PACKET_LENGTH_TOO_LONG and HTTP_REQUEST likewise
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"})


def _not_tls(error: BaseException | None) -> bool:
    """True for the handshake failure of a server that answered in plain text, not a certificate problem."""
    if not isinstance(error, ssl.SSLError) or isinstance(error, ssl.SSLCertVerificationError):
        return False
    return getattr(error, "reason", None) in _NOT_TLS


def describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return str(error.strerror)
    return str(error) or type(error).__name__
