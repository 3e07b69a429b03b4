"""The ``asterisk-ami`` command, run in a subprocess against FakeAsterisk (real Asterisk: tests/integration)."""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from asterisk_ami import AsteriskAmi, cli
from asterisk_ami.testing import EventList, FakeAsterisk

from .cli_helpers import args_for, cli_env, conn_args, interrupt, one_clear_line, run_cli, start_cli

SECRET = "s3cr3t-cli"


@pytest.fixture
def fake() -> Iterator[FakeAsterisk]:
    with FakeAsterisk(accounts={"admin": SECRET}) as server:
        yield server


def stream(fake: FakeAsterisk, *extra: str) -> subprocess.Popen[str]:
    """Start ``events`` and wait until it is logged in."""
    proc = start_cli("events", *args_for(fake), *extra, secret=SECRET)
    try:
        fake.wait_for_clients(1, timeout=20)
    except TimeoutError:
        proc.kill()
        raise AssertionError(f"events never logged in: {proc.communicate()}") from None
    return proc


def read_event(proc: subprocess.Popen[str]) -> str:
    """The next event line, past the FullyBooted that greets every login."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    while '"event": "FullyBooted"' in line:
        line = proc.stdout.readline()
    return line


# -- events -------------------------------------------------------------------------------------------


def test_events_prints_one_json_object_per_event_and_exits_0_on_sigint_after_logoff(fake: FakeAsterisk) -> None:
    proc = stream(fake)
    fake.push_event("Hangup", Channel="PJSIP/100-00000001", Cause="16", **{"Cause-txt": "Normal Clearing"})
    assert '"event": "Hangup"' in read_event(proc)
    done = interrupt(proc)
    assert done.code == 0, done.err
    assert done.err == ""
    fake.wait_for_action("Logoff")


def test_events_exits_0_on_sigterm_with_logoff(fake: FakeAsterisk) -> None:
    proc = stream(fake)
    done = interrupt(proc, signal.SIGTERM)
    assert done.code == 0, done.err
    fake.wait_for_action("Logoff")


def test_events_filters_by_name_and_by_regex(fake: FakeAsterisk) -> None:
    proc = stream(fake, "--event", "Hangup", "--filter", "Channel=^PJSIP/2", "--count", "2")
    fake.push_event("Newchannel", Channel="PJSIP/200-1")
    fake.push_event("Hangup", Channel="PJSIP/100-1")
    fake.push_event("Hangup", Channel="PJSIP/200-1")
    fake.push_event("hangup", Channel="PJSIP/201-1")  # names match in any case, as Asterisk's
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    frames = [line for line in out.splitlines() if line]
    assert len(frames) == 2
    assert '"channel": "PJSIP/200-1"' in frames[0] and '"channel": "PJSIP/201-1"' in frames[1]


def test_events_pretty_prints_the_ami_text_form(fake: FakeAsterisk) -> None:
    proc = stream(fake, "--pretty", "--count", "2")
    fake.push_event("UserEvent", UserEvent="Hello", Variable=["A=1", "B=2"])
    out, _ = proc.communicate(timeout=30)
    out = out.split("\n\n", 1)[1]  # past FullyBooted
    assert proc.returncode == 0
    assert "event: UserEvent\nuserevent: Hello\nvariable: A=1\nvariable: B=2\n\n" in out


def test_events_ends_with_one_line_when_the_server_goes_away(fake: FakeAsterisk) -> None:
    proc = stream(fake)
    fake.drop()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "closed" in one_clear_line(err)


def _stream(ami: AsteriskAmi, args: argparse.Namespace) -> object:
    try:
        return cli.stream_events(ami, args, 5)
    except cli.CliError as exc:
        return exc


def test_events_exits_1_when_the_close_is_delivered_right_after_the_login() -> None:
    # Seen in CI: login answer and close delivered back to back, before the main thread woke from the
    # login wait; the close must still end the stream with exit 1. Run in-process to hold the
    # dispatch thread in an ami_login handler until the reader has queued the close.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        args = cli.build_parser().parse_args(["events", *conn_args("127.0.0.1", port, "admin")])
        args.secret = SECRET
        ami = cli.make_client(args)

        def close_queued_before_login_returns(success: bool, frame: dict[str, object]) -> None:
            deadline = time.monotonic() + 5
            while ami.state != "disconnected" and time.monotonic() < deadline:
                time.sleep(0.001)

        ami.on("ami_login", close_queued_before_login_returns)
        result: list[object] = []
        runner = threading.Thread(target=lambda: result.append(_stream(ami, args)))
        runner.start()
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = conn.recv(4096)
                assert chunk, "the CLI closed before logging in"
                received += chunk
            action_id = re.search(rb"ActionID: ([^\r]*)", received, re.IGNORECASE)
            assert action_id is not None, received
            conn.sendall(
                b"Response: Success\r\nActionID: " + action_id[1] + b"\r\nMessage: Authentication accepted\r\n\r\n"
            )
        runner.join(30)
        ami.destroy()
    assert not runner.is_alive()
    assert isinstance(result[0], cli.CliError), result
    assert "closed" in str(result[0])


def test_the_stop_signal_handler_takes_no_lock() -> None:
    # Seen under load: SIGINT landed while the main thread held the internal lock of the Event it was
    # waiting on, and a handler calling Event.set() deadlocked (events never exited). The handler that
    # `events` installs must complete even while that lock is held.
    stop = cli.StopRequest()
    done = threading.Event()
    previous = cli.on_signals(stop.request)
    try:
        with done._cond:  # type: ignore[attr-defined]  # where the main thread is inside done.wait()
            os.kill(os.getpid(), signal.SIGINT)
            deadline = time.monotonic() + 5
            while not stop.requested and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        cli.restore_signals(previous)
    assert stop.requested


def test_bad_filter_is_a_usage_error(fake: FakeAsterisk) -> None:
    done = run_cli("events", *args_for(fake), "--filter", "Channel=(", secret=SECRET)
    assert done.code == 2
    assert "regular expression" in one_clear_line(done.err)


# -- action -------------------------------------------------------------------------------------------


def test_action_with_an_event_list_prints_the_whole_result(fake: FakeAsterisk) -> None:
    channels = [
        {"Event": "CoreShowChannel", "Channel": f"PJSIP/10{i}-0001", "Duration": f"00:00:0{i}"} for i in range(3)
    ]
    fake.respond("CoreShowChannels", EventList(channels, "CoreShowChannelsComplete"))
    done = run_cli("action", "CoreShowChannels", *args_for(fake), secret=SECRET)
    assert done.code == 0, done.err
    result = done.json()
    assert result["response"]["response"] == "Success" and result["response"]["eventlist"] == "start"
    assert [e["channel"] for e in result["events"]] == ["PJSIP/100-0001", "PJSIP/101-0001", "PJSIP/102-0001"]
    assert result["complete"]["event"] == "CoreShowChannelsComplete"
    assert result["complete"]["listitems"] == "3"


def test_action_sends_headers_and_repeated_keys(fake: FakeAsterisk) -> None:
    fake.respond("UserEvent", {"Response": "Success"})
    done = run_cli(
        "action", "UserEvent", "UserEvent=Hi", "Variable=A=1", "Variable=B=2", *args_for(fake), secret=SECRET
    )
    assert done.code == 0, done.err
    sent = fake.wait_for_action("UserEvent")
    assert sent["userevent"] == "Hi" and sent["variable"] == ["A=1", "B=2"]


def test_action_error_response_exits_1_with_the_message(fake: FakeAsterisk) -> None:
    done = run_cli("action", "Originate", "Channel=PJSIP/nobody", *args_for(fake), secret=SECRET)
    assert done.code == 1
    assert "Invalid/unknown command" in one_clear_line(done.err)
    assert done.json()["response"]["response"] == "Error"


def test_action_refuses_header_injection_before_sending(fake: FakeAsterisk) -> None:
    done = run_cli("action", "Ping", "X=1\r\nAction: Originate", *args_for(fake), secret=SECRET)
    assert done.code == 2
    one_clear_line(done.err)
    assert not any(a.get("action", "").lower() == "originate" for a in fake.actions)


def test_malformed_header_argument_is_a_usage_error(fake: FakeAsterisk) -> None:
    done = run_cli("action", "Ping", "novalue", *args_for(fake), secret=SECRET)
    assert done.code == 2
    assert "KEY=VALUE" in one_clear_line(done.err)


# -- command ------------------------------------------------------------------------------------------


def test_command_prints_output_lines(fake: FakeAsterisk) -> None:
    fake.respond_command("core show version", "Asterisk 22.0.0 built by fake\nsecond line\n")
    done = run_cli("command", "core  show version", *args_for(fake), secret=SECRET)
    assert done.code == 0, done.err
    assert done.out == "Asterisk 22.0.0 built by fake\nsecond line\n"


def test_command_in_the_pre14_format(fake: FakeAsterisk) -> None:
    fake.respond_command("core show uptime", "System uptime: 1 hour\n", legacy=True)
    done = run_cli("command", "core show uptime", *args_for(fake), secret=SECRET)
    assert done.code == 0, done.err
    assert done.out == "System uptime: 1 hour\n"


def test_unknown_command_exits_1_with_asterisks_reason(fake: FakeAsterisk) -> None:
    done = run_cli("command", "no such thing", *args_for(fake), secret=SECRET)
    assert done.code == 1
    assert "No such command 'no such thing'" in one_clear_line(done.err)


# -- login and connection failures ---------------------------------------------------------------------


@pytest.mark.parametrize("sub", [["events"], ["action", "Ping"], ["command", "core show version"]])
def test_bad_credentials_exit_1_with_one_line(fake: FakeAsterisk, sub: list[str]) -> None:
    done = run_cli(*sub, *args_for(fake), secret="wrong")
    assert done.code == 1
    line = one_clear_line(done.err)
    assert "login refused" in line and "Authentication failed" in line
    assert "wrong" not in line  # the secret is never echoed


def test_md5_login(fake: FakeAsterisk) -> None:
    done = run_cli("action", "Ping", "--md5", *args_for(fake), secret=SECRET)
    assert done.code == 0, done.err
    assert done.json()["response"]["ping"] == "Pong"
    assert not any("secret" in a for a in fake.actions)


def test_unreachable_port_exits_1_with_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    done = run_cli("action", "Ping", *conn_args("127.0.0.1", port, "admin"), secret=SECRET)
    assert done.code == 1
    assert "refused" in one_clear_line(done.err).lower()


def test_unknown_host_exits_1_with_one_line() -> None:
    done = run_cli("events", *conn_args("no-such-host.invalid", 5038, "admin"), secret=SECRET)
    assert done.code == 1
    assert "no-such-host.invalid" in one_clear_line(done.err)


def test_silent_server_times_out_with_one_line() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        done = run_cli("action", "Ping", "--host", "127.0.0.1", "--port", str(port), "--timeout", "1", secret=SECRET)
    assert done.code == 1
    assert "timed out" in one_clear_line(done.err)


def test_secret_option_warns_and_missing_secret_is_one_line(fake: FakeAsterisk) -> None:
    done = run_cli("action", "Ping", *args_for(fake), "--secret", SECRET, secret=None)
    assert done.code == 0
    assert "warning: --secret" in done.err and SECRET not in done.err
    done = run_cli("action", "Ping", *args_for(fake), secret=None)
    assert done.code == 1
    assert "AMI_SECRET" in one_clear_line(done.err)


def test_environment_gives_the_connection_defaults(fake: FakeAsterisk) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "asterisk_ami", "action", "Ping"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        env={
            **os.environ,
            "AMI_HOST": fake.host,
            "AMI_PORT": str(fake.port),
            "AMI_USERNAME": "admin",
            "AMI_SECRET": SECRET,
        },
    )
    assert proc.returncode == 0, proc.stderr
    assert '"ping": "Pong"' in proc.stdout


def test_usage_errors_exit_2() -> None:
    assert run_cli().code == 2
    assert run_cli("frobnicate").code == 2
    assert run_cli("events", "--port", "notanumber").code == 2


# -- demo ---------------------------------------------------------------------------------------------


def test_demo_streams_two_calls() -> None:
    done = run_cli("demo", "--speed", "50", secret=None)
    assert done.code == 0, done.err
    frames = done.lines()
    names = [f["event"] for f in frames]
    for name in ("Newchannel", "Newstate", "DialBegin", "DialEnd", "BridgeEnter", "Hangup"):
        assert name in names
    assert names.count("Hangup") == 4  # two calls, two channels each
    assert len({f["linkedid"] for f in frames if "linkedid" in f}) == 2
    assert all("response" not in f for f in frames)


def test_demo_output_can_be_cut_short_by_the_reader() -> None:
    # `asterisk-ami demo | head -1`: the closed pipe ends the run quietly
    proc = subprocess.Popen(
        [sys.executable, "-m", "asterisk_ami", "demo", "--speed", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith('{"event": ')
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 0
    assert "Traceback" not in err and "Broken pipe" not in err


def test_secret_never_in_cli_output_even_with_debug(fake: FakeAsterisk) -> None:
    ok = run_cli("action", "Ping", "--debug", *args_for(fake), secret=SECRET)
    refused = run_cli("action", "Ping", "--debug", "--md5", *args_for(fake), secret=SECRET + "x")
    assert ok.code == 0 and refused.code == 1
    assert "Secret" in ok.err  # the debug log shows the login, redacted
    for done in (ok, refused):
        assert SECRET not in done.out and SECRET not in done.err


def test_events_shows_a_live_counter_when_stderr_is_a_terminal(fake: FakeAsterisk) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "asterisk_ami", "events", *args_for(fake)],
        stdout=subprocess.DEVNULL,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=cli_env(SECRET),
    )
    os.close(slave)
    seen = b""
    try:
        fake.wait_for_clients(1, timeout=20)
        for i in range(5):
            fake.push_event("Tick", Seq=str(i))
        end = time.monotonic() + 10
        while b"6 events" not in seen and time.monotonic() < end:  # 5 Ticks + FullyBooted
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 1024)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        os.close(master)
    assert b"6 events" in seen and b"/s" in seen, seen


def test_events_count_ends_with_a_summary_from_the_client_stats(fake: FakeAsterisk) -> None:
    proc = stream(fake, "--event", "Hangup", "--count", "1")
    fake.push_event("Hangup", Channel="PJSIP/1")
    out, err = proc.communicate(timeout=30)
    assert '"event": "Hangup"' in out
    assert proc.returncode == 0, err
    [summary] = err.strip().splitlines()
    assert summary.startswith("1 events in ") and "1 login(s), 0 reconnect(s)" in summary
    assert "frames" in summary and "reader blocked 0.000 s (0 warning(s))" in summary
