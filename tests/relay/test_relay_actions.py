"""Actions through the bus (issue 21, test 5): they reach only their PBX, ActionIDs are the relay's own on
the wire and the requester's in the answer, event lists and Command output are collected, the allow and
deny lists hold, and a PBX that no relay serves fails at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("nats", reason="the relay's tests need nats-py (pip install -e '.[dev]')")

from asterisk_ami import ActionError, NotConnectedError
from asterisk_ami.errors import ActionTimeoutError
from asterisk_ami.relay import ActionNotAllowedError, Relay, RelayConfig, RemoteAmi, parse_pbx
from asterisk_ami.relay.testing import NatsServer
from asterisk_ami.testing import EventList, FakeAsterisk

from .support import SECRET, Collector, fake_pbx, in_thread, relay_config, run, until


@pytest.fixture
def fakes() -> Any:
    made = {name: fake_pbx() for name in ("p1", "p2", "p3")}
    for name, fake in made.items():
        fake.respond_command("core show name", f"I am {name}")
    yield made
    for fake in made.values():
        fake.close()


def received(fake: FakeAsterisk, action: str) -> list[dict[str, Any]]:
    return [a for a in fake.actions if str(a.get("action")).lower() == action.lower()]


def test_actions_reach_only_their_pbx_and_each_requester_gets_its_own_answer(
    nats_server: NatsServer, fakes: dict[str, FakeAsterisk]
) -> None:
    fakes["p2"].respond(
        "CoreShowChannels",
        EventList(
            [{"Channel": "PJSIP/100-00000001"}, {"Channel": "PJSIP/101-00000002"}],
            "CoreShowChannelsComplete",
            event="CoreShowChannel",
        ),
    )
    fakes["p2"].respond_command("core show a", "answer A")
    fakes["p2"].respond_command("core show b", "answer B")

    async def main() -> None:
        async with (
            Relay(relay_config(nats_server, fakes)) as relay,
            RemoteAmi(nats_server.url, pbx="p2") as one,
            RemoteAmi(nats_server.url, pbx="*") as two,
        ):
            await until(lambda: one.connected and len(two.pbxes) == 3, 10, "every PBX connected")
            listed = await one.request({"Action": "CoreShowChannels", "ActionID": "1"})
            assert [e["channel"] for e in listed.events] == ["PJSIP/100-00000001", "PJSIP/101-00000002"]
            assert listed["actionid"] == "1" and all(e["actionid"] == "1" for e in listed.events)
            assert listed.complete is not None and listed.complete["actionid"] == "1"
            # two requesters, the same ActionID, at the same time: each its own answer
            a, b = await asyncio.gather(
                one.request({"Action": "Command", "Command": "core show a", "ActionID": "same"}),
                two.request({"Action": "Command", "Command": "core show b", "ActionID": "same"}, pbx="p2"),
            )
            assert (a.output, a["actionid"]) == (["answer A"], "same")
            assert (b.output, b["actionid"]) == (["answer B"], "same")
            names = await asyncio.gather(
                *(two.request({"Action": "Command", "Command": "core show name"}, pbx=p) for p in fakes)
            )
            assert [r.output for r in names] == [["I am p1"], ["I am p2"], ["I am p3"]]
            assert "actionid" not in names[0]  # none given, none in the answer
            with pytest.raises(ActionError, match="No such command") as refused:
                await one.request({"Action": "Command", "Command": "no such thing"})
            assert refused.value.result is not None and refused.value.result.output
            assert relay.stats["pbxes"]["p2"]["actions"] == 5
        # on the wire: only p2 got the p2 actions, each with an ActionID of the relay's own
        commands = received(fakes["p2"], "Command")
        assert [c["command"] for c in commands[:2]] in (
            ["core show a", "core show b"],
            ["core show b", "core show a"],
        )
        ids = [c["actionid"] for c in [*received(fakes["p2"], "CoreShowChannels"), *commands]]
        assert len(set(ids)) == len(ids) and not {"1", "same"} & set(ids)
        assert [c["command"] for c in received(fakes["p1"], "Command")] == ["core show name"]
        assert [c["command"] for c in received(fakes["p3"], "Command")] == ["core show name"]
        assert received(fakes["p1"], "CoreShowChannels") == []

    run(main())


def test_allow_and_deny_lists_and_the_session_actions(nats_server: NatsServer) -> None:
    fake = fake_pbx()
    url = f"ami://admin@{fake.host}:{fake.port}"
    pbxes = (parse_pbx("only", url, secret=SECRET, allow=["Ping", "Command"], deny="command"),)

    async def main() -> None:
        async with (
            Relay(RelayConfig(nats=(nats_server.url,), pbxes=pbxes)),
            RemoteAmi(nats_server.url, pbx="only") as r,
        ):
            await until(lambda: r.connected, 10, "connected")
            assert (await r.request({"Action": "ping"}))["ping"] == "Pong"
            for action in ("Command", "CoreShowChannels", "Logoff", "Events", "Filter", "Login"):
                with pytest.raises(ActionNotAllowedError, match=f"does not allow {action}"):
                    await r.request({"Action": action, "Command": "core show version"})
            assert (await r.request({"Action": "Ping"}))["ping"] == "Pong"  # the session is still up
        assert [a["action"] for a in fake.actions if a["action"].lower() not in ("login", "corestatus")] == [
            "ping",
            "Ping",
            "Logoff",  # the relay's own, at its stop
        ]

    try:
        run(main())
    finally:
        fake.close()


def test_a_pbx_no_relay_serves_fails_at_once(nats_server: NatsServer, fakes: dict[str, FakeAsterisk]) -> None:
    async def main() -> None:
        relay = Relay(relay_config(nats_server, fakes))
        await relay.start()
        async with RemoteAmi(nats_server.url, pbx="p2") as remote:
            seen = Collector(remote)
            await until(lambda: remote.connected, 10, "connected")
            await in_thread(fakes["p2"].drop)  # p2's AMI session is down until the relay logs in again
            # the relay has seen it (not only the fake): else the Ping can race the close on a loaded machine
            await until(
                lambda: any(c["type"] == "disconnected" and c["pbx"] == "p2" for c in seen.controls), 10, "p2 down"
            )
            with pytest.raises(NotConnectedError, match="p2"):
                # the timeout would give ActionTimeoutError: the failure comes before it, from NATS's
                # "no responders" (nothing subscribes to ami.p2.action while the session is down)
                await remote.request({"Action": "Ping"}, timeout=1.0)
            await until(lambda: remote.connected, 10, "p2 logged in again")
            assert (await remote.request({"Action": "Ping"}, timeout=1.0))["ping"] == "Pong"
            await relay.stop()
            await until(lambda: not remote.connected, 10, "disconnected published")
            with pytest.raises(NotConnectedError):
                await remote.request({"Action": "Ping"}, timeout=1.0)
            with pytest.raises(NotConnectedError):
                await remote.request({"Action": "Ping"}, timeout=1.0, pbx="nowhere")
            assert [c["type"] for c in seen.controls if c["pbx"] == "p2"][-1] == "disconnected"

    run(main())


def test_an_action_slower_than_its_timeout(nats_server: NatsServer) -> None:
    fake = fake_pbx()
    fake.respond("Sleep", None)  # never answered

    async def main() -> None:
        async with Relay(relay_config(nats_server, {"p1": fake})), RemoteAmi(nats_server.url, pbx="p1") as r:
            await until(lambda: r.connected, 10, "connected")
            with pytest.raises(ActionTimeoutError):
                await r.request({"Action": "Sleep"}, timeout=0.2)

    try:
        run(main())
    finally:
        fake.close()
