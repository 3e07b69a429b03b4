"""``LiveState`` on a ``RemoteAmi`` against FakeAsterisk: the bootstrap through the bus, live events through
the stream, a resync after a gap, and answers to ``send()`` delivered at their place in the stream."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("nats", reason="the relay's tests need nats-py (pip install -e '.[dev]')")

from asterisk_ami.live import LiveState
from asterisk_ami.relay import Relay, RemoteAmi
from asterisk_ami.relay.testing import NatsServer
from asterisk_ami.testing import EventList, FakeAsterisk, FakeSession

from ..live_frames import snapshot
from .support import fake_pbx, in_thread, relay_config, run, until


def channel_item(uid: str, name: str) -> dict[str, Any]:
    item = {k.capitalize(): v for k, v in snapshot(uid, name).items()}
    return {"Event": "CoreShowChannel", **item, "Application": "Wait", "ApplicationData": "30", "BridgeId": ""}


def channel_event(name: str, uid: str, channel: str, **extra: str) -> dict[str, Any]:
    return {"Event": name, **{k.capitalize(): v for k, v in snapshot(uid, channel).items()}, **extra}


def serve_lists(fake: FakeAsterisk, channels: list[dict[str, Any]]) -> None:
    fake.respond("CoreShowChannels", EventList(channels, "CoreShowChannelsComplete"))
    fake.respond("BridgeList", EventList([], "BridgeListComplete"))
    fake.respond("QueueStatus", EventList([], "QueueStatusComplete"))
    fake.respond("DeviceStateList", EventList([], "DeviceStateListComplete"))


@pytest.mark.parametrize("attach", ["before", "after"])
def test_live_state_on_a_remote_ami(nats_server: NatsServer, attach: str) -> None:
    fake = fake_pbx()
    serve_lists(fake, [channel_item("1.1", "PJSIP/100-1"), channel_item("1.2", "PJSIP/200-1")])

    async def main() -> None:
        async with Relay(relay_config(nats_server, {"p1": fake})):
            remote = RemoteAmi(nats_server.url, pbx="p1")
            live = LiveState(remote) if attach == "before" else None
            await remote.connect()
            try:
                await until(lambda: remote.connected, 10, "connected")
                if live is None:
                    live = LiveState(remote)
                removed: list[str] = []
                live.on("channel_removed", lambda channel: removed.append(channel.uniqueid))
                await until(lambda: live.synced, 10, "the bootstrap through the bus")
                assert set(live.channels) == {"1.1", "1.2"} and live.unavailable == {}
                fake.push_event(channel_event("Newchannel", "3.1", "PJSIP/300-1"))
                fake.push_event(channel_event("Hangup", "1.1", "PJSIP/100-1", Cause="16"))
                await until(lambda: set(live.channels) == {"1.2", "3.1"}, 10, "live events from the stream")
                # 1.2 hangs up while the session is down: the new epoch is a gap, and the resync finds it gone
                serve_lists(fake, [channel_item("3.1", "PJSIP/300-1")])
                await in_thread(fake.drop)
                await until(lambda: set(live.channels) == {"3.1"}, 10, "the resync after the gap")
                assert removed == ["1.1", "1.2"]
                lists = [a for a in fake.actions if a["action"] == "CoreShowChannels"]
                assert len(lists) == 2  # once per epoch, by the relay, with ActionIDs of its own
                assert all(a["actionid"].startswith("relay-") for a in lists)
                live.close()
            finally:
                await remote.disconnect()

    try:
        run(main())
    finally:
        fake.close()


def test_answers_to_send_come_at_their_place_in_the_stream(nats_server: NatsServer) -> None:
    fake = fake_pbx()

    def hang_up_then_list(action: dict[str, Any], session: FakeSession) -> Any:
        # an event read by the relay just before the list's answer: it must reach ami_data before it
        session.send_frame(channel_event("Hangup", "9.9", "PJSIP/999-1", Cause="16"))
        return EventList([channel_item("1.1", "PJSIP/100-1")], "CoreShowChannelsComplete")

    fake.respond("CoreShowChannels", hang_up_then_list)

    async def main() -> None:
        # a slow batch: the answer (sent at once) reaches the consumer before the Hangup's batch does
        async with (
            Relay(relay_config(nats_server, {"p1": fake}, batch_delay=0.1)),
            RemoteAmi(nats_server.url, pbx="p1") as remote,
        ):
            await until(lambda: remote.connected, 10, "connected")
            order: list[str] = []
            remote.on("ami_data", lambda f: order.append(f.get("event") or f"response {f['actionid']}"))
            responses: list[dict[str, Any]] = []
            action_id = remote.send({"Action": "CoreShowChannels", "ActionID": "mine"}, responses.append)
            assert action_id == "mine"
            await until(lambda: "CoreShowChannelsComplete" in order, 10, "the list")
            assert order[-4:] == ["Hangup", "response mine", "CoreShowChannel", "CoreShowChannelsComplete"]
            assert responses[0]["actionid"] == "mine" and responses[0]["identifier"] == "p1"

    try:
        run(main())
    finally:
        fake.close()
