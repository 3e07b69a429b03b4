"""``asterisk-ami top``: the text of the view, ``--once`` (text and JSON), and the full-screen view in a
real terminal (a pty read back with pyte), against FakeAsterisk and the demo."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from asterisk_ami.live import LiveModel, LiveState
from asterisk_ami.testing import EventList, FakeAsterisk
from asterisk_ami.top import render

from .cli_helpers import args_for, cli_env, run_cli
from .live_frames import bridge_fields, event, newchannel, queue_member, queue_params, snapshot
from .pty_screen import TerminalApp

SECRET = "secret"


class ModelOnly(LiveState):
    """A LiveState without a client: the model fed by hand (render() reads only its views)."""

    def __init__(self, model: LiveModel) -> None:
        self.model = model


def a_busy_model() -> LiveModel:
    model = LiveModel()
    model.login(0)
    ids = {a["Action"]: a["ActionID"] for a in model.outbox}
    for action, frames in (
        ("CoreShowChannels", []),
        ("BridgeList", []),
        (
            "QueueStatus",
            [queue_params("support", completed="7"), queue_member("support", "PJSIP/300", "Carol", status="2")],
        ),
        ("DeviceStateList", []),
    ):
        model.feed({"response": "Success", "actionid": ids[action], "eventlist": "start"}, 0)
        for f in frames:
            model.feed({**f, "actionid": ids[action]}, 0)
        model.feed({"event": action + "Complete", "actionid": ids[action], "eventlist": "Complete"}, 0)
    model.feed(newchannel("1.1", "PJSIP/100-00000001", "6"), 100)
    model.feed(
        event("Newchannel", snapshot("1.2", "PJSIP/200-00000002", "6", linkedid="1.1", num="200", cidname="Bob")), 101
    )
    model.feed(event("BridgeEnter", bridge_fields("5a1c9e7f-b"), snapshot("1.1", "PJSIP/100-00000001")), 102)
    bob = snapshot("1.2", "PJSIP/200-00000002", linkedid="1.1", num="200", cidname="Bob")
    model.feed(event("BridgeEnter", bridge_fields("5a1c9e7f-b"), bob), 102)
    model.feed(
        event("QueueCallerJoin", snapshot("9.1", "PJSIP/500-9", "4"), queue="support", position="1", count="1"), 110
    )
    return model


def test_render_shows_calls_bridges_and_queues() -> None:
    text = "\n".join(render(ModelOnly(a_busy_model()), "pbx:5038", now=160))
    assert "synced" in text and "calls 1  channels 2  bridges 1  queues 1" in text
    assert "00:01:00  PJSIP/100-00000001" in text and "200 Bob" in text
    assert "[bridge 5a1c9e7f]" in text and "2 channel(s): PJSIP/100-00000001, PJSIP/200-00000002" in text
    assert "support  strategy ringall  waiting 1  completed 7" in text
    assert "member PJSIP/300" in text and "in use" in text and "caller 1  9.1" in text


@pytest.fixture
def fake() -> Iterator[FakeAsterisk]:
    with FakeAsterisk(accounts={"admin": SECRET}) as server:
        item = {
            "Event": "CoreShowChannel",
            **{k.capitalize(): v for k, v in snapshot("1.1", "PJSIP/100-00000001").items()},
        }
        server.respond(
            "CoreShowChannels", EventList([item | {"Duration": "00:00:42", "BridgeId": ""}], "CoreShowChannelsComplete")
        )
        server.respond("BridgeList", EventList([], "BridgeListComplete"))
        server.respond("QueueStatus", EventList([], "QueueStatusComplete"))
        yield server


def test_top_once_prints_the_table_and_json(fake: FakeAsterisk) -> None:
    done = run_cli("top", "--once", *args_for(fake), secret=SECRET)
    assert done.code == 0, done.err
    assert "PJSIP/100-00000001" in done.out and "calls 1  channels 1" in done.out
    assert "not readable: devices" in done.out  # DeviceStateList: unknown to this server
    as_json = run_cli("top", "--once", "--json", *args_for(fake), secret=SECRET)
    assert as_json.code == 0, as_json.err
    snapshot_ = json.loads(as_json.out)
    assert snapshot_["synced"] and list(snapshot_["channels"]) == ["1.1"]
    assert run_cli("top", "--json", *args_for(fake), secret=SECRET).code == 2


def app(*args: str) -> TerminalApp:
    return TerminalApp([sys.executable, "-m", "asterisk_ami", *args], cli_env(SECRET))


def test_top_in_a_terminal_follows_events_and_quits_on_q(fake: FakeAsterisk) -> None:
    top = app("top", *args_for(fake))
    try:
        top.wait_for("asterisk-ami top", "synced", "PJSIP/100-00000001")
        fake.wait_for_clients(1)
        frame: dict[str, Any] = {
            "Event": "Newchannel",
            **{k.capitalize(): v for k, v in snapshot("2.1", "PJSIP/777-00000003", "4").items()},
        }
        fake.push_event(frame)
        top.wait_for("PJSIP/777-00000003", "channels 2")
        top.press(b"q")
        assert top.exit_code() == 0
    finally:
        top.kill()


def test_top_quits_on_ctrl_c(fake: FakeAsterisk) -> None:
    top = app("top", *args_for(fake))
    try:
        top.wait_for("synced")
        top.press(b"\x03")
        assert top.exit_code() == 0
    finally:
        top.kill()


def test_demo_top_shows_the_demo_calls() -> None:
    top = app("demo", "--top", "--speed", "4")
    try:
        text = top.wait_for("demo", "PJSIP/1001", "Alice", "support")
        assert "member PJSIP/1002" in text
        top.press(b"q")
        assert top.exit_code() == 0
    finally:
        top.kill()
