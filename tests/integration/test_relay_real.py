"""The relay against the real Asterisk 22 and a real nats-server (issue 21, test 7): an Originate through the
bus with its channels through ``RemoteAmi``, a ``LiveState`` on a ``RemoteAmi`` that equals
``CoreShowChannels``, and an Asterisk restart reported as one."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("nats", reason="the relay's tests need nats-py (pip install -e '.[dev]')")

from asterisk_ami import ActionError, AsteriskAmi
from asterisk_ami.live import LiveState
from asterisk_ami.relay import Relay, RelayConfig, RemoteAmi, parse_pbx
from asterisk_ami.relay.testing import NatsServer

from ..helpers import wait_until
from ..relay.support import Collector, in_thread, nats_server_fixture, run, until

if TYPE_CHECKING:
    from .conftest import AsteriskServer

TIMEOUT = 20.0


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    yield from nats_server_fixture()


@pytest.fixture
def admin(asterisk_server: AsteriskServer) -> Iterator[AsteriskAmi]:
    """A plain client that asks Asterisk for its own lists and hangs up what a test left."""
    ami = asterisk_server.logged_in_client(events=False, reconnect=True, reconnect_after=200)
    yield ami
    with contextlib.suppress(Exception):
        hang_up_all(ami)
    ami.destroy()


def config(asterisk_server: AsteriskServer, nats_server: NatsServer) -> RelayConfig:
    creds = asterisk_server.accounts.admin
    url = f"ami://{creds.username}@{asterisk_server.host}:{asterisk_server.port}"
    return RelayConfig(
        nats=(nats_server.url,),
        pbxes=(parse_pbx("pbx", url, secret=creds.secret),),
        reconnect_after=0.2,
        reconnect_max=1.0,
    )


def channels(ami: AsteriskAmi) -> dict[str, dict[str, Any]]:
    return {e["uniqueid"]: e for e in ami.request({"Action": "CoreShowChannels"}, timeout=TIMEOUT).events}


def hang_up_all(ami: AsteriskAmi) -> None:
    for channel in {c["channel"] for c in channels(ami).values()}:
        with contextlib.suppress(ActionError):
            ami.request({"Action": "Hangup", "Channel": channel}, timeout=5)
    wait_until(lambda: not channels(ami), TIMEOUT, "every channel to hang up")


async def call(remote: RemoteAmi, exten: str, seconds: str = "30") -> None:
    """A call through the bus (Originate, Async)."""
    await remote.request(
        {
            "Action": "Originate",
            "Channel": f"Local/{exten}@default",
            "Application": "Wait",
            "Data": seconds,
            "Async": "true",
            "ActionID": f"relay-test-{uuid.uuid4().hex[:8]}",
        },
        timeout=TIMEOUT,
    )


def same_as_asterisk(live: LiveState, listed: dict[str, dict[str, Any]]) -> bool:
    model = live.channels
    if set(model) != set(listed):
        return False
    for uid, item in listed.items():
        c = model[uid]
        if (c.name, str(c.state), c.linkedid, c.bridge_id or "") != (
            item["channel"],
            item["channelstate"],
            item["linkedid"],
            item["bridgeid"],
        ):
            return False
    return True


def test_originate_through_the_bus_and_its_channels_through_remote_ami(
    asterisk_server: AsteriskServer, nats_server: NatsServer
) -> None:
    async def main() -> None:
        async with Relay(config(asterisk_server, nats_server)), RemoteAmi(nats_server.url, pbx="pbx") as remote:
            seen = Collector(remote)
            await until(lambda: remote.connected, TIMEOUT, "the relay's session")
            result = await remote.originate("Local/100@default", application="Wait", data="1", timeout=10)
            assert result.success and result.reason_name == "answered" and result.uniqueid

            def events_of(name: str) -> list[dict[str, Any]]:
                return [f for f in seen.frames["pbx"] if f["event"] == name and f.get("uniqueid") == result.uniqueid]

            await until(lambda: events_of("Hangup"), TIMEOUT, "the originated channel's Hangup")
            (new,) = events_of("Newchannel")
            assert new["identifier"] == "pbx" and new["channel"].startswith("Local/100@default-")
            assert seen.gaps == []
            # the relay collected the event list for us, with the ActionID we chose
            listed = await remote.request({"Action": "CoreShowChannels", "ActionID": "list-1"})
            assert listed["actionid"] == "list-1" and listed.complete is not None
            assert (
                (await remote.request({"Action": "Command", "Command": "core show version"}))
                .output[0]
                .startswith("Asterisk 2")
            )

    run(main(), 90)


def test_live_state_on_remote_ami_equals_core_show_channels(
    asterisk_server: AsteriskServer, nats_server: NatsServer, admin: AsteriskAmi
) -> None:
    async def main() -> None:
        async with Relay(config(asterisk_server, nats_server)), RemoteAmi(nats_server.url, pbx="pbx") as remote:
            live = LiveState(remote)
            await until(lambda: live.synced, TIMEOUT, "the live state's bootstrap through the bus")
            await call(remote, "300")  # a bridged pair of Local channels: four channels, one bridge
            await call(remote, "200")
            await until(lambda: len(live.channels) >= 6, TIMEOUT, "the calls in the model")

            # a quiet point: the model and Asterisk's own list agree (the calls are up for 30 s)
            end = time.monotonic() + TIMEOUT
            while not same_as_asterisk(live, await in_thread(channels, admin)):
                assert time.monotonic() < end, "the model never agreed with CoreShowChannels"
                await asyncio.sleep(0.1)
            bridged = {c.bridge_id for c in live.channels.values() if c.bridge_id}
            assert len(bridged) == 1 and set(live.bridges) == bridged
            await in_thread(hang_up_all, admin)
            await until(lambda: not live.channels and not live.bridges, TIMEOUT, "every channel gone")
            live.close()

    run(main(), 120)


def test_an_asterisk_restart_is_reported_as_one(
    asterisk_server: AsteriskServer, nats_server: NatsServer, admin: AsteriskAmi
) -> None:
    if not asterisk_server.managed:
        pytest.skip("external AMI server: this session cannot restart it")

    async def main() -> None:
        async with Relay(config(asterisk_server, nats_server)), RemoteAmi(nats_server.url, pbx="pbx") as remote:
            seen = Collector(remote)
            live = LiveState(remote)
            await until(lambda: live.synced, TIMEOUT, "the bootstrap")
            await call(remote, "200")
            await until(lambda: len(live.channels) >= 2, TIMEOUT, "the call in the model")
            # on this thread, blocking the loop for the restart: the sandbox starts Asterisk with
            # PR_SET_PDEATHSIG, which fires when the starting *thread* ends (an executor's would)
            try:
                asterisk_server.restart()
            finally:
                if asterisk_server.pid is None:
                    asterisk_server.start()
            await until(lambda: len(seen.connected("pbx")) >= 1 and live.synced, TIMEOUT * 2, "the new epoch")
            await until(lambda: not live.channels, TIMEOUT, "the ghosts removed by the resync")
            connected = seen.connected("pbx")[-1]
            assert connected["asterisk_restarted"] is True
            assert connected["asterisk_started"] and connected["previous_epoch"] is not None
            (gap,) = seen.gaps
            assert (gap.reason, gap.epoch, gap.asterisk_restarted) == ("reconnect", connected["epoch"], True)
            live.close()

    run(main(), 120)


def test_the_relay_over_tls_to_asterisk(asterisk_server: AsteriskServer, nats_server: NatsServer) -> None:
    if asterisk_server.tls_port is None or asterisk_server.cafile is None:
        pytest.skip("the AMI server under test has no TLS listener")
    creds = asterisk_server.accounts.admin
    url = f"amis://{creds.username}@localhost:{asterisk_server.tls_port}?cafile={asterisk_server.cafile}"
    relay_config = RelayConfig(nats=(nats_server.url,), pbxes=(parse_pbx("tls", url, secret=creds.secret),))

    async def main() -> None:
        async with Relay(relay_config), RemoteAmi(nats_server.url, pbx="tls") as remote:
            await until(lambda: remote.connected, TIMEOUT, "the relay's TLS session")
            assert (await remote.request({"Action": "Ping"}))["ping"] == "Pong"

    run(main(), 60)
