"""Live state on read-limited accounts of the real Asterisk 22 (issue 19), on both shells: ``nocall`` (read:
every class but call; Asterisk says so to ``manager show user``) and ``sysonly`` (read and write: system, so
Asterisk will not say), while ``admin`` places the calls; and ``asterisk-ami top`` on ``nocall``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from asterisk_ami import AsteriskAmi
from asterisk_ami.live import LiveState, state

from ..cli_helpers import conn_args, run_cli
from ..helpers import wait_until
from ..shells import SHELLS, AsyncioClient, LoopThread

if TYPE_CHECKING:
    from asterisk_sandbox import Credentials

    from .conftest import AsteriskServer

TIMEOUT = 15.0
CALL_PARTS = {"channels", "calls", "bridges", "devices"}


@pytest.fixture(params=SHELLS)
def watch(request: pytest.FixtureRequest, asterisk_server: AsteriskServer) -> Iterator[Any]:
    """watch(account) -> a synced LiveState of a client logged in as ``account``, on both shells."""
    loop = LoopThread() if request.param == "asyncio" else None
    made: list[tuple[Any, LiveState]] = []

    def make(account: Credentials) -> LiveState:
        options = asterisk_server.options(account, connect_timeout=10)
        ami = AsteriskAmi(**options) if loop is None else AsyncioClient(loop, **options)
        live = LiveState(ami)
        made.append((ami, live))
        ami.connect()
        wait_until(lambda: live.synced, TIMEOUT, "the live state to sync")
        return live

    try:
        yield make
    finally:
        for ami, live in made:
            live.close()
            ami.destroy()
        if loop is not None:
            loop.stop()


@pytest.fixture
def calls(asterisk_server: AsteriskServer) -> Iterator[Any]:
    """calls() -> originate two Local channels (one call) as admin; hung up after the test."""
    admin = asterisk_server.logged_in_client()
    placed: list[str] = []

    def place() -> None:
        result = admin.originate("Local/200@default", application="Wait", data="20").result(TIMEOUT)
        assert result.success
        placed.append(result.channel)
        wait_until(lambda: len(admin.request({"Action": "CoreShowChannels"}).events) >= 2, TIMEOUT, "2 channels")

    try:
        yield place
    finally:
        for channel in placed:
            admin.request({"Action": "Hangup", "Channel": channel}, timeout=TIMEOUT)
        admin.destroy()


def account(server: AsteriskServer, name: str) -> Credentials:
    creds = server.accounts.no_call if name == "nocall" else server.accounts.system
    if creds is None:
        pytest.skip(f"no {name} account on the external server")
    return creds


def test_an_account_without_call_says_what_it_cannot_follow(
    asterisk_server: AsteriskServer, watch: Any, calls: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="asterisk_ami")
    live = watch(account(asterisk_server, "nocall"))
    assert set(live.unavailable) == CALL_PARTS
    assert "does not read call events" in live.unavailable["channels"]
    assert "queues" not in live.unavailable and "support" in live.queues  # agent is read
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        len(warnings) == 1
        and "[nocall] read = system,log," in warnings[0]
        and warnings[0].endswith(",message,call (then 'manager reload')")
    )
    calls()
    assert live.channels == {} and set(live.unavailable) == CALL_PARTS and live.synced


def test_an_account_that_asterisk_will_not_describe_is_found_out(
    asterisk_server: AsteriskServer, watch: Any, calls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "CHECK_FIRST", 0.2)
    live = watch(account(asterisk_server, "system"))  # manager show user: Permission denied (no command write)
    assert "channels" not in live.unavailable
    calls()  # two channels that sysonly is never told about
    wait_until(lambda: "channels" in live.unavailable, TIMEOUT, "the check to find out")
    assert "appeared or went away" in live.unavailable["channels"] and live.channels == {}


def test_admin_still_follows_every_call(asterisk_server: AsteriskServer, watch: Any, calls: Any) -> None:
    live = watch(asterisk_server.accounts.admin)
    calls()
    wait_until(lambda: len(live.channels) >= 2, TIMEOUT, "the channels")
    assert "channels" not in live.unavailable and not live.model.wants_check


def test_top_once_on_an_account_without_call(asterisk_server: AsteriskServer, calls: Any) -> None:
    creds = account(asterisk_server, "nocall")
    calls()
    done = run_cli(
        "top", "--once", *conn_args(asterisk_server.host, asterisk_server.port, creds.username), secret=creds.secret
    )
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[1].startswith("calls ?  channels ?  bridges ?  queues 1"), done.out
    assert "'nocall' does not read call events" in lines[2]
