"""Events through a relay and a real nats-server: order and uniqueness per PBX, independence of PBXes,
the control messages, a nats-server restarted mid-stream (issue 21, tests 1 and 4)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

pytest.importorskip("nats", reason="the relay's tests need nats-py (pip install -e '.[dev]')")

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


def test_nats_server_restarted_mid_stream_keeps_what_was_acknowledged_and_stores_retries_once(
    nats_server: NatsServer,
) -> None:
    fake = fake_pbx()
    n = 30_000

    async def main() -> None:
        async with Relay(relay_config(nats_server, {"p1": fake}, ack_timeout=0.3)) as relay:
            pbx = relay.pbxes["p1"]
            await until(lambda: pbx.outbox.messages_acked >= 2, 10, "connected and FullyBooted stored")
            pusher = threading.Thread(target=push_numbered, args=(fake, 0, n, 10_000.0))  # for 3 s
            pusher.start()
            await until(lambda: pbx.outbox.frames_acked > 5000, 20, "a part of the stream stored")
            await in_thread(lambda: nats_server.restart(kill=True))  # SIGKILL, then the same store again
            await until(lambda: pbx.outbox.frames_acked > 15_000, 20, "more of the stream stored")
            # hung (SIGSTOP) past the acknowledgement timeout: what was in flight is sent again, and when the
            # server goes on it gets both copies of those messages
            retried = pbx.outbox.retries
            nats_server.pause()
            await until(lambda: pbx.outbox.retries > retried, 10, "messages sent again")
            nats_server.resume()
            await in_thread(pusher.join)
            await until(lambda: pbx.outbox.seq == n + 1 and pbx.outbox.idle, 30, "everything acknowledged")
            stats = relay.stats
            messages = await stored(nats_server)
            # a consumer reading the stream from its start: every frame once, in order, no gap
            async with RemoteAmi(nats_server.url, pbx="p1", replay=True) as remote:
                seen = Collector(remote)
                await until(lambda: len(seen.numbers("p1")) == n, 20, "the whole stream")
        (numbers,) = numbers_per_epoch(messages, "p1").values()
        # FullyBooted, then every event: what was acknowledged before the SIGKILL survived, and every
        # message sent twice was stored once (a message retried after the reconnect may be stored after
        # those nats-py had buffered: the order in the stream is the relay's attempts')
        assert sorted(numbers) == list(range(1, n + 2))
        assert seen.numbers("p1") == list(range(n)) and seen.gaps == []
        assert stats["nats_disconnects"] >= 1
        assert stats["pbxes"]["p1"]["duplicates"] > 0 and stats["pbxes"]["p1"]["dropped"] == 0

    try:
        run(main())
    finally:
        fake.close()


def test_a_pbx_down_slow_or_refusing_the_login_delays_no_other(nats_server: NatsServer) -> None:
    good = fake_pbx()
    refusing = fake_pbx(secret="another secret")  # the relay's is wrong there
    slow = fake_pbx(login_delay=30.0)
    down = FakeAsterisk()  # never started: nothing listens on its port
    down.port = _free_port()
    fakes = {"good": good, "refusing": refusing, "slow": slow, "down": down}

    async def main() -> None:
        config = relay_config(nats_server, fakes, login_retry=0.2, reconnect_after=0.1, reconnect_max=0.2)
        async with Relay(config) as relay, RemoteAmi(nats_server.url, pbx="*") as remote:
            seen = Collector(remote)
            await until(lambda: remote.pbxes.get("good", {}).get("connected"), 10, "the good PBX connected")
            await in_thread(push_numbered, good, 0, 500)
            await until(lambda: len(seen.numbers("good")) == 500, 10, "the good PBX's events")
            assert seen.numbers("good") == list(range(500))
            assert (await remote.request({"Action": "Ping"}, pbx="good"))["ping"] == "Pong"
            stats = relay.stats["pbxes"]
            assert [name for name, s in stats.items() if s["connected"]] == ["good"]
            await in_thread(refusing.wait_for, lambda: refusing.connection_count >= 2, 10)  # tried again
            assert refusing.login_count == 0
            assert set(seen.frames) == {"good"}

    try:
        run(main())
    finally:
        for fake in (good, refusing, slow):
            fake.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_relay_started_before_nats_waits_for_it(nats_server: NatsServer, caplog: pytest.LogCaptureFixture) -> None:
    fake = fake_pbx()
    nats_server.stop()

    async def main() -> None:
        relay = Relay(relay_config(nats_server, {"p1": fake}))
        starting = asyncio.ensure_future(relay.start())
        await until(lambda: "cannot connect to NATS" in caplog.text, 10, "the relay to say why it waits")
        assert not starting.done()
        await in_thread(nats_server.start)
        await asyncio.wait_for(starting, 20)
        try:
            async with RemoteAmi(nats_server.url, pbx="p1") as remote:
                seen = Collector(remote)
                await until(lambda: remote.connected, 10, "connected")
                await in_thread(push_numbered, fake, 0, 10)
                await until(lambda: seen.numbers("p1") == list(range(10)), 10, "the events")
        finally:
            await relay.stop()

    try:
        run(main())
    finally:
        fake.close()


def test_the_relay_command_with_a_config_file(nats_server: NatsServer, tmp_path: Any) -> None:
    import subprocess
    import sys

    fake = fake_pbx(secret="file-Secret-99")
    config = tmp_path / "relay.json"
    config.write_text(
        json.dumps(
            {
                "nats": nats_server.url,
                "stream": "FLEET",
                "max_age": "1h",
                "pbxes": {"p1": {"url": f"ami://admin@{fake.host}:{fake.port}", "secret": "file-Secret-99"}},
            }
        )
    )
    log = tmp_path / "relay.log"

    async def main() -> None:
        with open(log, "wb") as out:
            relay = subprocess.Popen(
                [sys.executable, "-m", "asterisk_ami", "relay", "--config", str(config), "--stats", "0.2"],
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
            )
        try:
            async with RemoteAmi(nats_server.url, pbx="p1", stream="FLEET") as remote:
                seen = Collector(remote)
                await until(lambda: remote.connected, 20, "connected")
                await in_thread(push_numbered, fake, 0, 20)
                await until(lambda: seen.numbers("p1") == list(range(20)), 10, "the events")
                await until(lambda: "21 frames, 21 acked" in log.read_text(), 10, "a stats line")
        finally:
            relay.terminate()
            assert relay.wait(15) == 0
        text = log.read_text()
        assert "file-Secret-99" not in text
        assert "relaying 1 PBX(es) into the stream FLEET" in text and "relay stopped" in text

    try:
        run(main())
    finally:
        fake.close()
