"""``LiveState`` attached to a client, on both shells, against FakeAsterisk; and ``originate()``."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from asterisk_ami import ActionError, InvalidMessageError
from asterisk_ami.live import LiveState
from asterisk_ami.testing import EventList, FakeAsterisk

from .helpers import MakeClient, Recorder, wait_until
from .live_frames import snapshot


@pytest.fixture
def make_client(make_any_client: MakeClient) -> MakeClient:
    """Every test here runs on both shells."""
    return make_any_client


def channel_item(uid: str, name: str) -> dict[str, Any]:
    item = {k.capitalize(): v for k, v in snapshot(uid, name).items()}  # header names as written
    return item | {
        "Event": "CoreShowChannel",
        "Application": "Wait",
        "ApplicationData": "30",
        "Duration": "00:00:05",
        "BridgeId": "",
    }


def serve_lists(fake: FakeAsterisk, channels: list[dict[str, Any]]) -> None:
    fake.respond("CoreShowChannels", EventList(channels, "CoreShowChannelsComplete"))
    fake.respond("BridgeList", EventList([], "BridgeListComplete"))
    fake.respond("QueueStatus", EventList([], "QueueStatusComplete"))
    fake.respond("DeviceStateList", EventList([], "DeviceStateListComplete"))


def channel_event(name: str, uid: str, channel: str, **extra: str) -> dict[str, Any]:
    return {"Event": name, **{k.capitalize(): v for k, v in snapshot(uid, channel).items()}, **extra}


class Seen:
    """Live events as (name, thread name), thread-safe."""

    def __init__(self, live: LiveState, *names: str) -> None:
        self.items: list[tuple[str, Any, str]] = []
        self.lock = threading.Lock()
        for name in names:
            live.on(name, lambda *args, n=name: self.add(n, args))

    def add(self, name: str, args: tuple[Any, ...]) -> None:
        with self.lock:
            self.items.append((name, args[0] if args else None, threading.current_thread().name))

    def names(self) -> list[str]:
        with self.lock:
            return [n for n, _, _ in self.items]


@pytest.mark.parametrize("attach", ["before", "after"])
def test_bootstrap_then_live_events_with_handlers_where_the_clients_run(
    fake: FakeAsterisk, make_client: MakeClient, attach: str
) -> None:
    serve_lists(fake, [channel_item("1.1", "PJSIP/100-1")])
    ami = make_client()
    rec = Recorder(ami)
    live = LiveState(ami) if attach == "before" else None
    seen = Seen(live, "channel_added", "channel_removed", "call_started", "synced") if live else None
    ami.connect()
    rec.wait_for("ami_login")
    if live is None:
        live = LiveState(ami)
        seen = Seen(live, "channel_added", "channel_removed", "call_started", "synced")
    assert seen is not None
    wait_until(lambda: live.synced, 5, "the live state to sync")
    assert set(live.channels) == {"1.1"} and live.channels["1.1"].name == "PJSIP/100-1"
    assert live.unavailable == {}
    fake.push_event(channel_event("Newchannel", "2.1", "PJSIP/200-1"))
    fake.push_event(channel_event("Hangup", "1.1", "PJSIP/100-1", Cause="16", **{"Cause-txt": "Normal Clearing"}))
    wait_until(lambda: "channel_removed" in seen.names(), 5, "the Hangup")
    assert set(live.channels) == {"2.1"}
    handler_threads = {thread for _, _, thread in seen.items}
    assert handler_threads <= {"asterisk-ami-dispatch", "test-asyncio-loop"} and len(handler_threads) == 1
    if attach == "before":  # attached after, its first synced may come before Seen listens
        assert seen.names().count("synced") == 1
    live.close()


def test_a_reconnect_resyncs_and_removes_ghosts(fake: FakeAsterisk, make_client: MakeClient) -> None:
    serve_lists(fake, [channel_item("1.1", "PJSIP/100-1"), channel_item("1.2", "PJSIP/200-1")])
    ami = make_client(reconnect=True, reconnect_after=20)
    live = LiveState(ami)
    seen = Seen(live, "channel_removed", "synced")
    rec = Recorder(ami)
    ami.connect()
    wait_until(lambda: live.synced and len(live.channels) == 2, 5, "the first sync")
    serve_lists(fake, [channel_item("1.2", "PJSIP/200-1")])  # 1.1 hung up while we were away
    fake.drop()
    rec.wait_for("ami_login", 2)
    wait_until(lambda: seen.names().count("synced") == 2, 5, "the second sync")
    assert set(live.channels) == {"1.2"}
    assert [item.uniqueid for n, item, _ in seen.items if n == "channel_removed"] == ["1.1"]
    live.close()


def test_reconcile_interval_repairs_a_ghost(fake: FakeAsterisk, make_client: MakeClient) -> None:
    serve_lists(fake, [])
    ami = make_client()
    live = LiveState(ami, reconcile_interval=0.2)
    ami.connect()
    wait_until(lambda: live.synced, 5, "the sync")
    fake.push_event(channel_event("Newchannel", "3.1", "PJSIP/300-1"))  # its Hangup will never come
    wait_until(lambda: "3.1" in live.channels, 5, "the channel")
    wait_until(lambda: "3.1" not in live.channels, 5, "the reconcile to remove the ghost")
    live.close()


def test_originate_correlates_its_originate_response(fake: FakeAsterisk, make_client: MakeClient) -> None:
    def answer(action: dict[str, Any], session: Any) -> list[dict[str, Any]]:
        busy = action["channel"] == "PJSIP/busy"
        return [
            {"Response": "Success", "Message": "Originate successfully queued"},
            {
                "Event": "OriginateResponse",
                "Privilege": "call,all",
                "Response": "Failure" if busy else "Success",
                "Channel": action["channel"],
                "Context": "default",
                "Exten": "200",
                "Reason": "5" if busy else "4",
                "Uniqueid": "<null>" if busy else "1.9",
            },
        ]

    fake.respond("Originate", answer)
    ami = make_client()
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    # another client's OriginateResponse first: never taken for ours
    fake.push_event("OriginateResponse", ActionID="someone-else", Response="Success", Reason="4")
    result = ami.originate("PJSIP/100", exten="200", context="default", variables={"A": 1}, timeout=20).result(5)
    assert (result.success, result.reason, result.reason_name, result.uniqueid) == (True, 4, "answered", "1.9")
    sent = next(a for a in fake.actions if a.get("action") == "Originate")
    assert sent["async"] == "true" and sent["timeout"] == "20000" and sent["variable"] == "A=1"
    busy = ami.originate("PJSIP/busy", application="Wait", data="1").result(5)
    assert (busy.success, busy.reason_name, busy.uniqueid) == (False, "busy", None)
    fake.respond("Originate", {"Response": "Error", "Message": "Originate failed"})
    with pytest.raises(ActionError):
        ami.originate("PJSIP/100", exten="200", context="default").result(5)
    with pytest.raises(ValueError):
        ami.originate("PJSIP/100", exten="200").result(5)  # an exten needs its context


def test_originate_options_are_written_as_asterisk_reads_them(fake: FakeAsterisk, make_client: MakeClient) -> None:
    def answer(action: dict[str, Any], session: Any) -> list[dict[str, Any]]:
        return [
            {"Response": "Success", "Message": "Originate successfully queued"},
            {
                "Event": "OriginateResponse",
                "Privilege": "call,all",
                "Response": "Failure",
                "Channel": action["channel"],
                "Application": "Wait",
                "Data": "1",
                "Reason": "0",
                "Uniqueid": "<unknown>",  # what Asterisk writes when it made no channel
                "CallerIDNum": "<unknown>",
                "CallerIDName": "<unknown>",
            },
        ]

    fake.respond("Originate", answer)
    ami = make_client()
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")

    def sent() -> dict[str, Any]:
        return [a for a in fake.actions if a.get("action") == "Originate"][-1]

    failed = ami.originate(
        "Local/999@nowhere", application="Wait", data="1", variables={"A": 1, "B": None}, codecs=["alaw", "ulaw"]
    ).result(5)
    assert (failed.success, failed.reason_name, failed.uniqueid) == (False, "failure", None)
    assert failed.event["uniqueid"] == "<unknown>"  # the raw event keeps what Asterisk sent
    assert sent()["variable"] == "A=1"  # B=None is left out, as send() leaves out None values
    assert sent()["codecs"] == "alaw,ulaw"  # one header: Asterisk reads only the first Codecs:
    ami.originate("Local/1@default", application="Wait", variables=["C=3", "D=x=y"], codecs="gsm").result(5)
    assert sent()["variable"] == ["C=3", "D=x=y"] and sent()["codecs"] == "gsm"
    ami.originate("Local/1@default", application="Wait", variables=("E=5",)).result(5)
    assert sent()["variable"] == "E=5" and "codecs" not in sent()
    count = len(fake.actions)
    bad: list[dict[str, Any]] = [
        {"variables": ["A"]},  # no NAME=
        {"variables": ["=1"]},
        {"variables": [b"A=1"]},
        {"variables": "A=1"},  # one string is not a list of them
        {"variables": {"A": b"secret-value"}},
        {"variables": {"A=B": "1"}},
        {"variables": 5},
        {"codecs": [b"ulaw"]},
        {"codecs": ["ulaw,alaw", "gsm"]},
        {"codecs": 5},
    ]
    for options in bad:
        with pytest.raises(InvalidMessageError) as info:
            ami.originate("Local/1@default", application="Wait", **options).result(5)
        assert "secret-value" not in str(info.value) and "originate()" in str(info.value)
    assert ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"
    assert len(fake.actions) == count + 1  # nothing of the refused ones was sent
