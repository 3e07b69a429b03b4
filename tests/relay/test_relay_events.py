"""Events through a relay and a real nats-server: order and uniqueness per PBX, independence of PBXes,
the control messages, a nats-server restarted mid-stream (issue 21, tests 1 and 4)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from asterisk_ami.relay import Relay, RemoteAmi
from asterisk_ami.relay.testing import NatsServer
from asterisk_ami.testing import FakeAsterisk

from .support import (
    STARTED,
    Collector,
    fake_pbx,
    in_thread,
    numbers_per_epoch,
    push_numbered,
    relay_config,
    run,
    stored,
    until,
)


@pytest.fixture
def fakes() -> Any:
    made = {name: fake_pbx() for name in ("p1", "p2", "p3")}
    yield made
    for fake in made.values():
        fake.close()


@pytest.mark.parametrize("per_frame", [False, True], ids=["batched", "per-frame"])
def test_numbered_events_from_three_pbxes_arrive_in_order_and_once(
    nats_server: NatsServer, fakes: dict[str, FakeAsterisk], per_frame: bool
) -> None:
    n = 600 if per_frame else 3000

    async def main() -> None:
        async with Relay(relay_config(nats_server, fakes, per_frame=per_frame)) as relay:
            async with RemoteAmi(nats_server.url, pbx="*") as remote:
                seen = Collector(remote)
                # connected: from the stream's last control messages (if the relay was first) or a new one
                await until(lambda: all(remote.pbxes.get(p, {}).get("connected") for p in fakes), 10, "connected")
                pushers = [threading.Thread(target=push_numbered, args=(f, 0, n)) for f in fakes.values()]
                for t in pushers:
                    t.start()
                await in_thread(lambda: [t.join() for t in pushers])
                await until(lambda: all(len(seen.numbers(p)) >= n for p in fakes), 30, "every event")
                for pbx in fakes:
                    assert seen.numbers(pbx) == list(range(n)), pbx
                    assert all(f["identifier"] == pbx for f in seen.frames[pbx])
                assert seen.gaps == []
                stats = relay.stats["pbxes"]
            messages = await stored(nats_server)
        for pbx in fakes:
            assert stats[pbx]["acked_frames"] == stats[pbx]["frames"] >= n
            epochs = numbers_per_epoch(messages, pbx)
            assert len(epochs) == 1
            (numbers,) = epochs.values()
            assert numbers == list(range(1, len(numbers) + 1))  # each number once, in order
        subjects = {s for s, _, _ in messages if not s.endswith(".ctl")}
        if per_frame:
            assert {"ami.p1.ev.UserEvent", "ami.p1.ev.FullyBooted"} <= subjects
        else:
            assert subjects == {"ami.p1.ev", "ami.p2.ev", "ami.p3.ev"}
            frames = json.loads(next(d for s, _, d in messages if s == "ami.p2.ev"))
            assert isinstance(frames, list) and frames[0]["event"] == "FullyBooted"

    run(main())


def test_connected_and_disconnected_control_messages(nats_server: NatsServer) -> None:
    fake = fake_pbx()

    async def main() -> None:
        async with RemoteAmi(nats_server.url, pbx="p1") as remote:
            seen = Collector(remote)
            logins: list[tuple[bool, dict[str, Any]]] = []
            remote.on("ami_login", lambda ok, control: logins.append((ok, control)))
            async with Relay(relay_config(nats_server, {"p1": fake})) as relay:
                await until(lambda: seen.connected("p1"), 10, "connected")
                assert remote.connected
                await in_thread(push_numbered, fake, 0, 5)
                await until(lambda: len(seen.numbers("p1")) == 5, 10, "5 events")
                epoch = relay.pbxes["p1"].outbox.epoch
                await in_thread(fake.drop)  # Asterisk closes the session: the relay logs in again
                await until(lambda: len(seen.connected("p1")) == 2, 10, "connected again")
            await until(lambda: seen.controls[-1]["type"] == "disconnected", 10, "disconnected at the stop")
            assert not remote.connected
        first, second = seen.connected("p1")
        assert first["epoch"] == epoch and first["previous_epoch"] is None
        assert first["asterisk_started"] == STARTED and first["asterisk_restarted"] is None
        assert second["epoch"] > epoch and second["previous_epoch"] == epoch
        assert second["previous_last_seq"] == 6  # FullyBooted and the five events
        assert second["asterisk_restarted"] is False  # the same startup time: the session dropped, not Asterisk
        closed = [c for c in seen.controls if c["type"] == "disconnected"]
        assert [c["epoch"] for c in closed] == [epoch, second["epoch"]]
        assert closed[0]["last_seq"] == 6
        # one gap: the new epoch (what Asterisk sent between the sessions was never numbered)
        assert [(g.reason, g.epoch, g.first, g.previous_seq, g.previous_last_seq) for g in seen.gaps] == [
            ("reconnect", second["epoch"], None, 6, 6)
        ]
        assert [(ok, c["epoch"]) for ok, c in logins] == [(True, epoch), (True, second["epoch"])]

    try:
        run(main())
    finally:
        fake.close()
