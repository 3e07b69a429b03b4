"""The live model (asterisk_ami/live/), sans-IO: frames in, state and change events out."""

from __future__ import annotations

import itertools
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asterisk_ami.live import LiveModel
from asterisk_ami.protocol import AmiProtocol

from .live_frames import (
    Frame,
    bridge_fields,
    core_show_channel,
    event,
    hangup,
    list_frames,
    newchannel,
    queue_member,
    queue_params,
    response,
    snapshot,
)

CORPUS = (Path(__file__).parent / "data" / "asterisk22-session.bin").read_bytes()
T = 1_800_000_000.0


def feed(model: LiveModel, *frames: Frame, now: float = T) -> list[tuple[str, tuple[Any, ...]]]:
    changes: list[tuple[str, tuple[Any, ...]]] = []
    for frame in frames:
        changes += model.feed(frame, now)
    return changes


def names(changes: list[tuple[str, tuple[Any, ...]]]) -> list[str]:
    return [name for name, _ in changes]


def asked(model: LiveModel) -> dict[str, str]:
    """The lists the model asked for: action -> ActionID (and the outbox emptied, as LiveState does)."""
    out = {a["Action"]: a["ActionID"] for a in model.outbox}
    model.outbox.clear()
    return out


def boot(
    model: LiveModel,
    channels: list[Frame] = (),
    bridges: list[Frame] = (),
    queues: list[Frame] = (),
    devices: list[Frame] = (),
) -> list[Frame]:  # type: ignore[assignment]
    """The frames answering the four bootstrap lists of the model's current login."""
    ids = asked(model)
    return (
        list_frames("CoreShowChannels", ids["CoreShowChannels"], list(channels))
        + list_frames("BridgeList", ids["BridgeList"], list(bridges))
        + list_frames("QueueStatus", ids["QueueStatus"], list(queues))
        + list_frames("DeviceStateList", ids["DeviceStateList"], list(devices))
    )


def synced_model(**lists: list[Frame]) -> LiveModel:
    model = LiveModel()
    model.login(T)
    feed(model, *boot(model, **lists))
    assert model.synced
    return model


# -- channels and calls ---------------------------------------------------------------------------------


def test_a_channel_from_newchannel_to_hangup() -> None:
    model = synced_model()
    changes = feed(model, newchannel("1.1", "PJSIP/100-1", "4"))
    assert names(changes) == ["channel_added", "call_started"]
    channel = model.view("channels")["1.1"]
    assert (channel.name, channel.state, channel.state_desc, channel.answered) == ("PJSIP/100-1", 4, "Ring", None)
    assert channel.created == T
    changes = feed(model, event("Newstate", snapshot("1.1", "PJSIP/100-1", "6")), now=T + 5)
    assert names(changes) == ["channel_changed"]
    channel, diff = changes[0][1]
    assert diff == {"channelstate": "6", "channelstatedesc": "Up"} and channel.answered == T + 5
    # every channel event carries the whole snapshot as it is now
    now_snap = snapshot("1.1", "PJSIP/100-1", num="100", cidname="Alice")
    feed(model, event("NewCallerid", now_snap))
    now_snap |= {"connectedlinenum": "200", "connectedlinename": "Bob"}
    feed(model, event("NewConnectedLine", now_snap))
    now_snap |= {"accountcode": "sales"}
    feed(model, event("NewAccountCode", now_snap))
    now_snap |= {"exten": "200", "priority": "2"}
    feed(model, event("Newexten", now_snap, application="Dial", appdata="PJSIP/200,30"))
    feed(model, event("VarSet", now_snap, variable="X", value="1"))  # no application: the Newexten's stays
    c = model.view("channels")["1.1"]
    assert (c.callerid_num, c.callerid_name, c.connected_num, c.connected_name) == ("100", "Alice", "200", "Bob")
    assert (c.account_code, c.exten, c.priority, c.application, c.app_data) == (
        "sales",
        "200",
        2,
        "Dial",
        "PJSIP/200,30",
    )
    feed(model, event("Rename", now_snap, newname="PJSIP/100-1<ZOMBIE>"))
    assert model.view("channels")["1.1"].name == "PJSIP/100-1<ZOMBIE>"
    changes = feed(model, hangup("1.1", "PJSIP/100-1", cause="17"))
    assert names(changes) == ["channel_removed", "call_ended"]
    removed = changes[0][1][0]
    assert (removed.cause, removed.cause_txt) == (17, "Normal Clearing")
    assert model.view("channels") == {} and model.view("calls") == {}


def test_unknown_fields_are_kept_never_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    model = synced_model()
    with caplog.at_level(logging.WARNING):
        feed(model, event("Newchannel", snapshot("1.1", "PJSIP/1") | {"tenantid": "acme"}))
        feed(model, {"event": "SomethingNew", "uniqueid": "1.1", "color": "blue"})
        feed(model, {"event": "AlsoNew", "foo": "bar"})
    assert model.view("channels")["1.1"].fields["tenantid"] == "acme"
    assert model.view("channels")["1.1"].fields["color"] == "blue"
    assert caplog.records == []


def test_the_newest_word_on_each_field_wins_whichever_event_said_it() -> None:
    model = synced_model()
    feed(model, newchannel("1.1", "PJSIP/100-1", "6"))
    feed(model, event("Newexten", snapshot("1.1", "PJSIP/100-1"), application="Dial", appdata="PJSIP/2"))
    # an event without a snapshot (OriginateResponse's shape) adds its fields ...
    feed(model, {"event": "OriginateResponse", "uniqueid": "1.1", "context": "from-api", "reason": "4"})
    c = model.view("channels")["1.1"]
    assert (c.context, c.fields["reason"], c.application) == ("from-api", "4", "Dial")
    # ... until a newer snapshot says otherwise; what it does not say stays
    changes = feed(model, event("Newstate", snapshot("1.1", "PJSIP/100-1", "6", context="next")))
    assert changes[0][1][1]["context"] == "next"
    c = model.view("channels")["1.1"]
    assert (c.context, c.fields["reason"], c.application, c.app_data) == ("next", "4", "Dial", "PJSIP/2")
    # a Rename's snapshot may still carry the old name: the change is told with the new one
    changes = feed(model, event("Rename", snapshot("1.1", "PJSIP/100-1"), newname="PJSIP/100-1<ZOMBIE>"))
    assert names(changes) == ["channel_changed"]
    assert changes[0][1][0].name == changes[0][1][1]["channel"] == "PJSIP/100-1<ZOMBIE>"
    # the same rules whether anyone listens or not
    quiet = synced_model()
    quiet.track_changes = False
    for frame in [
        newchannel("1.1", "PJSIP/100-1", "6"),
        event("Newexten", snapshot("1.1", "PJSIP/100-1"), application="Dial", appdata="PJSIP/2"),
        {"event": "OriginateResponse", "uniqueid": "1.1", "context": "from-api", "reason": "4"},
        event("Newstate", snapshot("1.1", "PJSIP/100-1", "6", context="next")),
        event("Rename", snapshot("1.1", "PJSIP/100-1"), newname="PJSIP/100-1<ZOMBIE>"),
    ]:
        quiet.feed(frame, T)
    assert quiet.snapshot()["channels"] == model.snapshot()["channels"]


def test_calls_group_channels_by_linkedid_and_follow_a_linkedid_change() -> None:
    model = synced_model()
    changes = feed(model, newchannel("1.1", "Local/a;1"), newchannel("1.2", "Local/a;2", linkedid="1.1"))
    assert names(changes) == ["channel_added", "call_started", "channel_added"]
    assert set(model.view("calls")["1.1"].channels) == {"1.1", "1.2"}
    feed(model, newchannel("2.1", "PJSIP/300-1"))
    # Action: Bridge joins 2.1 to the other call: its BridgeEnter carries the new Linkedid
    changes = feed(model, event("BridgeEnter", bridge_fields("b1", 1), snapshot("2.1", "PJSIP/300-1", linkedid="1.1")))
    assert "call_ended" in names(changes)
    assert set(model.view("calls")) == {"1.1"} and set(model.view("calls")["1.1"].channels) == {"1.1", "1.2", "2.1"}


def test_the_recorded_session_leaves_nothing_behind() -> None:
    model = synced_model()
    changes = feed(model, *AmiProtocol().receive_data(CORPUS))
    counts = {name: names(changes).count(name) for name in set(names(changes))}
    assert counts["channel_added"] == counts["channel_removed"] == 40
    assert counts["call_started"] == counts["call_ended"] == 20
    assert model.view("channels") == {} and model.view("calls") == {} and model.view("bridges") == {}


def test_dials_and_local_channels_update_every_channel_they_carry() -> None:
    model = synced_model()
    feed(model, newchannel("1.1", "PJSIP/100-1"), newchannel("1.2", "Local/200@default-1;1", "0"))
    feed(model, newchannel("1.3", "Local/200@default-1;2", "0"))
    feed(
        model,
        event(
            "DialBegin", snapshot("1.1", "PJSIP/100-1"), snapshot("1.2", "Local/200@default-1;1", "5", prefix="dest")
        ),
    )
    assert model.view("channels")["1.2"].state_desc == "Ringing"
    feed(
        model,
        event(
            "LocalBridge",
            snapshot("1.2", "Local/200@default-1;1", "6", prefix="localone"),
            snapshot("1.3", "Local/200@default-1;2", "6", prefix="localtwo"),
        ),
    )
    assert model.view("channels")["1.3"].state == 6
    feed(
        model,
        event(
            "DialEnd",
            snapshot("1.1", "PJSIP/100-1"),
            snapshot("1.2", "Local/200@default-1;1", prefix="dest"),
            dialstatus="ANSWER",
        ),
    )
    assert model.view("channels")["1.2"].state == 6


# -- bridges ---------------------------------------------------------------------------------------------


def test_bridge_membership_comes_from_enter_leave_merge_and_destroy() -> None:
    model = synced_model()
    feed(model, newchannel("1.1", "PJSIP/100-1"), newchannel("1.2", "PJSIP/200-1", linkedid="1.1"))
    changes = feed(model, event("BridgeCreate", bridge_fields("b1")))
    assert names(changes) == ["bridge_added"]
    feed(model, event("BridgeEnter", bridge_fields("b1", 1), snapshot("1.1", "PJSIP/100-1")))
    feed(model, event("BridgeEnter", bridge_fields("b1", 2), snapshot("1.2", "PJSIP/200-1", linkedid="1.1")))
    assert model.view("bridges")["b1"].channels == {"1.1", "1.2"}
    assert model.view("channels")["1.1"].bridge_id == "b1"
    feed(model, event("BridgeCreate", bridge_fields("b2")))
    merge = {"event": "BridgeMerge"} | {"to" + k: v for k, v in bridge_fields("b2").items()}
    merge |= {"from" + k: v for k, v in bridge_fields("b1").items()}
    feed(model, merge)
    assert model.view("bridges")["b2"].channels == {"1.1", "1.2"} and model.view("bridges")["b1"].channels == set()
    feed(model, event("BridgeLeave", bridge_fields("b2", 1), snapshot("1.2", "PJSIP/200-1", linkedid="1.1")))
    assert model.view("channels")["1.2"].bridge_id is None
    changes = feed(model, event("BridgeDestroy", bridge_fields("b2")))
    assert "bridge_removed" in names(changes)
    assert model.view("channels")["1.1"].bridge_id is None and "b2" not in model.view("bridges")


# -- queues and devices ------------------------------------------------------------------------------------


def test_queues_from_the_list_then_events_with_their_other_spelling() -> None:
    model = synced_model(
        queues=[
            queue_params("support", completed="4"),
            queue_member("support", "Local/2000@agents", "Agent 2000", paused="1"),
        ]
    )
    q = model.view("queues")["support"]
    member = q.members["Local/2000@agents"]
    assert (member.name, member.paused, member.ringinuse, q.completed) == ("Agent 2000", True, None, 4)
    member_event = {"queue": "support", "interface": "Local/2000@agents", "membername": "Agent 2000", "status": "2"}
    feed(model, event("QueueMemberStatus", **member_event, incall="1"))
    feed(model, event("QueueMemberPause", **member_event, paused="0", pausedreason=""))
    feed(model, event("QueueMemberRinginuse", **member_event, ringinuse="1"))
    member = model.view("queues")["support"].members["Local/2000@agents"]
    assert (member.status, member.in_call, member.paused, member.ringinuse) == (2, True, False, True)
    feed(model, event("QueueMemberAdded", queue="support", interface="PJSIP/300", membername="Carol", status="1"))
    feed(model, event("QueueMemberRemoved", queue="support", interface="Local/2000@agents", membername="Agent 2000"))
    assert set(model.view("queues")["support"].members) == {"PJSIP/300"}


def test_queue_callers_keep_their_order_without_renumbering_events() -> None:
    model = synced_model(queues=[queue_params("support")])
    for n in (1, 2, 3):
        feed(
            model,
            event(
                "QueueCallerJoin", snapshot(f"9.{n}", f"PJSIP/50{n}-1"), queue="support", position=str(n), count=str(n)
            ),
        )
    assert model.view("queues")["support"].callers == ("9.1", "9.2", "9.3")
    # the first one abandons: Abandon then Leave; nothing renumbers the others
    feed(
        model,
        event(
            "QueueCallerAbandon", snapshot("9.1", "PJSIP/501-1"), queue="support", position="1", originalposition="1"
        ),
    )
    feed(model, event("QueueCallerLeave", snapshot("9.1", "PJSIP/501-1"), queue="support", position="1", count="2"))
    q = model.view("queues")["support"]
    assert q.callers == ("9.2", "9.3") and q.abandoned == 1 and q.calls == 2
    feed(
        model,
        event(
            "AgentConnect", snapshot("9.2", "PJSIP/502-1"), queue="support", interface="PJSIP/300", membername="Carol"
        ),
    )
    assert model.view("queues")["support"].members["PJSIP/300"].in_call
    feed(
        model,
        event(
            "AgentComplete", snapshot("9.2", "PJSIP/502-1"), queue="support", interface="PJSIP/300", membername="Carol"
        ),
    )
    assert model.view("queues")["support"].completed == 1


def test_device_states_from_the_list_and_events() -> None:
    model = synced_model(devices=[{"event": "DeviceStateChange", "device": "PJSIP/100", "state": "NOT_INUSE"}])
    assert dict(model.view("devices")) == {"PJSIP/100": "NOT_INUSE"}
    changes = feed(model, {"event": "DeviceStateChange", "device": "PJSIP/100", "state": "INUSE"})
    assert changes == [("device_changed", ("PJSIP/100", "INUSE"))]


# -- the bootstrap -----------------------------------------------------------------------------------------


def test_every_login_asks_for_the_four_lists_and_syncs_when_they_are_in() -> None:
    model = LiveModel()
    model.login(T)
    assert not model.synced
    frames = boot(model, channels=[core_show_channel("x", "1.1", "PJSIP/100-1", duration="00:01:00")])
    changes = feed(model, *frames)
    assert model.synced and names(changes)[-1] == "synced"
    assert names(changes).count("channel_added") == 1  # found by the list: reported like any new channel
    channel = model.view("channels")["1.1"]
    assert channel.created == T - 60 and channel.answered == T - 60 and channel.application == "Wait"


def test_a_list_the_account_may_not_read_is_unavailable_never_fatal() -> None:
    model = LiveModel()
    model.login(T)
    ids = asked(model)
    feed(model, response(ids["QueueStatus"], ok=False, message="Permission denied"))
    frames = list_frames("CoreShowChannels", ids["CoreShowChannels"], []) + list_frames(
        "BridgeList", ids["BridgeList"], []
    )
    feed(model, *frames, response(ids["DeviceStateList"], ok=False, message="Invalid/unknown command"))
    assert model.synced and model.unavailable == {"queues": "Permission denied", "devices": "Invalid/unknown command"}


def test_a_list_refused_before_fully_booted_is_asked_again_after_it() -> None:
    # Asterisk accepts a login while its modules load: QueueStatus is unknown until FullyBooted
    model = LiveModel()
    model.login(T)
    ids = asked(model)
    feed(model, response(ids["QueueStatus"], ok=False, message="Invalid/unknown command: QueueStatus."))
    assert "queues" in model.unavailable
    feed(model, {"event": "FullyBooted", "status": "Fully Booted"})
    again = asked(model)
    assert list(again) == ["QueueStatus"]
    feed(model, *list_frames("QueueStatus", again["QueueStatus"], [queue_params("support")]))
    assert "queues" not in model.unavailable and "support" in model.view("queues")


def test_after_a_reconnect_ghosts_are_removed_with_their_events() -> None:
    model = synced_model()
    feed(model, newchannel("1.1", "PJSIP/100-1"), newchannel("1.2", "PJSIP/200-1"))
    feed(
        model,
        event("BridgeCreate", bridge_fields("b1")),
        event("BridgeEnter", bridge_fields("b1"), snapshot("1.1", "PJSIP/100-1")),
    )
    model.login(T + 100)  # the connection came back (Asterisk restarted: nothing survived)
    assert not model.synced and set(model.view("channels")) == {"1.1", "1.2"}
    changes = feed(model, *boot(model))
    assert sorted(n for n in names(changes) if n.endswith("removed") or n == "call_ended") == [
        "bridge_removed",
        "call_ended",
        "call_ended",
        "channel_removed",
        "channel_removed",
    ]
    assert model.synced and model.view("channels") == {} and model.view("bridges") == {}


def test_reconcile_repairs_drift_and_says_what(caplog: pytest.LogCaptureFixture) -> None:
    model = synced_model()
    feed(model, newchannel("1.1", "PJSIP/100-1"))  # its Hangup was lost
    model.reconcile(T + 60)
    ids = asked(model)
    with caplog.at_level(logging.WARNING, logger="asterisk_ami"):
        changes = feed(
            model,
            *list_frames("CoreShowChannels", ids["CoreShowChannels"], [core_show_channel("x", "2.1", "PJSIP/300-1")]),
        )
    assert names(changes).count("channel_removed") == 1 and names(changes).count("channel_added") == 1
    assert set(model.view("channels")) == {"2.1"}
    assert "removed 1 ghost channel(s), added 1" in caplog.text


def test_a_server_that_never_sends_hangup_costs_at_most_max_channels(caplog: pytest.LogCaptureFixture) -> None:
    model = LiveModel(max_channels=10)
    with caplog.at_level(logging.WARNING, logger="asterisk_ami"):
        for n in range(25):
            feed(model, newchannel(f"1.{n}", f"PJSIP/{n}"))
    assert set(model.view("channels")) == {f"1.{n}" for n in range(15, 25)}
    assert caplog.text.count("max_channels=10") == 1


# -- the merge rule: live events anywhere among the lists ------------------------------------------------------

S0_CHANNELS = [
    core_show_channel("x", "1.1", "PJSIP/100-1", bridge="b1"),
    core_show_channel("x", "1.2", "PJSIP/200-1", bridge="b1", linkedid="1.1"),
]
S0_BRIDGES = [{"event": "BridgeListItem", **bridge_fields("b1", 2)}]
S0_QUEUES = [queue_params("support"), queue_member("support", "PJSIP/300", "Carol")]
LIVE = [
    event("Newstate", snapshot("1.2", "PJSIP/200-1", "6", linkedid="1.1") | {"connectedlinenum": "100"}),
    newchannel("3.1", "PJSIP/400-1", "4"),
    event("BridgeLeave", bridge_fields("b1", 1), snapshot("1.2", "PJSIP/200-1", linkedid="1.1")),
    hangup("1.2", "PJSIP/200-1", linkedid="1.1"),
    event("QueueCallerJoin", snapshot("3.1", "PJSIP/400-1", "4"), queue="support", position="1", count="1"),
    event("QueueMemberPause", queue="support", interface="PJSIP/300", membername="Carol", paused="1", status="1"),
    {"event": "DeviceStateChange", "device": "PJSIP/300", "state": "INUSE"},
]


def final_state(stream: list[Frame]) -> dict[str, Any]:
    model = LiveModel()
    model.login(T)
    ids = asked(model)
    by_action = {"CoreShowChannels": "C", "BridgeList": "B", "QueueStatus": "Q", "DeviceStateList": "D"}
    placeholder = {v: ids[k] for k, v in by_action.items()}
    frames = [{**f, "actionid": placeholder[f["actionid"]]} if f.get("actionid") in placeholder else f for f in stream]
    feed(model, *frames)
    assert model.synced
    snap = model.snapshot()
    for c in snap["channels"].values():  # when a channel was first seen differs: the state does not
        c["created"] = c["answered"] = 0
        c["fields"].pop("duration", None)
    for call in snap["calls"].values():
        call["started"] = 0
    for b in snap["bridges"].values():
        b["created"] = 0
    return snap


LISTS = (
    list_frames("CoreShowChannels", "C", S0_CHANNELS)
    + list_frames("BridgeList", "B", S0_BRIDGES)
    + list_frames("QueueStatus", "Q", S0_QUEUES)
    + list_frames("DeviceStateList", "D", [{"event": "DeviceStateChange", "device": "PJSIP/300", "state": "NOT_INUSE"}])
)
REFERENCE = final_state(LISTS + LIVE)


def test_the_reference_applies_every_live_event() -> None:
    assert set(REFERENCE["channels"]) == {"1.1", "3.1"}
    assert REFERENCE["bridges"]["b1"]["channels"] == ["1.1"]
    assert REFERENCE["queues"]["support"]["callers"] == ["3.1"]
    assert REFERENCE["queues"]["support"]["members"]["PJSIP/300"]["paused"] is True
    assert REFERENCE["devices"] == {"PJSIP/300": "INUSE"}


@pytest.mark.parametrize("position", range(len(LISTS) + 1))
def test_live_events_at_every_position_of_the_lists_give_the_same_model(position: int) -> None:
    assert final_state(LISTS[:position] + LIVE + LISTS[position:]) == REFERENCE


@settings(max_examples=150, deadline=None)
@given(st.lists(st.booleans(), min_size=len(LISTS) + len(LIVE), max_size=len(LISTS) + len(LIVE)))
def test_any_interleaving_of_the_lists_and_the_live_events_gives_the_same_model(picks: list[bool]) -> None:
    lists, live, stream = iter(LISTS), iter(LIVE), []
    for pick in picks:  # a merge of the two sequences, each kept in its order
        frame = next(lists, None) if pick else next(live, None)
        if frame is None:
            frame = next(live, None) if pick else next(lists, None)
        stream.append(frame)
    assert final_state(stream) == REFERENCE


# -- readers on other threads ---------------------------------------------------------------------------------


def test_readers_on_other_threads_see_whole_events_and_a_consistent_snapshot() -> None:
    model = synced_model()
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                channels, calls = model.view("channels"), model.view("calls")
                for c in channels.values():
                    assert c.name  # objects are whole
                snap = model.snapshot()
                json.dumps(snap)
                linked = {u for call in snap["calls"].values() for u in call["channels"]}
                assert linked == set(snap["channels"])  # calls and channels at the same point
                assert isinstance(calls, type(channels))
            except BaseException as exc:
                errors.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for n, (a, b) in enumerate(itertools.product(range(40), range(2))):
        feed(model, newchannel(f"{a}.{b}", f"PJSIP/{a}-{b}", linkedid=f"{a}.0"))
        if n % 3 == 0:
            feed(model, hangup(f"{a}.{b}", f"PJSIP/{a}-{b}", linkedid=f"{a}.0"))
    stop.set()
    for t in readers:
        t.join(10)
    assert errors == []
    with pytest.raises(TypeError):
        model.view("channels")["x"] = None  # type: ignore[index]
