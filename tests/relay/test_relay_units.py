"""The relay's sans-IO parts, without NATS: configuration and secrets, the outbox (numbering, batches,
the bound, drops, retries), a consumer's numbering rules (duplicates, gaps), the reply format, the
handlers of RemoteAmi, and the command line up to the point it would connect."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from asterisk_ami import ActionError, ActionResult, ActionTimeoutError, NotConnectedError
from asterisk_ami.relay import ActionNotAllowedError, RelayConfigError, config_from_mapping, parse_pbx
from asterisk_ami.relay.config import parse_duration, parse_size, redact_url
from asterisk_ami.relay.emitter import Emitter
from asterisk_ami.relay.outbox import Outbox
from asterisk_ami.relay.sequence import Tracker
from asterisk_ami.relay.wire import decode_reply, encode, error_reply, frame_subject, result_reply

from ..cli_helpers import run_cli

SECRET = "Very-Secret-42"


def frame(n: int, event: str = "UserEvent") -> dict[str, Any]:
    return {"event": event, "n": str(n)}


# -- configuration ---------------------------------------------------------------------------------------


def test_pbx_urls_and_where_their_secrets_come_from() -> None:
    env = {"AMI_SECRET_LON_1": "from-env", "AMI_SECRET": "any", "MY_VAR": "named"}
    plain = parse_pbx("lon-1", "ami://relay@10.0.0.1", env=env)
    assert (plain.host, plain.port, plain.username, plain.secret, plain.tls) == (
        "10.0.0.1",
        5038,
        "relay",
        "from-env",
        False,
    )
    tls = parse_pbx("par", "amis://relay:in%40url@pbx.example:6000?auth=md5&events=call,system&insecure=1", env=env)
    assert (tls.port, tls.tls, tls.secret, tls.auth, tls.events, tls.insecure) == (
        6000,
        True,
        "in@url",
        "md5",
        "call,system",
        True,
    )
    assert parse_pbx("x", "amis://u@h", env=env).port == 5039
    assert parse_pbx("x", "ami://u@h", env=env).secret == "any"
    assert parse_pbx("x", "ami://u:url@h", env=env, secret="file").secret == "file"
    assert parse_pbx("x", "ami://u@h", env=env, secret_env="MY_VAR").secret == "named"
    with pytest.raises(RelayConfigError, match="AMI_SECRET_NOPE"):
        parse_pbx("nope", "ami://u@h", env={})
    with pytest.raises(RelayConfigError, match="MISSING"):
        parse_pbx("x", "ami://u@h", env={}, secret_env="MISSING")
    for bad, why in [
        ("http://u@h", "ami://"),
        ("ami://h", "user name"),
        ("ami://u@h?color=red", "unknown URL option"),
        ("ami://u@h:99999", "bad URL"),
    ]:
        with pytest.raises(RelayConfigError, match=why):
            parse_pbx("x", bad, env=env)
    with pytest.raises(RelayConfigError, match="letters, digits"):
        parse_pbx("a.b", "ami://u@h", env=env)  # a dot would split the subject


def test_secrets_never_in_reprs_urls_or_errors() -> None:
    pbx = parse_pbx("p", f"ami://admin:{SECRET}@h:1", env={})
    config = config_from_mapping(
        {
            "pbxes": {"p": {"url": f"ami://admin:{SECRET}@h:1"}},
            "nats": f"nats://u:{SECRET}@n:4222",
            "nats_password": SECRET,
        },
        env={},
    )
    for text in (repr(pbx), pbx.url, repr(config), str(config.nats_urls), redact_url(f"nats://u:{SECRET}@n")):
        assert SECRET not in text
    assert pbx.secret == SECRET and config.nats_password == SECRET
    with pytest.raises(RelayConfigError) as bad:
        parse_pbx("p", f"ami://admin:{SECRET}@h:1?bad=1", env={})
    assert SECRET not in str(bad.value)


def test_actions_allowed() -> None:
    every = parse_pbx("p", "ami://u@h", env={"AMI_SECRET": "s"})
    assert every.allows("Originate") and every.allows("ping")
    for action in ("Logoff", "LOGIN", "challenge", "Events", "Filter", "WaitEvent"):
        assert not every.allows(action)  # they would change the relay's own session
    some = parse_pbx("p", "ami://u@h", env={"AMI_SECRET": "s"}, allow="Ping, Originate", deny=["originate"])
    assert some.allows("PING") and not some.allows("Originate") and not some.allows("Command")


def test_config_file_values() -> None:
    config = config_from_mapping(
        {
            "nats": ["nats://a:4222", "nats://b:4222"],
            "max_age": "24h",
            "max_bytes": "2GiB",
            "batch_delay": "5ms",
            "buffer_frames": 10_000,
            "on_stall": "block",
            "per_frame": True,
            "nats_password_env": "NATS_PW",
            "pbxes": [{"name": "a", "url": "ami://u@h1"}, {"name": "b", "url": "ami://u@h2", "deny": "Originate"}],
        },
        env={"AMI_SECRET": "s", "NATS_PW": "pw"},
    )
    assert config.nats == ("nats://a:4222", "nats://b:4222")
    assert (config.max_age, config.max_bytes, config.batch_delay) == (86400.0, 2 * 1024**3, 0.005)
    assert (config.buffer_frames, config.on_stall, config.per_frame, config.nats_password) == (
        10_000,
        "block",
        True,
        "pw",
    )
    assert [p.name for p in config.pbxes] == ["a", "b"] and not config.pbx("b").allows("originate")
    for data, why in [
        ({"pbxes": {}}, "no PBX"),
        ({"pbxes": {"a": "ami://u@h"}, "colour": 1}, "unknown config key"),
        ({"pbxes": {"a": "ami://u@h"}, "on_stall": "wait"}, "block' or 'drop"),
        ({"pbxes": {"a": "ami://u@h"}, "max_age": "soon"}, "duration"),
        ({"pbxes": {"a": "ami://u@h"}, "nats": "redis://x"}, "NATS URL"),
        ({"pbxes": [{"name": "a", "url": "ami://u@h"}, {"name": "a", "url": "ami://u@h"}]}, "twice"),
    ]:
        with pytest.raises(RelayConfigError, match=why):
            config_from_mapping(data, env={"AMI_SECRET": "s"})
    assert parse_size("512MB", "x") == 512_000_000 and parse_size(0, "x") == 0
    assert parse_duration("250ms", "x") == 0.25 and parse_duration(90, "x") == 90.0


# -- the outbox ------------------------------------------------------------------------------------------


def batches(outbox: Outbox) -> list[tuple[str, int, int]]:
    return [(m.control or "ev", m.first, m.last) for m in outbox.pending]


def test_outbox_numbers_frames_and_batches_them_in_order() -> None:
    outbox = Outbox("p", batch_frames=3)
    connected = outbox.new_epoch(7)
    for n in range(1, 8):
        assert outbox.add(frame(n))
    outbox.close_batch()
    assert batches(outbox) == [("connected", 0, 0), ("ev", 1, 3), ("ev", 4, 6), ("ev", 7, 7)]
    assert outbox.next_to_send() is None  # connected waits until it is filled in
    outbox.complete_control(connected, {"type": "connected"})
    message = outbox.next_to_send()
    assert message is connected and message.headers["Nats-Msg-Id"] == "p:7:connected"
    second = outbox.pending[1]
    assert json.loads(second.payload) == [frame(1), frame(2), frame(3)]
    assert second.headers == {
        "Nats-Msg-Id": "p:7:1-3",
        "Ami-Version": "1",
        "Ami-Pbx": "p",
        "Ami-Epoch": "7",
        "Ami-Seq": "1",
        "Ami-Seq-Last": "3",
    }
    outbox.new_epoch(8)  # a login: numbers start again
    outbox.add(frame(1))
    outbox.add_control("disconnected", {"type": "disconnected"})
    assert batches(outbox)[-3:] == [("connected", 0, 0), ("ev", 1, 1), ("disconnected", 1, 1)]


def test_outbox_per_frame_subjects() -> None:
    outbox = Outbox("p", per_frame=True)
    outbox.new_epoch(1)
    outbox.add(frame(1, "Hangup"))
    outbox.add(frame(2, "Weird Name!"))
    assert [m.subject for m in outbox.pending][1:] == ["ami.p.ev.Hangup", "ami.p.ev.Weird_Name_"]
    assert json.loads(outbox.pending[1].payload) == frame(1, "Hangup")
    assert frame_subject("p", None) == "ami.p.ev._"


def test_outbox_bound_drops_as_a_gap_and_says_so() -> None:
    outbox = Outbox("p", batch_frames=2, buffer_frames=4, max_inflight=10)
    outbox.complete_control(outbox.new_epoch(1), {"type": "connected"})
    accepted = [outbox.add(frame(n)) for n in range(1, 8)]
    assert accepted == [True, True, True, True, False, False, False]
    assert outbox.dropping and outbox.dropped == 3 and outbox.full
    # NATS acknowledges the first batches: room again, and the next frame ends the episode
    for _ in range(3):
        message = outbox.next_to_send()
        assert message is not None
        outbox.sent(message, 0.0, None)
    for message in list(outbox.inflight):
        outbox.acked(message, duplicate=False)
    assert not outbox.full
    assert outbox.add(frame(8))
    outbox.close_batch()
    dropped = outbox.pending[0]
    assert (dropped.control, dropped.first, dropped.headers["Nats-Msg-Id"]) == ("dropped", 7, "p:1:dropped-5")
    assert json.loads(dropped.payload) == {
        "type": "dropped", "pbx": "p", "epoch": 1, "first": 5, "last": 7, "count": 3, "reason": "buffer full",
    }  # fmt: skip
    assert batches(outbox)[1:] == [("ev", 8, 8)]  # a batch holds consecutive numbers only


def test_outbox_block_mode_never_drops() -> None:
    outbox = Outbox("p", batch_frames=2, buffer_frames=2, drop=False)
    outbox.new_epoch(1)
    assert all(outbox.add(frame(n)) for n in range(1, 10)) and outbox.full and outbox.dropped == 0


def test_outbox_resends_what_was_not_acknowledged_in_order() -> None:
    outbox = Outbox("p", batch_frames=1, max_inflight=3)
    outbox.new_epoch(1)
    sent = []
    for n in range(1, 5):
        outbox.add(frame(n))
    connected = outbox.pending[0]
    outbox.complete_control(connected, {"type": "connected"})
    while (message := outbox.next_to_send()) is not None:
        outbox.sent(message, 0.0, object())
        sent.append(message)
    assert [m.first for m in sent] == [0, 1, 2] and len(outbox.pending) == 2  # in-flight limit
    outbox.acked(sent[1], duplicate=False)  # acknowledged behind one that was not
    again = outbox.requeue()
    assert [m.first for m in again] == [0, 2]
    assert batches(outbox) == [("connected", 0, 0), ("ev", 2, 2), ("ev", 3, 3), ("ev", 4, 4)]
    assert outbox.retries == 2
    message = outbox.next_to_send()
    assert message is not None
    outbox.sent(message, 1.0, object())
    outbox.acked(message, duplicate=True)
    assert (outbox.duplicates, outbox.messages_acked) == (1, 2)


def test_outbox_splits_a_batch_too_large_for_one_message() -> None:
    outbox = Outbox("p", batch_frames=10, max_payload=300)
    outbox.new_epoch(1)
    for n in range(1, 5):
        outbox.add({"event": "UserEvent", "n": str(n), "pad": "x" * 60})
    outbox.add({"event": "UserEvent", "n": "5", "pad": "x" * 400})  # alone, still too large
    outbox.add(frame(6))
    outbox.close_batch()
    # halved until each part fits, every part keeping its numbers
    assert batches(outbox)[1:] == [("ev", 1, 1), ("ev", 2, 3), ("ev", 4, 4), ("dropped", 5, 5), ("ev", 6, 6)]
    assert outbox.oversized == 1 and all(m.size <= 300 for m in outbox.pending)


# -- a consumer's numbering --------------------------------------------------------------------------------


def test_tracker_drops_duplicates_and_reports_skips() -> None:
    t = Tracker()
    assert t.events("p", 5, 10, 19) == (0, None)  # the first message only sets the position
    assert t.events("p", 5, 20, 29) == (0, None)
    assert t.events("p", 5, 15, 29) == (15, None)  # a retried publish: all seen
    assert t.events("p", 5, 25, 34) == (5, None)  # partly seen: the rest is new
    assert t.hole("p", 5, 40, None)
    skip, gap = t.events("p", 5, 40, 41)
    assert skip == 0 and gap is not None and (gap.reason, gap.first, gap.last, gap.count) == ("skipped", 35, 39, 5)
    assert t.events("p", 4, 1, 100) == (100, None)  # an older epoch: late, dropped
    assert (t.gaps, t.duplicates) == (1, 2)
    assert t.reached("p", 5, 41) and not t.reached("p", 5, 42) and t.reached("p", 4, 1) is None


def test_tracker_new_epochs_are_one_gap_each() -> None:
    t = Tracker()
    t.control("p", 5, 0, {"type": "connected"})
    t.events("p", 5, 1, 50)
    new, gap = t.control("p", 5, 60, {"type": "disconnected"})
    assert new and gap is not None and (gap.reason, gap.first, gap.last) == ("skipped", 51, 60)
    assert not t.positions["p"].connected
    connected = {"type": "connected", "previous_epoch": 5, "previous_last_seq": 60, "asterisk_restarted": True}
    assert not t.hole("p", 9, 0, connected)
    new, gap = t.control("p", 9, 0, connected)
    assert new and gap is not None
    assert (gap.reason, gap.epoch, gap.first, gap.previous_epoch, gap.previous_seq) == ("reconnect", 9, None, 5, 60)
    assert (gap.previous_last_seq, gap.asterisk_restarted, gap.count) == (60, True, None)
    assert t.control("p", 9, 0, connected) == (False, None)  # the same control message again
    assert t.positions["p"].connected
    # events of a new epoch whose connected message is missing: still one gap
    _, gap = t.events("p", 11, 1, 5)
    assert gap is not None and (gap.reason, gap.previous_epoch, gap.previous_last_seq) == ("reconnect", 9, None)
    # a connected naming a tail this consumer never got: worth waiting for
    t2 = Tracker()
    t2.events("p", 1, 1, 10)
    assert t2.hole("p", 2, 0, {"type": "connected", "previous_epoch": 1, "previous_last_seq": 12})


def test_tracker_dropped_control_and_markers() -> None:
    t = Tracker()
    t.mark("p", 3, 0, {"type": "connected"})
    t.mark("p", 3, 40, None)
    t.mark("p", 2, 99, None)  # an older epoch's last message: the position stays
    assert (t.positions["p"].epoch, t.positions["p"].seq, t.positions["p"].connected) == (3, 40, True)
    new, gap = t.control("p", 3, 45, {"type": "dropped", "first": 41, "last": 45})
    assert new and gap is not None and (gap.reason, gap.first, gap.last) == ("dropped", 41, 45)
    assert t.control("p", 3, 45, {"type": "dropped"}) == (False, None)
    assert t.positions["p"].connected  # a drop says nothing about the session
    assert t.events("p", 3, 46, 50) == (0, None)


# -- replies -------------------------------------------------------------------------------------------


def test_replies_carry_the_requesters_action_id_back() -> None:
    result = ActionResult({"response": "Success", "actionid": "relay-1", "eventlist": "start"})
    result.events = [{"event": "CoreShowChannel", "actionid": "relay-1", "channel": "PJSIP/1"}]
    result.complete = {"event": "CoreShowChannelsComplete", "actionid": "relay-1"}
    back, error = decode_reply(encode(result_reply(result, "mine")))
    assert error is None and back is not None
    assert back["actionid"] == "mine" and back.events[0]["actionid"] == "mine" and back.complete is not None
    assert back.complete["actionid"] == "mine"
    back, _ = decode_reply(encode(result_reply(result, None)))
    assert back is not None and "actionid" not in back and "actionid" not in back.events[0]
    failed = ActionResult({"response": "Error", "actionid": "relay-2", "message": "No such command"})
    for exc, cls in [
        (ActionError("Command: No such command", dict(failed), failed), ActionError),
        (ActionNotAllowedError("not allowed"), ActionNotAllowedError),
        (ActionTimeoutError("slow"), ActionTimeoutError),
        (NotConnectedError("down"), NotConnectedError),
        (ValueError("odd"), Exception),
    ]:
        back, error = decode_reply(encode(error_reply(exc, "mine")))
        assert isinstance(error, cls)
        if cls is ActionError:
            assert back is not None and back["actionid"] == "mine" and isinstance(error, ActionError)
            assert error.result is back and "No such command" in str(error)
    assert decode_reply(b"not json")[0] is None


# -- RemoteAmi's handlers --------------------------------------------------------------------------------


def test_emitter_handlers(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        e = Emitter()
        got: list[tuple[str, Any]] = []
        errors: list[BaseException] = []
        done = asyncio.Event()

        async def coroutine(frame: dict[str, Any]) -> None:
            got.append(("coro", frame["n"]))
            done.set()

        def bad(frame: dict[str, Any]) -> None:
            raise RuntimeError("boom")

        e.on("ami_data", lambda f: got.append(("data", f["n"])))
        e.once("Hangup", lambda f: got.append(("once", f["n"])))
        e.on("Hangup", bad)
        e.on("Newchannel", coroutine)
        e.on("error", errors.append)
        e.on("ami_login", lambda f: got.append(("fake login", f)))
        e.deliver([frame(1, "Hangup"), frame(2, "Hangup"), frame(3, "Newchannel"), frame(4, "ami_login")])
        await asyncio.wait_for(done.wait(), 5)
        e.remove_listener("Hangup", bad)
        e.deliver([frame(5, "Hangup")])
        assert got == [
            ("data", "1"), ("once", "1"), ("data", "2"), ("data", "3"), ("data", "4"), ("coro", "3"), ("data", "5"),
        ]  # fmt: skip
        assert [str(x) for x in errors] == ["boom", "boom"]

    run_async(main())
    assert "handler" in caplog.text and "boom" in caplog.text


def run_async(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro, 10))


# -- the package and the command line ------------------------------------------------------------------------


def test_import_asterisk_ami_loads_no_nats() -> None:
    code = "import sys, asterisk_ami, asterisk_ami.cli, asterisk_ami.relay; print(any(m.split('.')[0] == 'nats' for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_relay_command_line_errors_are_usage_errors_and_hide_secrets(tmp_path: Path) -> None:
    done = run_cli("relay", "--pbx", "p1", secret=None)
    assert done.code == 2 and "NAME=ami://" in done.err
    done = run_cli("relay", "--pbx", f"p1=ami://admin:{SECRET}@h?nope=1", secret=None)
    assert done.code == 2 and "unknown URL option" in done.err and SECRET not in done.err
    assert "visible to other users" in done.err
    done = run_cli("relay", "--pbx", "p1=ami://admin@h", secret=None)
    assert done.code == 2 and "AMI_SECRET_P1" in done.err
    bad = tmp_path / "relay.json"
    bad.write_text('{"pbxes": {"p1": {"url": "ami://admin@h", "secret": "' + SECRET + '"}}, oops}')
    done = run_cli("relay", "--config", str(bad), secret=None)
    assert done.code == 2 and "not JSON (line 1" in done.err and SECRET not in done.err
    done = run_cli("relay", "--pbx", "p1=ami://admin@h", "--allow", "p2=Ping", secret="s")
    assert done.code == 2 and "--allow" in done.err


def test_remote_ami_without_a_nats_server_raises_and_stays_disconnected() -> None:
    pytest.importorskip("nats")
    from asterisk_ami.relay import RelayError, RemoteAmi

    from ..helpers import free_port

    async def main() -> None:
        remote = RemoteAmi(f"nats://127.0.0.1:{free_port()}", pbx="p1")
        with pytest.raises(RelayError, match="cannot connect to NATS"):
            await remote.connect()
        assert remote.state == "disconnected" and not remote.connected
        with pytest.raises(ValueError, match="PBX name"):
            RemoteAmi("nats://127.0.0.1:1", pbx="a.b")

    run_async(main())
