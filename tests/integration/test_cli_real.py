"""The ``asterisk-ami`` command in a subprocess against the real Asterisk 22 of conftest.py."""

from __future__ import annotations

import json
import selectors
import subprocess
from typing import TYPE_CHECKING

from ..cli_helpers import conn_args, interrupt, one_clear_line, run_cli, start_cli

if TYPE_CHECKING:
    from .conftest import AsteriskServer


def admin_args(server: AsteriskServer) -> tuple[list[str], str]:
    admin = server.accounts.admin
    return conn_args(server.host, server.port, admin.username), admin.secret


def test_command_prints_the_real_version(asterisk_server: AsteriskServer) -> None:
    args, secret = admin_args(asterisk_server)
    done = run_cli("command", "core show version", *args, secret=secret)
    assert done.code == 0, done.err
    assert done.out.startswith("Asterisk 22")


def test_unknown_command_exits_1(asterisk_server: AsteriskServer) -> None:
    args, secret = admin_args(asterisk_server)
    done = run_cli("command", "frobnicate the pbx", *args, secret=secret)
    assert done.code == 1
    assert "No such command" in one_clear_line(done.err)


def test_action_with_an_event_list(asterisk_server: AsteriskServer) -> None:
    args, secret = admin_args(asterisk_server)
    done = run_cli("action", "CoreShowChannels", *args, secret=secret)
    assert done.code == 0, done.err
    result = done.json()
    assert result["response"]["eventlist"] == "start"
    assert result["complete"]["event"] == "CoreShowChannelsComplete"
    assert int(result["complete"]["listitems"]) == len(result["events"])


def test_action_error_exits_1(asterisk_server: AsteriskServer) -> None:
    args, secret = admin_args(asterisk_server)
    done = run_cli("action", "NoSuchAction", *args, secret=secret)
    assert done.code == 1
    # the catalogue's one-line warning comes first (the action is sent anyway), then Asterisk's answer
    warning, _, error = done.err.partition("\n")
    assert warning.startswith("asterisk-ami: warning: unknown action \"NoSuchAction\""), done.err
    assert "Invalid/unknown command" in one_clear_line(error)


def test_md5_and_tls_logins(asterisk_server: AsteriskServer) -> None:
    args, secret = admin_args(asterisk_server)
    done = run_cli("action", "Ping", "--md5", *args, secret=secret)
    assert done.code == 0, done.err
    assert done.json()["response"]["ping"] == "Pong"
    if asterisk_server.tls_port is not None and asterisk_server.cafile is not None:
        tls = conn_args("localhost", asterisk_server.tls_port, asterisk_server.accounts.admin.username)
        done = run_cli("action", "Ping", "--tls", "--cafile", asterisk_server.cafile, *tls, secret=secret)
        assert done.code == 0, done.err


def test_bad_credentials_exit_1_with_one_line(asterisk_server: AsteriskServer) -> None:
    args, _ = admin_args(asterisk_server)
    done = run_cli("events", *args, secret=asterisk_server.accounts.wrong_secret)
    assert done.code == 1
    assert "Authentication failed" in one_clear_line(done.err)


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    """One stdout line, or '' after ``timeout`` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline()


def test_events_streams_a_call_and_exits_0_on_sigint(asterisk_server: AsteriskServer) -> None:
    args, secret = admin_args(asterisk_server)
    proc = start_cli("events", "--event", "UserEvent", *args, secret=secret)
    try:
        # FullyBooted is filtered out, so wait for the login through a second client's Originate:
        # retry until the streaming client is in (its login is not observable from here otherwise)
        line = ""
        for _ in range(20):
            done = run_cli(
                "action",
                "Originate",
                "Channel=Local/100@default",
                "Application=Wait",
                "Data=1",
                "Async=true",
                *args,
                secret=secret,
            )
            assert done.code == 0, done.err
            assert proc.stdout is not None
            line = _readline(proc, 5)
            if line:
                break
        event = json.loads(line)
        assert event["event"] == "UserEvent" and event["userevent"] == "TestEvent" and event["foo"] == "bar"
    finally:
        result = interrupt(proc)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err


def test_unreachable_port_exits_1(asterisk_server: AsteriskServer) -> None:
    done = run_cli("action", "Ping", *conn_args("127.0.0.1", 1, "admin"), secret="x")
    assert done.code == 1
    assert "refused" in one_clear_line(done.err).lower()


def test_tls_against_the_plain_port_says_it_does_not_speak_tls(asterisk_server: AsteriskServer) -> None:
    args, secret = admin_args(asterisk_server)
    done = run_cli("command", "core show version", *args, "--tls", "--insecure", secret=secret)
    assert done.code == 2
    assert "does not speak TLS" in one_clear_line(done.err) and "WRONG_VERSION" not in done.err


def test_top_without_a_terminal_prints_one_snapshot(asterisk_server: AsteriskServer) -> None:
    args, secret = admin_args(asterisk_server)
    done = run_cli("top", *args, secret=secret)  # no terminal: stdin /dev/null, stdout a pipe
    assert done.code == 0, done.err
    assert done.out.startswith("asterisk-ami top") and "QUEUES" in done.out and "support" in done.out
