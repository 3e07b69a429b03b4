"""``LiveState`` against a real Asterisk 22 (the ``asterisk_server`` sandbox): the bootstrap, churn compared
with Asterisk's own lists at quiet points, a queue, a SIGKILL restart, and ``asterisk-ami top``.

Dialplan (scripts/asterisk_sandbox/config.py): 100 = a short call, 200 = a 30 s call, 300 dials 301 (a real
bridged pair), 400 waits in queue ``support``, ``agent`` is the queue's Local member.
"""

from __future__ import annotations

import contextlib
import random
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from asterisk_ami import ActionError, AsteriskAmi
from asterisk_ami.live import LiveState

from ..cli_helpers import cli_env, run_cli
from ..helpers import wait_until
from ..pty_screen import TerminalApp
from ..shells import SHELLS, AsyncioClient, LoopThread

if TYPE_CHECKING:
    from .conftest import AsteriskServer

TIMEOUT = 15.0


@pytest.fixture(params=SHELLS)
def connect(request: pytest.FixtureRequest, asterisk_server: AsteriskServer) -> Iterator[Any]:
    """connect(**options) -> (client, LiveState), on both shells; every client is destroyed after."""
    loop = LoopThread() if request.param == "asyncio" else None
    made: list[tuple[Any, LiveState]] = []

    def make(**options: Any) -> tuple[Any, LiveState]:
        options = asterisk_server.options(connect_timeout=10, **options)
        ami = AsteriskAmi(**options) if loop is None else AsyncioClient(loop, **options)
        live = LiveState(ami)
        made.append((ami, live))
        ami.connect()
        wait_until(lambda: live.synced, TIMEOUT, "the live state to sync")
        return ami, live

    try:
        yield make
    finally:
        for ami, live in made:
            live.close()
            ami.destroy()
        if loop is not None:
            loop.stop()


@pytest.fixture
def admin(asterisk_server: AsteriskServer) -> Iterator[AsteriskAmi]:
    """A second, plain client that makes calls and asks Asterisk for its own lists."""
    ami = asterisk_server.logged_in_client(events=False)
    yield ami
    with contextlib.suppress(Exception):
        hang_up_all(ami)
    ami.destroy()


def call(ami: AsteriskAmi, exten: str, seconds: str = "30") -> None:
    ami.request(
        {
            "Action": "Originate",
            "Channel": f"Local/{exten}@default",
            "Application": "Wait",
            "Data": seconds,
            "Async": "true",
            "ActionID": f"live-{uuid.uuid4().hex[:8]}",
        },
        timeout=TIMEOUT,
    )


def asterisk_channels(ami: AsteriskAmi) -> dict[str, dict[str, Any]]:
    return {e["uniqueid"]: e for e in ami.request({"Action": "CoreShowChannels"}, timeout=TIMEOUT).events}


def asterisk_bridges(ami: AsteriskAmi) -> set[str]:
    return {e["bridgeuniqueid"] for e in ami.request({"Action": "BridgeList"}, timeout=TIMEOUT).events}


def hang_up_all(ami: AsteriskAmi) -> None:
    for channel in {c["channel"] for c in asterisk_channels(ami).values()}:
        with contextlib.suppress(ActionError):
            ami.request({"Action": "Hangup", "Channel": channel}, timeout=5)
    wait_until(lambda: not asterisk_channels(ami), TIMEOUT, "every channel to hang up")


def quiet(live: LiveState, admin: AsteriskAmi, seconds: float = 0.6) -> None:
    """Wait for a quiet point: the model and Asterisk agree about which channels exist, for a while."""

    def agree() -> bool:
        return set(live.channels) == set(asterisk_channels(admin))

    wait_until(agree, TIMEOUT, "the model and CoreShowChannels to agree")
    time.sleep(seconds)
    wait_until(agree, TIMEOUT, "the model and CoreShowChannels to agree")


def assert_same_as_asterisk(live: LiveState, admin: AsteriskAmi) -> None:
    listed = asterisk_channels(admin)
    model = live.channels
    assert set(model) == set(listed)
    for uid, item in listed.items():
        c = model[uid]
        assert (c.name, str(c.state), c.linkedid) == (item["channel"], item["channelstate"], item["linkedid"]), uid
        assert (c.bridge_id or "") == item["bridgeid"], (uid, c.bridge_id, item["bridgeid"])
    assert set(live.bridges) == asterisk_bridges(admin)
    for bid, bridge in live.bridges.items():
        assert bridge.channels == {u for u, item in listed.items() if item["bridgeid"] == bid}


def test_channels_and_bridges_that_exist_before_are_there_after_the_sync(connect: Any, admin: AsteriskAmi) -> None:
    call(admin, "200")
    call(admin, "300")
    wait_until(lambda: len(asterisk_bridges(admin)) == 1 and len(asterisk_channels(admin)) >= 6, TIMEOUT, "the calls")
    _, live = connect()
    assert_same_as_asterisk(live, admin)
    assert len(live.bridges) == 1 and len(next(iter(live.bridges.values())).channels) == 2
    hang_up_all(admin)
    wait_until(lambda: not live.channels and not live.bridges, TIMEOUT, "the model to empty")


def test_churn_matches_asterisks_own_lists_at_every_quiet_point(connect: Any, admin: AsteriskAmi) -> None:
    _, live = connect()
    rng = random.Random(7)
    for round_ in range(3):
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            what = rng.random()
            if what < 0.5:
                call(admin, rng.choice(["100", "200", "300"]), seconds=rng.choice(["1", "3", "30"]))
            else:
                up = list(asterisk_channels(admin).values())
                if up:
                    with contextlib.suppress(ActionError):
                        admin.request({"Action": "Hangup", "Channel": rng.choice(up)["channel"]}, timeout=5)
            time.sleep(rng.random() * 0.2)
        quiet(live, admin)
        assert_same_as_asterisk(live, admin)
        calls = {c.linkedid for c in live.channels.values()}
        assert set(live.calls) == calls, round_
    hang_up_all(admin)
    quiet(live, admin)
    assert live.channels == {} and live.calls == {}


def test_a_queue_follows_members_pauses_and_callers(connect: Any, admin: AsteriskAmi) -> None:
    _, live = connect()
    assert "support" in live.queues and live.queues["support"].members == {}
    member = "Local/agent@default"
    admin.request(
        {"Action": "QueueAdd", "Queue": "support", "Interface": member, "MemberName": "Agent"}, timeout=TIMEOUT
    )
    wait_until(lambda: member in live.queues["support"].members, TIMEOUT, "the member")
    assert live.queues["support"].members[member].name == "Agent"
    admin.request(
        {"Action": "QueuePause", "Queue": "support", "Interface": member, "Paused": "true", "Reason": "lunch"},
        timeout=TIMEOUT,
    )
    wait_until(lambda: live.queues["support"].members[member].paused, TIMEOUT, "the pause")
    assert live.queues["support"].members[member].paused_reason == "lunch"
    call(admin, "400")  # nobody can take it: it waits
    wait_until(lambda: len(live.queues["support"].callers) == 1, TIMEOUT, "the caller to join")
    waiting = live.queues["support"].callers[0]
    assert waiting in live.channels and live.channels[waiting].application == "Queue"
    admin.request({"Action": "QueueRemove", "Queue": "support", "Interface": member}, timeout=TIMEOUT)
    wait_until(lambda: member not in live.queues["support"].members, TIMEOUT, "the removal")
    hang_up_all(admin)
    wait_until(lambda: live.queues["support"].callers == (), TIMEOUT, "the caller to leave")


def test_after_a_sigkill_restart_the_ghosts_are_removed(
    connect: Any, admin: AsteriskAmi, asterisk_server: AsteriskServer
) -> None:
    if not asterisk_server.managed:
        pytest.skip("external AMI server: this session cannot kill or restart it")
    ami, live = connect(reconnect=True, reconnect_after=100)
    removed: list[str] = []
    live.on("channel_removed", lambda channel: removed.append(channel.uniqueid))
    call(admin, "200")
    call(admin, "300")
    wait_until(lambda: len(live.channels) >= 6, TIMEOUT, "the calls in the model")
    ghosts = set(live.channels)
    try:
        asterisk_server.kill(signal.SIGKILL)
        wait_until(lambda: not ami.connected, TIMEOUT, "the client to notice")
        asterisk_server.start()
        wait_until(lambda: ami.connected and live.synced, TIMEOUT * 2, "the resync")
    finally:
        if asterisk_server.pid is None:
            asterisk_server.start()
    assert live.channels == {} and live.bridges == {}
    assert ghosts <= set(removed)


def test_top_shows_the_real_calls(asterisk_server: AsteriskServer, admin: AsteriskAmi) -> None:
    call(admin, "300")
    wait_until(lambda: len(asterisk_bridges(admin)) == 1, TIMEOUT, "the bridged pair")
    creds = asterisk_server.accounts.admin
    args = [
        "--host",
        asterisk_server.host,
        "--port",
        str(asterisk_server.port),
        "--username",
        creds.username,
        "--timeout",
        "10",
    ]
    once = run_cli("top", "--once", *args, secret=creds.secret)
    assert once.code == 0, once.err
    assert "Local/301@default" in once.out and "2 channel(s)" in once.out and "support" in once.out
    top = TerminalApp([sys.executable, "-m", "asterisk_ami", "top", *args], cli_env(creds.secret))
    try:
        top.wait_for("synced", "Local/301@default", "BRIDGES")
        top.press(b"q")
        assert top.exit_code() == 0
    finally:
        top.kill()
