"""The catalogue against the real Asterisk 22 of conftest.py: every event frame of a busy session (calls, a
bridge, a queue with a member and a caller, the list actions) checks clean; every action ``ListCommands``
names is catalogued; the sandbox's own documentation XML gives the shipped "22" data; ``catalogue check``.

Dialplan (scripts/asterisk_sandbox/config.py): 100 = a short call with a UserEvent, 200 = a 30 s call,
300 dials 301 (a bridged pair), 400 waits in queue ``support``, ``agent`` is the queue's Local member,
600 sets its caller ID and account code and sends DTMF, 610 has music on hold for a
second, 620 spies on 600.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable
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


def recorded(
    server: AsteriskServer, session: Callable[[AsteriskAmi, list[dict[str, Any]]], None]
) -> tuple[list[dict[str, Any]], str]:
    """Every frame of ``session`` run on a watching client, up to a UserEvent marker sent last; the banner."""
    ami, frames = watcher(server)
    try:
        session(ami, frames)
        marker = f"done-{uuid.uuid4().hex[:8]}"
        ami.request({"Action": "UserEvent", "UserEvent": marker}, timeout=TIMEOUT)
        wait_until(lambda: any(f.get("userevent") == marker for f in frames), TIMEOUT, "the last event")
        banner = ami.banner
    finally:
        with contextlib.suppress(Exception):
            hang_up_all(ami)
        ami.destroy()
    assert banner is not None
    return frames, banner


def test_every_event_of_a_busy_session_checks_clean(asterisk_server: AsteriskServer) -> None:
    frames, banner = recorded(asterisk_server, lambda ami, frames: busy_session(ami))
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


#: the second session's actions that need no channel
FEATURE_LISTS = (
    {"Action": "ParkedCalls"},
    {"Action": "Parkinglots"},
    {"Action": "PresenceStateList"},
    {"Action": "DeviceStateList"},
    {"Action": "ExtensionStateList"},
    {"Action": "CoreShowChannelMap", "Channel": "{first}"},
    {"Action": "Status", "AllVariables": "true"},
    {"Action": "Status", "Channel": "{first}", "Variables": "CATALOGUE"},
    {"Action": "QueueStatus", "Queue": "support"},
    {"Action": "QueueSummary", "Queue": "support"},
    {"Action": "ModuleCheck", "Module": "app_queue"},
    {"Action": "Reload", "Module": "app_queue.so"},
    {"Action": "LoggerRotate"},
    {"Action": "ListCategories", "Filename": "queues.conf"},
    {"Action": "GetConfig", "Filename": "queues.conf"},
    {"Action": "CoreStatus"},
    {"Action": "CoreSettings"},
    {"Action": "Ping"},
)


#: events the second session must have produced
FEATURE_EVENTS = (
    "Parkinglot",
    "DTMFBegin",
    "DTMFEnd",
    "NewCallerid",
    "NewAccountCode",
    "BlindTransfer",
    "MixMonitorStart",
    "MixMonitorMute",
    "MixMonitorStop",
    "MusicOnHoldStart",
    "MusicOnHoldStop",
    "ChanSpyStart",
    "AsyncAGIStart",
    "AsyncAGIExec",
    "AGIExecStart",
    "AGIExecEnd",
    "PresenceStateChange",
    "DeviceStateChange",
    "QueueMemberPause",
    "QueueMemberPenalty",
    "QueueMemberRinginuse",
    "Reload",
    "SoftHangupRequest",
    "InvalidPassword",
    "InvalidAccountID",
    "ChallengeResponseFailed",
    "SuccessfulAuth",
    "Status",
)


def bad_logins(server: AsteriskServer) -> None:
    """A second client that fails to log in (wrong secret, unknown user, a wrong challenge answer): the
    watcher gets the security events of each."""
    admin = server.accounts.admin
    attempts = (
        f"Action: Login\r\nUsername: {admin.username}\r\nSecret: {server.accounts.wrong_secret}\r\n\r\n",
        f"Action: Login\r\nUsername: nobody-{uuid.uuid4().hex[:6]}\r\nSecret: x\r\n\r\n",
        "Action: Challenge\r\nAuthType: MD5\r\n\r\n"
        f"Action: Login\r\nAuthType: MD5\r\nUsername: {admin.username}\r\nKey: {'0' * 32}\r\n\r\n",
    )
    for text in attempts:
        with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as sock:
            reader = sock.makefile("rb")
            reader.readline()  # the banner
            sock.sendall(text.encode())
            answers = 0
            while answers < text.count("Action: "):
                line = reader.readline()
                if not line:
                    break
                answers += line.startswith(b"Response: ")


def first_half(names: list[str], exten: str) -> str:
    """The ;1 half of the Local channel to ``exten`` (the half that runs the originated application)."""
    return next(n for n in names if n.startswith(f"Local/{exten}@default-") and n.endswith(";1"))


def feature_session(ami: AsteriskAmi, server: AsteriskServer, frames: list[dict[str, Any]]) -> None:
    """Parking lots, DTMF, caller ID and account code changes, a blind transfer, a redirect, MixMonitor, music
    on hold, ChanSpy, async AGI, presence and custom device states, queue pause and penalty, failed logins
    (security events), and more lists (Status with variables among them)."""
    request = ami.request
    originate(ami, "600")  # caller ID, account code, SendDTMF
    originate(ami, "300")  # a bridged pair to transfer
    originate(ami, "200")
    originate(ami, "610")  # music on hold
    originate(ami, "620")  # ChanSpy on 600
    originate(ami, "agent", Application="AGI", Data="agi:async")  # async AGI on the ;1 half
    wanted = ("Local/200@", "Local/301@", "Local/agent@", "Local/610@")

    def started() -> list[str]:
        names = sorted(c["channel"] for c in channels(ami))
        return names if all(any(n.startswith(w) for n in names) for w in wanted) else []

    wait_until(lambda: bool(started()) and len(bridges(ami)) >= 1, TIMEOUT, "the calls")
    names = started()
    waiting = first_half(names, "200")
    agi = first_half(names, "agent")
    started_agi = lambda: any(f.get("event") == "AsyncAGIStart" and f.get("channel") == agi for f in frames)  # noqa: E731
    wait_until(started_agi, TIMEOUT, "async AGI")  # commands are refused before
    request({"Action": "AGI", "Channel": agi, "Command": "VERBOSE catalogue 1", "CommandID": "cat"}, timeout=TIMEOUT)
    transferee = first_half(names, "301")
    request({"Action": "Setvar", "Channel": waiting, "Variable": "CATALOGUE", "Value": "1"}, timeout=TIMEOUT)
    request({"Action": "PlayDTMF", "Channel": waiting, "Digit": "5", "Duration": "120"}, timeout=TIMEOUT)
    request({"Action": "MixMonitor", "Channel": waiting, "File": f"cat-{uuid.uuid4().hex[:6]}.wav"}, timeout=TIMEOUT)
    request({"Action": "MixMonitorMute", "Channel": waiting, "Direction": "both", "State": "1"}, timeout=TIMEOUT)
    request({"Action": "StopMixMonitor", "Channel": waiting}, timeout=TIMEOUT)
    request({"Action": "AbsoluteTimeout", "Channel": waiting, "Timeout": "60"}, timeout=TIMEOUT)
    request({"Action": "SendText", "Channel": waiting, "Message": "hello"}, timeout=TIMEOUT)
    request({"Action": "BlindTransfer", "Channel": transferee, "Exten": "200", "Context": "default"}, timeout=TIMEOUT)
    request(
        {"Action": "Redirect", "Channel": waiting, "Exten": "100", "Context": "default", "Priority": "1"},
        timeout=TIMEOUT,
    )
    for function, value in (
        ("DEVICE_STATE(Custom:catalogue)", "BUSY"),
        ("PRESENCE_STATE(CustomPresence:catalogue)", "away,lunch,back soon"),
        ("GLOBAL(CATALOGUE)", "1"),
    ):
        request({"Action": "Setvar", "Variable": function, "Value": value}, timeout=TIMEOUT)
    queue = {"Queue": "support", "Interface": "Local/agent@default"}
    request({"Action": "QueueAdd", **queue, "MemberName": "Agent", "Penalty": "1"}, timeout=TIMEOUT)
    request({"Action": "QueuePause", **queue, "Paused": "true", "Reason": "break"}, timeout=TIMEOUT)
    request({"Action": "QueuePause", **queue, "Paused": "false"}, timeout=TIMEOUT)
    request(
        {"Action": "QueuePenalty", "Interface": queue["Interface"], "Penalty": "2", "Queue": "support"}, timeout=TIMEOUT
    )
    request({"Action": "QueueMemberRingInUse", **queue, "RingInUse": "true"}, timeout=TIMEOUT)
    request({"Action": "QueueLog", "Queue": "support", "Event": "CATALOGUE", "Message": "test"}, timeout=TIMEOUT)
    request({"Action": "QueueReset", "Queue": "support"}, timeout=TIMEOUT)
    first = channels(ami)[0]["channel"]
    for message in FEATURE_LISTS:
        request({k: v.format(first=first) for k, v in message.items()}, timeout=TIMEOUT)
    request({"Action": "QueueRemove", **queue}, timeout=TIMEOUT)
    request({"Action": "UserEvent", "UserEvent": "Catalogue", "Header1": "a: b"}, timeout=TIMEOUT)
    bad_logins(server)
    # what the dialplan does on its own time, before the calls end
    for name in ("MusicOnHoldStop", "ChanSpyStart", "AsyncAGIExec", "DTMFEnd", "SuccessfulAuth"):
        wait_until(lambda name=name: any(f.get("event") == name for f in frames), TIMEOUT, name)
    hang_up_all(ami)


def test_every_event_of_a_feature_session_checks_clean(asterisk_server: AsteriskServer) -> None:
    frames, banner = recorded(asterisk_server, lambda ami, frames: feature_session(ami, asterisk_server, frames))
    cat = catalogue.for_banner(banner)
    events = Counter(f["event"] for f in frames if "event" in f)
    # the session did what it set out to (each name needs its module: see the sandbox's MODULES)
    for name in FEATURE_EVENTS:
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
