"""The ``asterisk-ami`` command line itself (issue 19): ``top`` without a terminal, the options refused with
one line and exit 2, connection options before and after the subcommand with their defaults in the help,
``--password``/``AMI_PASSWORD``, ``--tls`` against a plain port, and the subcommand registry."""

from __future__ import annotations

import argparse
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from asterisk_ami import cli
from asterisk_ami.cli_connection import CONNECTION
from asterisk_ami.testing import EventList, FakeAsterisk

from .cli_helpers import TIMEOUT, args_for, cli_env, one_clear_line, run_cli

SECRET = "s3cr3t-options"


@pytest.fixture
def fake() -> Iterator[FakeAsterisk]:
    with FakeAsterisk(accounts={"admin": SECRET}) as server:
        server.respond(
            "CoreShowChannels",
            EventList(
                [{"Channel": "PJSIP/100-00000001", "Uniqueid": "1.1", "Linkedid": "1.1", "ChannelState": "6"}],
                "CoreShowChannelsComplete",
                event="CoreShowChannel",
            ),
        )
        yield server


# -- top without a terminal ----------------------------------------------------------------------------


def test_top_without_a_terminal_prints_one_snapshot(fake: FakeAsterisk) -> None:
    done = run_cli("top", *args_for(fake), secret=SECRET)  # stdin /dev/null, stdout a pipe: cron, CI
    assert done.code == 0, done.err
    assert "Traceback" not in done.err and done.err == ""
    assert done.out.startswith("asterisk-ami top") and "PJSIP/100-00000001" in done.out
    assert "calls 1  channels 1" in done.out
    as_json = run_cli("top", "--once", "--json", *args_for(fake), secret=SECRET)
    assert as_json.code == 0 and as_json.json()["channels"]["1.1"]["name"] == "PJSIP/100-00000001"


def test_top_with_a_terminal_on_stdout_only_prints_one_snapshot(fake: FakeAsterisk) -> None:
    # `top </dev/null` in a terminal: curses could draw but not read keys (cbreak() returned ERR)
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "asterisk_ami", "top", *args_for(fake)],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            env={**cli_env(SECRET), "TERM": "xterm"},
        )
        os.close(slave)
        _, err = proc.communicate(timeout=TIMEOUT)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child's side is closed and everything was read
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err and b"PJSIP/100-00000001" in out and b"\x1b[" not in out  # no curses


def test_demo_top_without_a_terminal_is_one_line_exit_2() -> None:
    done = run_cli("demo", "--top", secret=None)
    assert done.code == 2
    assert "needs a terminal" in one_clear_line(done.err)


# -- usage errors: one line, exit 2 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--timeout", "0"], "--timeout"),
        (["--timeout", "-1"], "--timeout"),
        (["--timeout", "nan"], "--timeout"),
        (["--timeout", "inf"], "--timeout"),
        (["--timeout", "soon"], "--timeout"),
        (["--count", "-1"], "--count"),
        (["--insecure"], "--insecure only works with --tls"),
        (["--cafile", "/etc/hostname"], "--cafile only works with --tls"),
        (["--port", "0"], "--port"),
        (["--port", "70000"], "--port"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_options_are_one_line_and_exit_2(fake: FakeAsterisk, args: list[str], says: str) -> None:
    for argv in (["events", *args_for(fake), *args], [*args, *args_for(fake), "events"]):
        if args[0] == "--count" and argv[0] != "events":
            continue  # --count is an events option, not a connection option
        done = run_cli(*argv, secret=SECRET)
        assert done.code == 2, (argv, done)
        assert says in one_clear_line(done.err)
    assert fake.login_count == 0  # refused before connecting


def test_a_bad_port_in_the_environment_is_one_line() -> None:
    env = {**cli_env(SECRET), "AMI_PORT": "pbx"}
    proc = subprocess.run(
        [sys.executable, "-m", "asterisk_ami", "action", "Ping"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 2 and "$AMI_PORT" in one_clear_line(proc.stderr)


def test_connection_options_are_refused_for_the_demo() -> None:
    done = run_cli("--host", "pbx", "demo", secret=None)
    assert done.code == 2 and "--host" in one_clear_line(done.err)


def test_tls_against_a_plain_port_says_so(fake: FakeAsterisk) -> None:
    done = run_cli("action", "Ping", *args_for(fake), "--tls", "--insecure", secret=SECRET)
    assert done.code == 2
    assert "does not speak TLS" in one_clear_line(done.err) and "SSL" not in done.err


# -- connection options before and after the subcommand --------------------------------------------------


def test_connection_options_work_before_and_after_the_subcommand(fake: FakeAsterisk) -> None:
    host, port = fake.host, str(fake.port)
    for argv in (
        ["--host", host, "--port", port, "action", "Ping"],
        ["action", "Ping", "--host", host, "--port", port],
        ["--host", host, "action", "Ping", "--port", port],
        ["--port", "1", "--host", host, "action", "Ping", "--port", port],  # the later one counts
    ):
        done = run_cli(*argv, secret=SECRET)
        assert done.code == 0, (argv, done.err)
        assert done.json()["response"]["ping"] == "Pong"
    args = cli.parse_args(["--md5", "--timeout", "3", "events", "--username", "bob"])
    assert (args.md5, args.timeout, args.username, args.tls) == (True, 3.0, "bob", False)


def test_every_connection_option_shows_its_default_in_the_help() -> None:
    for argv in (["--help"], ["events", "--help"], ["top", "--help"]):
        done = run_cli(*argv, secret=None)
        assert done.code == 0
        text = " ".join(done.out.split())
        for option in CONNECTION:
            group = text.index("connection (before or after")
            # "--secret SECRET, --password SECRET" before Python 3.13, "--secret, --password SECRET" since
            found = re.compile(re.escape(option.flags[0]) + "[ ,]").search(text, group)
            assert found, (argv, option.flags)
            start = found.start()
            assert "default" in text[start : text.index(")", text.index("default", start))], (argv, option.flags)
    assert "--password" in done.out


def test_password_option_and_environment_beside_secret(fake: FakeAsterisk) -> None:
    done = run_cli("action", "Ping", *args_for(fake), "--password", SECRET, secret=None)
    assert done.code == 0, done.err
    assert "warning: --secret/--password" in done.err and SECRET not in done.err
    env = {**cli_env(None), "AMI_PASSWORD": SECRET}
    proc = subprocess.run(
        [sys.executable, "-m", "asterisk_ami", "action", "Ping", *args_for(fake)],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


# -- the registry -----------------------------------------------------------------------------------------


def test_a_new_subcommand_is_one_entry_and_gets_the_connection_options(fake: FakeAsterisk) -> None:
    def run(args: argparse.Namespace) -> int:
        return 0

    def arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--flavour", default="plain")

    extra = cli.Subcommand("ping", "send a Ping", run, arguments)
    parser = cli.build_parser([*cli.SUBCOMMANDS, extra])
    args = parser.parse_args(["--host", "pbx", "ping", "--flavour", "x", "--port", "5"])
    assert (args.run, args.host, args.port, args.flavour, args.username) == (run, "pbx", 5, "x", "admin")
    assert [c.name for c in cli.SUBCOMMANDS] == ["events", "action", "command", "top", "demo", "relay", "catalogue"]
