"""The catalogue against the real Asterisk 22 of conftest.py: every event frame of a busy session (calls, a
bridge, a queue with a member and a caller, the list actions) checks clean; every action ``ListCommands``
names is catalogued; the sandbox's own documentation XML gives the shipped "22" data; ``catalogue check``.

Dialplan (scripts/asterisk_sandbox/config.py): 100 = a short call with a UserEvent, 200 = a 30 s call,
300 dials 301 (a bridged pair), 400 waits in queue ``support``, ``agent`` is the queue's Local member.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from asterisk_ami import ActionError, AsteriskAmi, catalogue

from ..cli_helpers import conn_args, run_cli
from ..helpers import wait_until

if TYPE_CHECKING:
    from .conftest import AsteriskServer

TIMEOUT = 15.0
#: the actions the session sends (each adds its own events: lists, responses, side effects)
LISTS = (
    {"Action": "CoreShowChannels"},
    {"Action": "Status"},
    {"Action": "BridgeList"},
    {"Action": "QueueStatus"},
    {"Action": "QueueSummary"},
    {"Action": "DeviceStateList"},
    {"Action": "ExtensionStateList"},
    {"Action": "ShowDialPlan", "Context": "default"},
    {"Action": "CoreStatus"},
    {"Action": "CoreSettings"},
    {"Action": "ListCommands"},
    {"Action": "DBPut", "Family": "catalogue", "Key": "k", "Val": "v"},
    {"Action": "DBGet", "Family": "catalogue", "Key": "k"},
    {"Action": "DBGetTree", "Family": "catalogue"},
    {"Action": "DBDel", "Family": "catalogue", "Key": "k"},
)


def originate(ami: AsteriskAmi, exten: str, **extra: str) -> None:
    message = {"Action": "Originate", "Channel": f"Local/{exten}@default", "Application": "Wait", "Data": "30"}
    message.update(extra)
    ami.request({**message, "Async": "true", "ActionID": f"cat-{uuid.uuid4().hex[:8]}"}, timeout=TIMEOUT)


def channels(ami: AsteriskAmi) -> list[dict[str, Any]]:
    return ami.request({"Action": "CoreShowChannels"}, timeout=TIMEOUT).events


def bridges(ami: AsteriskAmi) -> list[str]:
    return [e["bridgeuniqueid"] for e in ami.request({"Action": "BridgeList"}, timeout=TIMEOUT).events]


def hang_up_all(ami: AsteriskAmi) -> None:
    for name in {c["channel"] for c in channels(ami)}:
        with contextlib.suppress(ActionError):
            ami.request({"Action": "Hangup", "Channel": name}, timeout=5)
    wait_until(lambda: not channels(ami), TIMEOUT, "every channel to hang up")


def watcher(server: AsteriskServer) -> tuple[AsteriskAmi, list[dict[str, Any]]]:
    """A client that records every frame from its first (FullyBooted) on."""
    frames: list[dict[str, Any]] = []
    ami = AsteriskAmi(**server.options(connect_timeout=10))
    logged_in = threading.Event()
    ami.on("ami_data", frames.append)
    ami.on("ami_login", lambda ok, frame: logged_in.set() if ok else None)
    ami.connect()
    if not logged_in.wait(TIMEOUT):
        ami.destroy()
        raise AssertionError("no login")
    return ami, frames


def busy_session(ami: AsteriskAmi) -> None:
    """Calls, a bridge, a queue with a member that answers and one that is paused, every list action."""
    member, paused = "Local/agent@default", "Local/200@default"
    originate(ami, "100", Data="1")  # a short call with a UserEvent
    originate(ami, "200")
    originate(ami, "300")  # a bridged pair
    wait_until(lambda: len(bridges(ami)) == 1, TIMEOUT, "the bridge")
    ami.request({"Action": "BridgeInfo", "BridgeUniqueid": bridges(ami)[0]}, timeout=TIMEOUT)
    ami.request({"Action": "QueueAdd", "Queue": "support", "Interface": paused, "MemberName": "Later"}, timeout=TIMEOUT)
    ami.request(
        {"Action": "QueuePause", "Queue": "support", "Interface": paused, "Paused": "true", "Reason": "lunch"},
        timeout=TIMEOUT,
    )
    ami.request({"Action": "QueueAdd", "Queue": "support", "Interface": member, "MemberName": "Agent"}, timeout=TIMEOUT)
    originate(ami, "400")  # a caller: the agent answers, the queue bridges them
    wait_until(lambda: len(bridges(ami)) >= 2, TIMEOUT, "the queue's bridge")
    first = channels(ami)[0]["channel"]
    ami.request({"Action": "Setvar", "Channel": first, "Variable": "CATALOGUE", "Value": "1"}, timeout=TIMEOUT)
    ami.request({"Action": "Getvar", "Channel": first, "Variable": "CATALOGUE"}, timeout=TIMEOUT)
    for message in LISTS:
        ami.request(message, timeout=TIMEOUT)
    ami.request({"Action": "Command", "Command": "core show channels"}, timeout=TIMEOUT)
    for interface in (member, paused):
        ami.request({"Action": "QueueRemove", "Queue": "support", "Interface": interface}, timeout=TIMEOUT)
    hang_up_all(ami)


def frame_problems(cat: catalogue.Catalogue, frames: list[dict[str, Any]]) -> list[str]:
    problems = []
    for frame in frames:
        if "event" not in frame:
            continue
        for problem in cat.check_frame(frame):
            # UserEvent carries whatever headers the dialplan gives it
            if frame["event"].lower() == "userevent" and problem.kind == "unknown-field":
                continue
            value = frame.get(problem.name, frame.get(problem.name.lower()))
            problems.append(f"{frame['event']}: {problem.kind}: {problem} (value {value!r})")
    return problems


def test_every_event_of_a_busy_session_checks_clean(asterisk_server: AsteriskServer) -> None:
    ami, frames = watcher(asterisk_server)
    try:
        busy_session(ami)
        marker = f"done-{uuid.uuid4().hex[:8]}"
        ami.request({"Action": "UserEvent", "UserEvent": marker}, timeout=TIMEOUT)
        wait_until(lambda: any(f.get("userevent") == marker for f in frames), TIMEOUT, "the last event")
        banner = ami.banner
    finally:
        with contextlib.suppress(Exception):
            hang_up_all(ami)
        ami.destroy()
    assert banner is not None
    cat = catalogue.for_banner(banner)
    assert cat.major == "22"
    events = Counter(f["event"] for f in frames if "event" in f)
    # the session did what it set out to: calls, bridges, a queue, lists
    for name in (
        "Newchannel",
        "Hangup",
        "BridgeEnter",
        "QueueMemberAdded",
        "AgentConnect",
        "QueueParams",
        "CoreShowChannel",
        "Status",
        "BridgeListItem",
        "DeviceStateChange",
        "UserEvent",
    ):
        assert events[name] > 0, (name, sorted(events))
    problems = Counter(frame_problems(cat, frames))
    report = "\n".join(f"{count:5d}  {line}" for line, count in sorted(problems.items()))
    assert not problems, f"{sum(events.values())} events, {len(problems)} distinct problems:\n{report}"


def test_every_action_the_server_lists_is_catalogued(asterisk_server: AsteriskServer) -> None:
    ami = asterisk_server.logged_in_client(events=False)
    try:
        result = ami.request({"Action": "ListCommands"}, timeout=TIMEOUT)
    finally:
        ami.destroy()
    listed = [key for key in result if key not in ("response", "actionid", "message")]
    assert {"originate", "queuestatus", "bridgelist", "coreshowchannels"} <= set(listed)  # core, app_queue, bridges
    cat = catalogue.load("22")
    assert [name for name in listed if cat.action(name) is None] == []


def _installed_xml(server: AsteriskServer) -> Path:
    installation = server.sandbox.installation if server.sandbox is not None else None
    if installation is None:
        pytest.skip("external AMI server: its documentation XML is not on this machine")
    path = Path(installation.datadir) / "documentation" / "core-en_US.xml"
    if not path.is_file():
        pytest.skip(f"{path} is not installed (the Asterisk under test came without its documentation)")
    return path


def shape(cat: catalogue.Catalogue) -> dict[str, Any]:
    """The data that matters, without the release string and the modules; the overlay's undocumented events
    too (an installed XML names no release: load() tells it by its names)."""
    return {
        "actions": {
            name: (
                {p.name: (p.required, p.enum) for p in a.params.values()},
                {f.name: (f.pattern, f.required) for f in a.families.values()},
                a.responses,
            )
            for name, a in cat.actions.items()
        },
        "events": {
            name: ({f.key: (f.name, f.enum) for f in e.fields.values()}, tuple(e.families), e.privilege)
            for name, e in cat.events.items()
        },
    }


def test_the_sandboxs_own_xml_gives_the_shipped_22_catalogue(asterisk_server: AsteriskServer) -> None:
    path = _installed_xml(asterisk_server)
    loaded = catalogue.load(str(path))
    assert loaded.major == "22"
    mine, shipped = shape(loaded), shape(catalogue.load("22"))
    assert set(mine["actions"]) == set(shipped["actions"])
    assert set(mine["events"]) == set(shipped["events"])
    differ = [n for n in mine["actions"] if mine["actions"][n] != shipped["actions"][n]]
    differ += [n for n in mine["events"] if mine["events"][n] != shipped["events"][n]]
    assert differ == []


def test_the_cli_check_passes_against_the_sandbox(asterisk_server: AsteriskServer) -> None:
    admin = asterisk_server.accounts.admin
    args = conn_args(asterisk_server.host, asterisk_server.port, admin.username)
    done = run_cli("catalogue", "check", "--strict", *args, secret=admin.secret)
    assert done.code == 0, done.out + done.err
    assert done.out.startswith("server: ") and "Asterisk 22" in done.out.splitlines()[0]
    assert "every action of the server is in the catalogue" in done.out
    assert "not on the server (normal: their modules are not loaded)" in done.out
