"""The small PBX that the docs' ``fake`` examples run against, and the scripts they name.

It is the demo's ``FakeAsterisk`` (channel and bridge lists, a ``support`` queue with two members,
device states) plus what the pages ask of it: one active channel, ``core show version``, and
``Originate`` answered as Asterisk answers it with ``Async: true`` (Success, then the new channel's
events and the ``OriginateResponse`` carrying the action's ActionID, then its hangup). A script runs in
the test process while the example runs in its own, and is called again and again (every 0.2 s) until
the example ends: an example that waits for an event gets it whenever it subscribed.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from typing import Any

from asterisk_ami.demo import demo_events, demo_server
from asterisk_ami.testing import EventList, FakeAsterisk, FakeSession, encode_frame

ACCOUNTS = {"admin": "secret"}
CHANNEL = {
    "Event": "CoreShowChannel",
    "Channel": "PJSIP/100-00000001",
    "Uniqueid": "1764310597.0",
    "Linkedid": "1764310597.0",
    "ChannelState": "6",
    "ChannelStateDesc": "Up",
    "CallerIDNum": "100",
    "CallerIDName": "Alice",
    "Context": "from-internal",
    "Exten": "200",
    "Priority": "1",
    "Application": "Dial",
    "ApplicationData": "PJSIP/200,30",
    "BridgeId": "",
}
_uniqueids = count(7)


def _channel_events(name: str, uniqueid: str, linkedid: str) -> list[dict[str, str]]:
    common = {"Channel": name, "Uniqueid": uniqueid, "Linkedid": linkedid, "CallerIDNum": "100"}
    return [
        {"Event": "Newchannel", "Privilege": "call,all", **common, "ChannelState": "0", "ChannelStateDesc": "Down"},
        {"Event": "Newstate", "Privilege": "call,all", **common, "ChannelState": "5", "ChannelStateDesc": "Ringing"},
        {"Event": "Newstate", "Privilege": "call,all", **common, "ChannelState": "6", "ChannelStateDesc": "Up"},
    ]


def originate(frame: dict[str, Any], session: FakeSession) -> list[Any]:
    """``Originate`` with ``Async: true``: queued, the channel comes up, OriginateResponse, hangup."""
    uniqueid = str(frame.get("channelid") or f"1764310601.{next(_uniqueids)}")
    name = f"{frame.get('channel', 'PJSIP/100')}-0000000{uniqueid[-1]}"
    events = [encode_frame(e) for e in _channel_events(name, uniqueid, uniqueid)]  # no ActionID: plain events
    response = {
        "Event": "OriginateResponse",
        "Privilege": "call,all",
        "Response": "Success",
        "Channel": name,
        "Context": str(frame.get("context", "")),
        "Exten": str(frame.get("exten", "")),
        "Reason": "4",
        "Uniqueid": uniqueid,
    }
    hangup = {
        "Event": "Hangup",
        "Privilege": "call,all",
        "Channel": name,
        "Uniqueid": uniqueid,
        "Linkedid": uniqueid,
        "Cause": "16",
        "Cause-txt": "Normal Clearing",
    }
    return [{"Response": "Success", "Message": "Originate successfully queued"}, *events, response, encode_frame(hangup)]


def pbx() -> FakeAsterisk:
    fake = demo_server(dict(ACCOUNTS))
    fake.respond("CoreShowChannels", EventList([CHANNEL], "CoreShowChannelsComplete"))
    fake.respond_command("core show version", "Asterisk 22.5.2 built by docs on a fake PBX\n")
    fake.respond("Originate", originate)
    return fake


# -- scripts: called repeatedly while the example runs ------------------------------------------------


def two_events(fake: FakeAsterisk, step: int) -> None:
    """A channel comes and goes: Newchannel, then its Hangup (cause 16)."""
    channel = {"Channel": "PJSIP/100-00000001", "Uniqueid": "1764310598.1", "Linkedid": "1764310598.1"}
    fake.push_event("Newchannel", Privilege="call,all", **channel, ChannelState="4", ChannelStateDesc="Ring")
    fake.push_event({"Event": "Hangup", "Privilege": "call,all", **channel, "Cause": "16", "Cause-txt": "Normal Clearing"})


def calls(fake: FakeAsterisk, step: int) -> None:
    """The demo's two calls, once."""
    if step == 0:
        for event in demo_events():
            fake.push_event(event)


def queue_caller(fake: FakeAsterisk, step: int) -> None:
    """A caller rings the support queue and waits."""
    if step == 0:
        caller = {"Channel": "PJSIP/300-00000009", "Uniqueid": "1764310599.9", "Linkedid": "1764310599.9"}
        fake.push_event("Newchannel", **caller, CallerIDNum="300", ChannelState="6", ChannelStateDesc="Up")
        fake.push_event("QueueCallerJoin", **caller, CallerIDNum="300", Queue="support", Position="1", Count="1")


def restart(fake: FakeAsterisk, step: int) -> None:
    """Asterisk goes away once (a TCP reset), as when it is restarted."""
    if fake.connection_count == 1 and fake.login_count == 1:
        fake.drop(rst=True)


SCRIPTS: dict[str, Callable[[FakeAsterisk, int], None]] = {
    "two_events": two_events,
    "calls": calls,
    "queue_caller": queue_caller,
    "restart": restart,
}
