"""``asterisk-ami relay``: many PBXes into NATS JetStream, until SIGTERM or SIGINT.

::

    export AMI_SECRET_LONDON=... AMI_SECRET_PARIS=...
    asterisk-ami relay --nats nats://127.0.0.1:4222 \\
        --pbx london=ami://relay@10.0.0.1:5038 --pbx paris=amis://relay@10.0.0.2:5039?cafile=/etc/paris.pem
    asterisk-ami relay --config /etc/asterisk-ami/relay.json

The command line's options override the file's; ``--pbx`` adds PBXes to the file's. Secrets come from
the file or the environment (``AMI_SECRET_<NAME>``, ``AMI_SECRET``, ``NATS_PASSWORD``, ``NATS_TOKEN``), never
from an option: a secret inside a ``--pbx`` URL works, with a warning (``ps`` shows it to every user).
This module loads no NATS code until the relay runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any
from urllib.parse import urlsplit

from .config import ON_STALL, RelayConfig, config_from_mapping, read_config_file
from .errors import RelayConfigError

logger = logging.getLogger("asterisk_ami.relay")


RELAY_HELP = "relay many PBXes into NATS JetStream, and their actions from it (needs the nats extra)"


def relay_arguments(p: argparse.ArgumentParser) -> None:
    """The ``relay`` subcommand's arguments (it takes no AMI connection options: the PBXes have theirs)."""
    p.description = (
        "Relay the events of many PBXes into a NATS JetStream stream and serve their actions "
        "by request/reply, until SIGTERM or SIGINT. Secrets come from --config or the environment "
        "(AMI_SECRET_<NAME>, AMI_SECRET, NATS_PASSWORD, NATS_TOKEN)."
    )
    p.add_argument("--config", metavar="FILE", help="a JSON file with the PBXes and options (README has the format)")
    p.add_argument(
        "--nats", action="append", metavar="URL", help="NATS server (repeatable; default nats://127.0.0.1:4222)"
    )
    p.add_argument(
        "--pbx", action="append", default=[], metavar="NAME=URL", help="a PBX: NAME=ami://USER@HOST:PORT (repeatable)"
    )
    p.add_argument("--stream", help="JetStream stream name (default AMI)")
    p.add_argument("--max-age", metavar="DURATION", help="keep messages this long (default 7d; 0: no limit)")
    p.add_argument("--max-bytes", metavar="SIZE", help="keep at most this much (default 1GiB; 0: no limit)")
    p.add_argument(
        "--on-stall", choices=ON_STALL, help="when NATS does not keep up: drop frames (a gap) or stop reading Asterisk"
    )
    p.add_argument(
        "--per-frame", action="store_true", default=None, help="one message per frame on ami.<pbx>.ev.<Event>"
    )
    p.add_argument("--batch-frames", type=int, metavar="N", help="frames per message at most (default 100)")
    p.add_argument(
        "--batch-delay", metavar="DURATION", help="a batch goes out this long after its first frame (default 2ms)"
    )
    p.add_argument("--buffer-frames", type=int, metavar="N", help="frames one PBX holds before NATS acknowledges them")
    p.add_argument("--buffer-bytes", metavar="SIZE", help="bytes one PBX holds before NATS acknowledges them")
    p.add_argument("--nats-user", metavar="USER", help="NATS user (the password from NATS_PASSWORD)")
    p.add_argument("--nats-creds", metavar="FILE", help="NATS credentials file (.creds)")
    p.add_argument("--nats-cafile", metavar="FILE", help="trust this CA for tls:// NATS URLs")
    p.add_argument(
        "--allow", action="append", default=[], metavar="NAME=ACTIONS", help="only these actions for PBX NAME"
    )
    p.add_argument(
        "--deny", action="append", default=[], metavar="NAME=ACTIONS", help="never these actions for PBX NAME"
    )
    p.add_argument("--stats", type=float, default=0.0, metavar="SECONDS", help="log each PBX's counters this often")
    # its own dest: the AMI connection options' --debug is not the relay's (it takes none of them)
    p.add_argument(
        "--debug", dest="relay_debug", action="store_true", help="log the relay and the AMI protocol at DEBUG to stderr"
    )


def build_config(args: argparse.Namespace) -> RelayConfig:
    """The file's settings, overridden and extended by the command line's."""
    data: dict[str, Any] = read_config_file(args.config) if args.config else {}
    options = {
        "nats": args.nats,
        "stream": args.stream,
        "max_age": args.max_age,
        "max_bytes": args.max_bytes,
        "on_stall": args.on_stall,
        "per_frame": args.per_frame,
        "batch_frames": args.batch_frames,
        "batch_delay": args.batch_delay,
        "buffer_frames": args.buffer_frames,
        "buffer_bytes": args.buffer_bytes,
        "nats_user": args.nats_user,
        "nats_creds": args.nats_creds,
        "nats_cafile": args.nats_cafile,
    }
    data.update({k: v for k, v in options.items() if v is not None})
    for url in args.nats or []:
        if _has_password(url):
            print(
                "asterisk-ami: warning: a password in --nats is visible to other users; use NATS_PASSWORD",
                file=sys.stderr,
            )
    pbxes = data.get("pbxes") or {}
    if isinstance(pbxes, list):
        pbxes = {str(e.get("name")): {k: v for k, v in e.items() if k != "name"} for e in pbxes if isinstance(e, dict)}
    pbxes = dict(pbxes)
    for item in args.pbx:
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise RelayConfigError(f"--pbx {_safe(item)!r} is not NAME=ami://USER@HOST:PORT")
        if name in pbxes:
            raise RelayConfigError(f"PBX {name!r} is given twice")
        if _has_password(url):
            print(
                f"asterisk-ami: warning: the secret in --pbx {name}=... is visible to other users; "
                f"use AMI_SECRET_{name.upper().replace('-', '_')} or --config",
                file=sys.stderr,
            )
        pbxes[name] = {"url": url}
    for flag, key in ((args.allow, "allow"), (args.deny, "deny")):
        for item in flag:
            name, sep, actions = item.partition("=")
            if not sep or name not in pbxes:
                raise RelayConfigError(f"--{key} {item!r}: expected NAME=Action,Action for a PBX given")
            entry = pbxes[name] if isinstance(pbxes[name], dict) else {"url": pbxes[name]}
            pbxes[name] = {**entry, key: actions}
    data["pbxes"] = pbxes
    return config_from_mapping(data)


def _has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def _safe(item: str) -> str:
    """``--pbx`` text for an error message, without a secret it may hold."""
    from .config import redact_url

    name, _, url = item.partition("=")
    return f"{name}={redact_url(url)}" if url else name


def cmd_relay(args: argparse.Namespace) -> int:
    from ..cli import CliError, CliUsageError

    try:
        config = build_config(args)
    except RelayConfigError as exc:
        raise CliUsageError(str(exc)) from None
    _logging(args.relay_debug)
    try:
        from .relay import Relay
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "nats":
            raise CliError("the relay needs nats-py: pip install 'asterisk-ami-client[nats]'") from None
        raise
    from .errors import RelayError

    try:
        asyncio.run(_run(Relay(config), args.stats))
    except RelayError as exc:
        raise CliError(str(exc)) from None
    return 0


async def _run(relay: Any, stats_interval: float) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, relay.request_stop)
    reporter = asyncio.ensure_future(_report(relay, stats_interval)) if stats_interval > 0 else None
    try:
        await relay.run()
    finally:
        if reporter is not None:
            reporter.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _report(relay: Any, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        for name, s in relay.stats["pbxes"].items():
            logger.info(
                "PBX %s: %s, epoch %d seq %d, %d frames, %d acked, %d dropped, %d held, %d retried, %d actions",
                name, "up" if s["connected"] else "down", s["epoch"], s["seq"], s["frames"], s["acked_frames"],
                s["dropped"], s["held_frames"], s["retries"], s["actions"],
            )  # fmt: skip


def _logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    if debug:  # the client's protocol log too
        log = logging.getLogger("asterisk_ami")
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
        return
    log = logging.getLogger("asterisk_ami.relay")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # the command's other handler shows only tracebacks
