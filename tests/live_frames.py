"""Frames for the live-state tests, with the field sets Asterisk 22 sends (tests/data/asterisk22-session.bin)."""

from __future__ import annotations

from typing import Any

Frame = dict[str, Any]


def snapshot(
    uid: str, name: str, state: str = "6", linkedid: str | None = None, prefix: str = "", **extra: str
) -> Frame:
    """A channel snapshot (the headers every Asterisk 12+ channel event carries), lower-case keys."""
    states = {"0": "Down", "4": "Ring", "5": "Ringing", "6": "Up"}
    fields = {
        "channel": name,
        "channelstate": state,
        "channelstatedesc": states.get(state, "Unknown"),
        "calleridnum": extra.pop("num", "<unknown>"),
        "calleridname": extra.pop("cidname", "<unknown>"),
        "connectedlinenum": "<unknown>",
        "connectedlinename": "<unknown>",
        "language": "en",
        "accountcode": "",
        "context": "default",
        "exten": "100",
        "priority": "1",
        "uniqueid": uid,
        "linkedid": linkedid or uid,
    }
    return {prefix + k: v for k, v in fields.items()} | extra


def event(name: str, *parts: Frame, **headers: str) -> Frame:
    frame: Frame = {"event": name, "privilege": "call,all"}
    for part in parts:
        frame.update(part)
    frame.update({k.lower(): v for k, v in headers.items()})
    return frame


def newchannel(uid: str, name: str, state: str = "4", linkedid: str | None = None) -> Frame:
    return event("Newchannel", snapshot(uid, name, state, linkedid))


def hangup(uid: str, name: str, linkedid: str | None = None, cause: str = "16") -> Frame:
    return event("Hangup", snapshot(uid, name, "6", linkedid), cause=cause, causetxt="Normal Clearing")


def bridge_fields(bid: str, members: int = 0) -> Frame:
    return {
        "bridgeuniqueid": bid,
        "bridgetype": "basic",
        "bridgetechnology": "simple_bridge",
        "bridgecreator": "<unknown>",
        "bridgename": "<unknown>",
        "bridgenumchannels": str(members),
        "bridgevideosourcemode": "none",
    }


def response(action_id: str, ok: bool = True, message: str = "Results will follow") -> Frame:
    if ok:
        return {"response": "Success", "actionid": action_id, "eventlist": "start", "message": message}
    return {"response": "Error", "actionid": action_id, "message": message}


def complete(name: str, action_id: str, items: int) -> Frame:
    return {"event": name, "actionid": action_id, "eventlist": "Complete", "listitems": str(items)}


def core_show_channel(
    action_id: str, uid: str, name: str, bridge: str = "", duration: str = "00:00:10", **kw: str
) -> Frame:
    item = {
        "event": "CoreShowChannel",
        "actionid": action_id,
        **snapshot(uid, name, kw.pop("state", "6"), kw.pop("linkedid", None)),
    }
    item.update(
        {
            "application": kw.pop("application", "Wait"),
            "applicationdata": "30",
            "duration": duration,
            "bridgeid": bridge,
        }
    )
    return item


def list_frames(action: str, action_id: str, items: list[Frame]) -> list[Frame]:
    """A whole list answer: the response, the items with the ActionID, the Complete event."""
    complete_name = {
        "CoreShowChannels": "CoreShowChannelsComplete",
        "BridgeList": "BridgeListComplete",
        "QueueStatus": "QueueStatusComplete",
        "DeviceStateList": "DeviceStateListComplete",
    }[action]
    body = [{**item, "actionid": action_id} for item in items]
    return [response(action_id), *body, complete(complete_name, action_id, len(body))]


def queue_params(queue: str, **kw: str) -> Frame:
    fields = {"event": "QueueParams", "queue": queue, "max": "0", "strategy": "ringall", "calls": "0", "holdtime": "0"}
    fields.update({"talktime": "0", "completed": "0", "abandoned": "0", "servicelevel": "60", "weight": "0"})
    fields.update(kw)
    return fields


def queue_member(queue: str, interface: str, name: str, status: str = "1", paused: str = "0") -> Frame:
    return {
        "event": "QueueMember",
        "queue": queue,
        "name": name,
        "location": interface,
        "stateinterface": interface,
        "membership": "dynamic",
        "penalty": "0",
        "callstaken": "0",
        "lastcall": "0",
        "lastpause": "0",
        "logintime": "0",
        "incall": "0",
        "status": status,
        "paused": paused,
        "pausedreason": "",
        "wrapuptime": "0",
    }
