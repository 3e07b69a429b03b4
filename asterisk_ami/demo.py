"""``asterisk-ami demo``: two calls played by a built-in FakeAsterisk, received through the library.

The events carry the field sets Asterisk 22 sends for a PJSIP call that is dialled, answered,
bridged and hung up, so what a newcomer sees is what a real PBX would show.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .sync import AsteriskAmi
from .testing import EventList, FakeAsterisk

Event = dict[str, str]


def _channel(
    prefix: str,
    name: str,
    state: str,
    num: str,
    cid: str,
    peer_num: str,
    peer_name: str,
    uid: str,
    linkedid: str,
    exten: str,
    priority: str = "1",
) -> Event:
    states = {"0": "Down", "4": "Ring", "5": "Ringing", "6": "Up"}
    return {
        f"{prefix}Channel": name,
        f"{prefix}ChannelState": state,
        f"{prefix}ChannelStateDesc": states[state],
        f"{prefix}CallerIDNum": num,
        f"{prefix}CallerIDName": cid,
        f"{prefix}ConnectedLineNum": peer_num,
        f"{prefix}ConnectedLineName": peer_name,
        f"{prefix}Language": "en",
        f"{prefix}AccountCode": "",
        f"{prefix}Context": "from-internal",
        f"{prefix}Exten": exten,
        f"{prefix}Priority": priority,
        f"{prefix}Uniqueid": uid,
        f"{prefix}Linkedid": linkedid,
    }


def call_flow(n: int, caller: tuple[str, str], callee: tuple[str, str], base: float) -> Iterator[Event]:
    """The events of one answered call from PJSIP/<caller> to PJSIP/<callee>, in Asterisk's order."""
    a_num, a_name = caller
    b_num, b_name = callee
    a_uid, b_uid = f"{base:.1f}", f"{base + 0.1:.1f}"
    a_chan, b_chan = f"PJSIP/{a_num}-0000000{2 * n}", f"PJSIP/{b_num}-0000000{2 * n + 1}"
    bridge = f"6c2b7e1a-0c1d-4b8e-9f3a-00000000000{n}"

    def a(state: str, priority: str = "1", peer: tuple[str, str] = ("<unknown>", "<unknown>")) -> Event:
        return _channel("", a_chan, state, a_num, a_name, peer[0], peer[1], a_uid, a_uid, b_num, priority)

    def b(state: str, prefix: str = "") -> Event:
        return _channel(prefix, b_chan, state, b_num, b_name, a_num, a_name, b_uid, a_uid, "s")

    def dest(state: str) -> Event:
        return b(state, prefix="Dest")

    bridge_fields = {
        "BridgeUniqueid": bridge,
        "BridgeType": "basic",
        "BridgeTechnology": "simple_bridge",
        "BridgeCreator": "<unknown>",
        "BridgeName": "<unknown>",
        "BridgeNumChannels": "0",
        "BridgeVideoSourceMode": "none",
    }
    yield {"Event": "Newchannel", "Privilege": "call,all", **a("4")}
    yield {
        "Event": "Newexten",
        "Privilege": "dialplan,all",
        **a("4"),
        "Extension": b_num,
        "Application": "Dial",
        "AppData": f"PJSIP/{b_num},30",
    }
    yield {"Event": "Newchannel", "Privilege": "call,all", **b("0")}
    yield {"Event": "DialBegin", "Privilege": "call,all", **a("4"), **dest("0"), "DialString": b_num}
    yield {"Event": "Newstate", "Privilege": "call,all", **b("5")}
    yield {"Event": "Newstate", "Privilege": "call,all", **b("6")}
    yield {"Event": "DialEnd", "Privilege": "call,all", **a("4"), **dest("6"), "DialStatus": "ANSWER"}
    yield {"Event": "Newstate", "Privilege": "call,all", **a("6", peer=callee)}
    yield {"Event": "BridgeCreate", "Privilege": "call,all", **bridge_fields}
    yield {
        "Event": "BridgeEnter",
        "Privilege": "call,all",
        **bridge_fields,
        "BridgeNumChannels": "1",
        **a("6", peer=callee),
    }
    yield {"Event": "BridgeEnter", "Privilege": "call,all", **bridge_fields, "BridgeNumChannels": "2", **b("6")}
    yield {"Event": "BridgeLeave", "Privilege": "call,all", **bridge_fields, "BridgeNumChannels": "1", **b("6")}
    yield {"Event": "Hangup", "Privilege": "call,all", **b("6"), "Cause": "16", "Cause-txt": "Normal Clearing"}
    yield {"Event": "BridgeLeave", "Privilege": "call,all", **bridge_fields, **a("6", peer=callee)}
    yield {"Event": "BridgeDestroy", "Privilege": "call,all", **bridge_fields}
    yield {
        "Event": "Hangup",
        "Privilege": "call,all",
        **a("6", peer=callee),
        "Cause": "16",
        "Cause-txt": "Normal Clearing",
    }


def demo_events(round_: int = 0) -> list[Event]:
    base = 1764310597.0 + 10 * round_
    first = list(call_flow(0, ("1001", "Alice"), ("1002", "Bob"), base))
    second = list(call_flow(1, ("1003", "Carol"), ("1004", "Dave"), base + 1))
    return first + second


def _member(name: str, interface: str, status: str) -> Event:
    return {
        "Queue": "support",
        "Name": name,
        "Location": interface,
        "StateInterface": interface,
        "Membership": "static",
        "Penalty": "0",
        "CallsTaken": "0",
        "LastCall": "0",
        "LastPause": "0",
        "LoginTime": "0",
        "InCall": "0",
        "Status": status,
        "Paused": "0",
        "PausedReason": "",
        "Wrapuptime": "0",
    }


def demo_server(accounts: dict[str, str]) -> FakeAsterisk:
    """The demo's FakeAsterisk: it also answers what a live view asks at login (the channel and bridge
    lists, a ``support`` queue with two members, device states)."""
    fake = FakeAsterisk(accounts=accounts)
    fake.respond("CoreShowChannels", EventList([], "CoreShowChannelsComplete", event="CoreShowChannel"))
    fake.respond("BridgeList", EventList([], "BridgeListComplete", event="BridgeListItem"))
    queue = {
        "Event": "QueueParams",
        "Queue": "support",
        "Max": "0",
        "Strategy": "ringall",
        "Calls": "0",
        "Holdtime": "0",
        "TalkTime": "0",
        "Completed": "0",
        "Abandoned": "0",
        "ServiceLevel": "60",
        "ServicelevelPerf": "0.0",
        "Weight": "0",
    }
    members = [
        {"Event": "QueueMember", **_member(n, i, "1")} for n, i in (("Bob", "PJSIP/1002"), ("Dave", "PJSIP/1004"))
    ]
    fake.respond("QueueStatus", EventList([queue, *members], "QueueStatusComplete"))
    devices = [{"Event": "DeviceStateChange", "Device": f"PJSIP/{n}", "State": "NOT_INUSE"} for n in range(1001, 1005)]
    fake.respond("DeviceStateList", EventList(devices, "DeviceStateListComplete"))
    return fake


def run_demo(
    on_frame: Callable[[dict[str, Any]], None],
    done: threading.Event,
    speed: float = 1.0,
    attach: Callable[[AsteriskAmi], object] | None = None,
    rounds: int = 1,
) -> None:
    """Start a FakeAsterisk, connect to it with ``AsteriskAmi`` and pass every event to ``on_frame``;
    ``attach(ami)`` runs before it connects (``demo --top`` attaches a LiveState); ``rounds`` plays the
    calls again (0: until ``done``)."""
    secret = "demo"
    with demo_server({"demo": secret}) as fake:
        ami = AsteriskAmi(host=fake.host, port=fake.port, username="demo", password=secret)
        if attach is not None:
            attach(ami)
        events = [e for n in range(rounds or 1) for e in demo_events(n)]
        seen = threading.Event()
        received: list[int] = [0]

        def on_event(frame: dict[str, Any]) -> None:
            # the stream a user watches: events only, not the login response, not the greeting
            if "event" not in frame or frame.get("event") in ("FullyBooted", "SuccessfulAuth"):
                return
            on_frame(frame)
            received[0] += 1
            if received[0] == len(events):
                seen.set()

        logged_in = threading.Event()
        ami.on("ami_data", on_event)
        ami.on("ami_login", lambda ok, frame: logged_in.set())
        ami.connect()
        try:
            if not logged_in.wait(10):
                raise TimeoutError("demo: the built-in server did not answer the login")
            round_ = 0
            while not done.is_set():
                for event in demo_events(round_) if not rounds else events:
                    if done.is_set():
                        break
                    fake.push_event(event)
                    time.sleep(0.05 / max(speed, 0.001))
                round_ += 1
                if rounds:
                    break
            while not done.is_set() and not seen.wait(0.1):
                pass
        finally:
            ami.disconnect()
