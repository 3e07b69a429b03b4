"""What the live state can follow on an account that cannot read every event class (issue 19): the model
(sans-IO) on each source of the rule in asterisk_ami/live/access.py, then ``LiveState`` on both shells and
``asterisk-ami top`` against a FakeAsterisk account whose manager.conf ``read`` lacks ``call``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from asterisk_ami.live import LiveModel, LiveState, state
from asterisk_ami.live.access import mask_classes, read_classes
from asterisk_ami.testing import EventList, FakeAsterisk

from .cli_helpers import args_for, run_cli
from .helpers import MakeClient, Recorder, wait_until
from .live_frames import Frame, core_show_channel, list_frames, newchannel, queue_member, queue_params, snapshot

T = 1_800_000_000.0
NO_CALL = "system,log,verbose,command,agent,user,config,dtmf,reporting,cdr,dialplan,originate"
CALL_PARTS = {"channels", "calls", "bridges", "devices"}


def show_user(action_id: str, read: str, ok: bool = True) -> Frame:
    """Asterisk 22's answer to ``Command: manager show user NAME`` (or its refusal)."""
    if not ok:
        return {"response": "Error", "actionid": action_id, "message": "Permission denied"}
    lines = ["", "          username: bob", "            secret: <Set>", "         read perm: " + read]
    return {"response": "Success", "actionid": action_id, "message": "Command output follows", "output": lines}


def login(model: LiveModel, **options: Any) -> dict[str, dict[str, str]]:
    model.login(T, **options)
    out = {a.get("Command", a["Action"]): a for a in model.take_outbox()}
    return out


def lists(out: dict[str, dict[str, str]], channels: list[Frame] = (), queues: list[Frame] = ()) -> list[Frame]:  # type: ignore[assignment]
    frames: list[Frame] = []
    for action, items in (("CoreShowChannels", channels), ("BridgeList", []), ("QueueStatus", queues)):
        if action in out:
            frames += list_frames(action, out[action]["ActionID"], [{**i} for i in items])
    if "DeviceStateList" in out:
        frames += list_frames("DeviceStateList", out["DeviceStateList"]["ActionID"], [])
    return frames


def feed(model: LiveModel, frames: list[Frame]) -> list[tuple[str, tuple[Any, ...]]]:
    changes: list[tuple[str, tuple[Any, ...]]] = []
    for frame in frames:
        changes += model.feed(frame, T)
    return changes


def test_the_masks_and_the_read_line_read_as_asterisk_reads_them() -> None:
    assert mask_classes(True) == mask_classes("on") == mask_classes("all") and "call" in mask_classes(True)
    assert mask_classes(False) == mask_classes("off") == frozenset()
    assert mask_classes("system,agent") == {"system", "agent"}
    assert mask_classes("3") == {"system", "call"} and mask_classes(str(1 << 15)) == {"cc"}
    assert read_classes(["", "         read perm: system,agent"]) == (frozenset({"system", "agent"}), "system,agent")
    assert read_classes(["read perm: all"]) == (mask_classes(True), "all")
    assert read_classes(["No such command 'manager show user'"]) is None


def test_an_account_whose_read_lacks_call_follows_no_calls(caplog: pytest.LogCaptureFixture) -> None:
    model = LiveModel()
    out = login(model, username="bob")
    assert next(iter(out)) == "manager show user bob"  # asked first: answered before the lists
    access = out.pop("manager show user bob")["ActionID"]
    assert not model.synced
    with caplog.at_level(logging.INFO, logger="asterisk_ami"):
        feed(model, [show_user(access, NO_CALL)])
        assert not model.synced  # the lists are still out
        item = core_show_channel(out["CoreShowChannels"]["ActionID"], "1.1", "PJSIP/100-1")
        feed(model, lists(out, [item], [queue_params("support"), queue_member("support", "PJSIP/1", "Al")]))
    assert model.synced
    assert set(model.unavailable) == CALL_PARTS
    assert "does not read call events" in model.unavailable["channels"]
    assert model.view("channels") == {} and model.view("calls") == {}  # the login's list is not shown as live
    assert list(model.view("queues")) == ["support"]  # agent is read: queues are followed
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"[bob] read = {NO_CALL},call" in warnings[0] and "channels, calls, bridges, devices" in warnings[0]
    # the next login (a reconnect): the same answer, no second WARNING
    out = login(model, username="bob")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="asterisk_ami"):
        feed(model, [show_user(out.pop("manager show user bob")["ActionID"], NO_CALL), *lists(out)])
    assert model.synced and set(model.unavailable) == CALL_PARTS
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_account_that_reads_everything_follows_everything() -> None:
    model = LiveModel()
    out = login(model, username="admin")
    feed(model, [show_user(out.pop("manager show user admin")["ActionID"], NO_CALL + ",call,all")])
    item = core_show_channel(out["CoreShowChannels"]["ActionID"], "1.1", "PJSIP/100-1")
    feed(model, lists(out, [item]))
    assert model.synced and model.unavailable == {} and list(model.view("channels")) == ["1.1"]
    assert not model.wants_check


@pytest.mark.parametrize("events", [False, "system", "off", "agent,user"])
def test_the_events_option_keeps_classes_out(events: bool | str, caplog: pytest.LogCaptureFixture) -> None:
    model = LiveModel()
    with caplog.at_level(logging.WARNING, logger="asterisk_ami"):
        out = login(model, username="bob", events=events)
    assert "CoreShowChannels" not in out and "DeviceStateList" not in out  # never asked: nothing could follow them
    assert ("QueueStatus" in out) == ("agent" in str(events))
    feed(model, [show_user(out.pop("manager show user bob")["ActionID"], "all"), *lists(out)])
    assert model.synced and set(model.unavailable) >= CALL_PARTS
    assert "events option" in model.unavailable["channels"]
    assert len(caplog.records) == (1 if "agent" in str(events) else 2)
    assert "events=True" in caplog.records[0].getMessage()


def refused(model: LiveModel, channels: list[Frame] = ()) -> dict[str, dict[str, str]]:  # type: ignore[assignment]
    """A login where Asterisk will not say (no command write): the bootstrap is in, the classes unconfirmed."""
    out = login(model, username="bob")
    feed(model, [show_user(out.pop("manager show user bob")["ActionID"], "", ok=False)])
    feed(model, lists(out, channels))
    assert model.synced and model.unavailable == {}
    return out


def check(model: LiveModel, channels: list[Frame] = (), queues: list[Frame] = ()) -> None:  # type: ignore[assignment]
    model.reconcile(T, reason="check")
    out = {a["Action"]: a for a in model.take_outbox()}
    feed(model, lists(out, channels, queues))


def test_when_asterisk_will_not_say_a_changed_list_without_call_events_tells() -> None:
    model = LiveModel()
    refused(model)
    assert model.wants_check
    check(model)  # nothing changed: nothing to tell
    assert model.wants_check and model.unavailable == {}
    check(model, [core_show_channel("x", "2.1", "PJSIP/200-1"), core_show_channel("x", "2.2", "PJSIP/201-1")])
    assert set(model.unavailable) == CALL_PARTS
    assert "2 channel(s) appeared or went away" in model.unavailable["channels"]
    assert model.view("channels") == {}
    assert model.wants_check  # agent is still unconfirmed: the queue list tells it
    check(model, queues=[queue_params("support"), queue_member("support", "PJSIP/1", "Al")])
    assert "queues" in model.unavailable and not model.wants_check


def test_a_check_settled_in_one_login_is_wanted_again_at_the_next() -> None:
    """wants_check stays False for the rest of a login once it is (the attachment stops asking after
    every frame, see may_want_check); a new login starts over."""
    model = LiveModel()
    out = login(model, username="bob")
    assert model.may_want_check and not model.wants_check  # not synced yet: undecided
    feed(model, [show_user(out.pop("manager show user bob")["ActionID"], NO_CALL + ",call,all"), *lists(out)])
    assert not model.wants_check and not model.may_want_check  # Asterisk said: nothing to tell
    refused(model)  # the next login, where Asterisk will not say
    assert model.may_want_check and model.wants_check


@pytest.mark.parametrize(
    "proof",
    [
        newchannel("3.1", "PJSIP/300-1"),  # with its Privilege header
        {"event": "Newchannel", **snapshot("3.1", "PJSIP/300-1")},  # a server that leaves Privilege out
        {"event": "BridgeCreate", "privilege": "call,all", "bridgeuniqueid": "b1"},
    ],
    ids=["newchannel", "no-privilege", "bridge"],
)
def test_when_asterisk_will_not_say_one_call_event_confirms_call(proof: Frame) -> None:
    model = LiveModel()
    refused(model)
    feed(model, [proof])
    feed(model, [{"event": "QueueMemberStatus", "privilege": "agent,all", "queue": "q", "interface": "PJSIP/1"}])
    assert not model.wants_check
    check(model, [core_show_channel("x", "9.9", "PJSIP/900-1")])  # a later list may differ: not a proof now
    assert model.unavailable == {}


# -- LiveState and top against FakeAsterisk -----------------------------------------------------------


@pytest.fixture
def make_client(make_any_client: MakeClient) -> MakeClient:
    return make_any_client


@pytest.fixture
def fake(secret: str) -> Iterator[FakeAsterisk]:
    """An account ``bob`` / ``pw`` whose read lacks call (and ``admin``), and a PBX with one channel."""
    with FakeAsterisk(accounts={"admin": secret, "bob": "pw"}, read={"bob": NO_CALL}) as server:
        item = {"Event": "CoreShowChannel", **{k.capitalize(): v for k, v in snapshot("1.1", "PJSIP/100-1").items()}}
        server.respond("CoreShowChannels", EventList([item], "CoreShowChannelsComplete"))
        server.respond("BridgeList", EventList([], "BridgeListComplete"))
        server.respond("QueueStatus", EventList([], "QueueStatusComplete"))
        server.respond("DeviceStateList", EventList([], "DeviceStateListComplete"))
        yield server


def test_live_state_on_an_account_without_call(
    fake: FakeAsterisk, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="asterisk_ami")
    ami = make_client(username="bob", password="pw")
    live = LiveState(ami)
    ami.connect()
    wait_until(lambda: live.synced, 5, "the sync")
    assert set(live.unavailable) == CALL_PARTS and live.channels == {}
    assert live.snapshot()["unavailable"]["calls"].startswith("not followed")
    assert fake.push_event("Newchannel", Privilege="call,all", Uniqueid="2.1") == 0  # Asterisk would not send it
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "'bob' does not read call events" in warning and f"[bob] read = {NO_CALL},call" in warning
    live.close()


def test_live_state_tells_from_the_lists_when_asterisk_will_not_say(
    fake: FakeAsterisk, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "CHECK_FIRST", 0.05)
    fake.respond("Command", {"Response": "Error", "Message": "Permission denied"})
    ami = make_client(username="bob", password="pw")
    rec = Recorder(ami)
    live = LiveState(ami)
    ami.connect()
    wait_until(lambda: live.synced and "1.1" in live.channels, 5, "the sync")
    assert live.unavailable == {}
    item = {"Event": "CoreShowChannel", **{k.capitalize(): v for k, v in snapshot("2.1", "PJSIP/200-1").items()}}
    fake.respond("CoreShowChannels", EventList([item], "CoreShowChannelsComplete"))  # a call came and went, unseen
    wait_until(lambda: "channels" in live.unavailable, 5, "the check to tell")
    assert live.channels == {} and live.synced
    live.close()
    assert rec.count("ami_socket_close") == 0


def test_top_once_says_what_it_cannot_follow(fake: FakeAsterisk) -> None:
    done = run_cli("top", "--once", *args_for(fake, "bob"), secret="pw")
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[1].startswith("calls ?  channels ?  bridges ?  queues 0")
    assert "does not read call events" in lines[2]
    assert " (calls: not followed, see above)" in done.out
