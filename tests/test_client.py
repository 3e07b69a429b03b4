"""AsteriskAmi against the project's FakeAsterisk over real loopback sockets."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import pytest

from asterisk_ami import (
    ActionError,
    ActionTimeoutError,
    AsteriskAmi,
    AuthenticationError,
    ConnectionLostError,
    FrameTooLargeError,
    HeaderInjectionError,
    MessageTooLargeError,
    NotConnectedError,
    UsageError,
)
from asterisk_ami.testing import EventList, FakeAsterisk

from .helpers import Recorder, client_threads, wait_until

SECRET = "s3cr3t-Pa55"


def logins(fake: FakeAsterisk) -> int:
    return sum(1 for a in fake.actions if a.get("action", "").lower() == "login")


# -- options and construction ----------------------------------------------------------------------


def test_defaults_are_the_originals() -> None:
    ami = AsteriskAmi()
    o = ami.options
    assert (o.port, o.host, o.username, o.password) == (5038, "localhost", "username", "password")
    assert (o.debug, o.reconnect, o.reconnect_after, o.events, o.identifier) == (False, False, 3000, True, None)
    assert o.ami_encoding == "utf-8"


def test_dict_style_and_kwargs_construction() -> None:
    ami = AsteriskAmi({"host": "pbx", "username": "admin", "password": SECRET})
    assert (ami.options.host, ami.options.username) == ("pbx", "admin")
    assert AsteriskAmi(host="pbx", port=6000).options.port == 6000
    assert AsteriskAmi(ssl=True).options.port == 5039


def test_unknown_option_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="reconect"):
        AsteriskAmi(reconect=True)


def test_secret_not_in_repr() -> None:
    ami = AsteriskAmi(username="admin", password=SECRET)
    assert SECRET not in repr(ami)
    assert SECRET not in repr(ami.options)


# -- login ---------------------------------------------------------------------------------------------


def connected(make_client: Any, **options: Any) -> tuple[AsteriskAmi, Recorder]:
    ami = make_client(**options)
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    return ami, rec


def test_login_success(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client()
    rec = Recorder(ami)
    connected = threading.Event()
    ami.connect(connected.set)
    rec.wait_for("ami_login")
    assert connected.is_set()
    success, frame = rec.args("ami_login")[0]
    assert success is True and frame["message"] == "Authentication accepted"
    assert ami.connected and ami.state == "connected"
    assert ami.banner == "Asterisk Call Manager/11.0.0" and ami.protocol_version == "11.0.0"
    login = next(a for a in fake.actions if a["action"] == "Login")
    assert login["username"] == "admin" and login["events"] == "on"
    # the login response also reaches ami_data
    assert rec.frames[0] is frame


def test_login_failure_reports_and_does_not_reconnect(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client(password="wrong", reconnect=True, reconnect_after=10)
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_socket_close")
    success, frame = rec.args("ami_login")[0]
    assert success is False and frame["message"] == "Authentication failed"
    errors = [a[0] for a in rec.args("ami_socket_error")]
    assert any(isinstance(e, AuthenticationError) for e in errors)
    time.sleep(0.3)  # 30 reconnect delays: none may happen
    assert logins(fake) == 1
    assert ami.state == "disconnected"


def test_events_off_at_login(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client(events=False)
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    assert next(a for a in fake.actions if a["action"] == "Login")["events"] == "off"


def test_event_mask_at_login(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client(events="call,system")
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    assert next(a for a in fake.actions if a["action"] == "Login")["events"] == "call,system"


def test_md5_login_never_sends_the_secret(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client(auth="md5")
    rec = Recorder(ami)
    raw: list[bytes] = []
    ami.connect()
    rec.wait_for("ami_login")
    assert rec.args("ami_login")[0][0] is True
    login = next(a for a in fake.actions if a["action"] == "Login")
    assert login["authtype"] == "MD5" and "secret" not in login and len(login["key"]) == 32
    assert all(SECRET not in str(a) for a in fake.actions)
    del raw


def test_md5_login_wrong_secret(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client(auth="md5", password="nope")
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_socket_close")
    assert rec.args("ami_login")[0][0] is False


# -- socket events ---------------------------------------------------------------------------------------


def test_end_and_close_when_server_drops(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client()
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    fake.drop()
    rec.wait_for("ami_socket_close")
    assert "ami_socket_end" in rec.names()
    assert rec.args("ami_socket_close")[-1] == (False,)
    assert ami.state == "disconnected"


def test_error_and_close_true_on_reset(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client()
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    fake.drop(rst=True)
    rec.wait_for("ami_socket_close")
    assert isinstance(rec.args("ami_socket_error")[0][0], ConnectionResetError)
    assert rec.args("ami_socket_close")[-1] == (True,)


def test_connection_refused_is_an_error_event(make_client: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    ami = make_client(port=port)
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_socket_close")
    assert isinstance(rec.args("ami_socket_error")[0][0], ConnectionRefusedError)
    assert rec.args("ami_socket_close")[0] == (True,)


def test_timeout_when_server_never_sends_banner(make_client: Any) -> None:
    with FakeAsterisk(banner=None, login_delay=30) as silent:
        ami = make_client(port=silent.port, connect_timeout=0.3)
        rec = Recorder(ami)
        ami.connect()
        rec.wait_for("ami_socket_close")
        assert "ami_socket_timeout" in rec.names()
        assert not rec.args("ami_login")


def test_unwritable_when_not_connected(make_client: Any) -> None:
    ami = make_client()
    rec = Recorder(ami)
    with pytest.raises(NotConnectedError, match="connect"):  # never an ActionID for an action that goes nowhere
        ami.send({"Action": "Ping"})
    assert rec.names() == ["ami_socket_unwritable"]
    with pytest.raises(NotConnectedError):
        ami.action({"Action": "Ping"}).result(1)


def test_drain_after_a_full_socket_buffer(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client()
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    fake.stall(True)  # stops reading: the kernel buffers fill up
    big = {"Action": "UserEvent", "UserEvent": "fill", **{f"H{i}": "x" * 1000 for i in range(100)}}
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set() and not rec.count("ami_socket_drain"):
            ami.send(big)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.5)
    fake.stall(False)
    rec.wait_for("ami_socket_drain", timeout=10)
    stop.set()
    thread.join(10)


# -- sending ---------------------------------------------------------------------------------------------


def test_send_before_login_is_queued_in_order(make_client: Any) -> None:
    with FakeAsterisk(accounts={"admin": SECRET}, login_delay=0.3) as slow:
        ami = make_client(port=slow.port)
        rec = Recorder(ami)
        ami.connect(lambda: ami.send({"Action": "Ping", "ActionID": "from-on-connect"}))
        ids = [ami.send({"Action": "Ping", "ActionID": f"q{i}"}) for i in range(5)]
        assert ids == [f"q{i}" for i in range(5)]
        rec.wait_frames(lambda f: f.get("actionid") == "q4")
        rec.wait_frames(lambda f: f.get("actionid") == "from-on-connect")
        order = [a.get("actionid") for a in slow.actions]
        assert slow.actions[0].get("action", "").lower() == "login"
        # on_connect may run before or after the queued sends, but the queue keeps its order
        assert [i for i in order if i and i.startswith("q")] == ids
        assert order.count("from-on-connect") == 1


def test_send_returns_generated_unique_action_ids(fake: FakeAsterisk, make_client: Any) -> None:
    a, b = make_client(), make_client()
    for ami in (a, b):
        rec = Recorder(ami)
        ami.connect()
        rec.wait_for("ami_login")
    ids = {a.send({"action": "Ping"}) for _ in range(50)} | {b.send({"action": "Ping"}) for _ in range(50)}
    assert len(ids) == 100
    assert len({i.rsplit("-", 1)[0] for i in ids}) == 2


def test_callback_gets_matching_response(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client()
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    got: list[dict[str, Any]] = []
    done = threading.Event()
    on_dispatch: list[bool] = []

    def callback(frame: dict[str, Any]) -> None:
        got.append(frame)
        on_dispatch.append(threading.current_thread().name == "asterisk-ami-dispatch")
        done.set()

    action_id = ami.send({"Action": "Ping"}, callback)
    assert done.wait(5)
    assert got[0]["actionid"] == action_id and got[0]["ping"] == "Pong"
    assert on_dispatch == [True]


def test_header_injection_refused_nothing_written(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client()
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    before = len(fake.actions)
    with pytest.raises(HeaderInjectionError):
        ami.send({"Action": "Originate", "Channel": "PJSIP/1\r\n\r\nAction: Command\r\nCommand: core stop now"})
    with pytest.raises(HeaderInjectionError):
        ami.action({"Action": "Originate", "Channel": "PJSIP/1\nAction: Logoff"})
    with pytest.raises(MessageTooLargeError):
        ami.send({"Action": "Setvar", "Variable": "X=" + "y" * 1100})
    ami.request({"Action": "Ping"}, timeout=5)
    assert [a["action"] for a in fake.actions[before:]] == ["Ping"]


def test_concurrent_send_from_16_threads_never_interleaves(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client()
    rec = Recorder(ami, data=False)
    ami.connect()
    rec.wait_for("ami_login")
    per_thread = 50
    barrier = threading.Barrier(16)

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            ami.send({"Action": "UserEvent", "UserEvent": f"t{n}", "Seq": i, "Pad": "p" * (n * 37 % 700)})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    wait_until(lambda: sum(1 for a in fake.actions if a["action"] == "UserEvent") == 16 * per_thread, 10)
    by_thread: dict[str, list[int]] = {}
    for a in fake.actions:
        if a["action"] == "UserEvent":
            assert set(a) == {"action", "userevent", "seq", "pad", "actionid"}
            by_thread.setdefault(a["userevent"], []).append(int(a["seq"]))
    assert all(seqs == list(range(per_thread)) for seqs in by_thread.values())


# -- frames ---------------------------------------------------------------------------------------------


def test_identifier_and_events_by_name(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client(identifier="pbx-1")
    rec = Recorder(ami)
    hangups: list[dict[str, Any]] = []
    ami.on("Hangup", hangups.append)
    ami.connect()
    rec.wait_for("ami_login")
    fake.push_event("Hangup", Channel="PJSIP/100-0001", Cause="16")
    fake.push_event("Newchannel", Channel="PJSIP/100-0002")
    rec.wait_frames(lambda f: f.get("event") == "Newchannel")
    assert len(hangups) == 1 and hangups[0]["channel"] == "PJSIP/100-0001"
    assert all(f["identifier"] == "pbx-1" for f in rec.frames)


def test_handler_exception_is_logged_and_later_frames_arrive(
    fake: FakeAsterisk, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ami = make_client()
    rec = Recorder(ami)

    def bad(frame: dict[str, Any]) -> None:
        if frame.get("event") == "Boom":
            raise RuntimeError("handler bug")

    ami.on("ami_data", bad)
    ami.connect()
    rec.wait_for("ami_login")
    with caplog.at_level(logging.ERROR, logger="asterisk_ami"):
        fake.push_event("Boom")
        fake.push_event("After")
        rec.wait_frames(lambda f: f.get("event") == "After")
    record = next(r for r in caplog.records if "raised" in r.getMessage())
    assert record.exc_info is not None and "handler bug" in str(record.exc_info[1])


def test_oversized_frame_is_an_error_and_reconnects(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client(max_frame_bytes=10_000, reconnect=True, reconnect_after=50)
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    fake.push_raw(b"Event: Huge\r\nData: " + b"x" * 50_000)
    rec.wait_for("ami_socket_close")
    assert isinstance(rec.args("ami_socket_error")[0][0], FrameTooLargeError)
    assert rec.args("ami_socket_close")[0] == (True,)
    rec.wait_for("ami_login", 2)
    fake.push_event("AfterReconnect")
    rec.wait_frames(lambda f: f.get("event") == "AfterReconnect")


def test_slow_handler_does_not_stop_reading_and_queue_is_bounded(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client(max_queued_frames=50)
    rec = Recorder(ami)
    release = threading.Event()
    ami.on("ami_data", lambda f: f.get("event") == "Slow" and release.wait(5))
    ami.connect()
    rec.wait_for("ami_login")
    fake.push_event("Slow")
    for i in range(2000):
        fake.push_event("Fill", N=i)
    time.sleep(0.5)
    assert ami.stats["queue_high_water"] <= 50 + 200  # bound plus at most one read's worth of frames
    release.set()
    rec.wait_frames(lambda f: f.get("event") == "Fill", n=2000, timeout=10)
    assert [int(f["n"]) for f in rec.frames if f.get("event") == "Fill"] == list(range(2000))


# -- reconnect, disconnect, destroy ------------------------------------------------------------------------


def test_reconnect_after_drop_keeps_handlers(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client(reconnect=True, reconnect_after=50)
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    fake.drop()
    rec.wait_for("ami_login", 2)
    assert rec.names().count("ami_socket_close") == 1
    fake.push_event("AfterReconnect")
    rec.wait_frames(lambda f: f.get("event") == "AfterReconnect")
    assert ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"


def test_disconnect_sends_logoff_and_stays_down(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client(reconnect=True, reconnect_after=20)
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    ami.disconnect()
    rec.wait_for("ami_socket_close")
    assert fake.actions[-1]["action"] == "Logoff"
    assert any(f.get("response") == "Goodbye" for f in rec.frames)
    time.sleep(0.2)
    assert logins(fake) == 1 and ami.state == "disconnected"
    assert not client_threads()


def test_destroy_closes_at_once_without_logoff(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client(reconnect=True, reconnect_after=20)
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    ami.destroy()
    rec.wait_for("ami_socket_close")
    assert all(a["action"] != "Logoff" for a in fake.actions)
    assert "ami_socket_end" not in rec.names()
    time.sleep(0.2)
    assert logins(fake) == 1
    assert not client_threads()


def _wait_no_threads() -> bool:
    wait_until(lambda: not client_threads(), what="client threads to end")
    return True


def test_disconnect_and_destroy_any_time(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client()
    ami.disconnect()
    ami.destroy()
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    ami.disconnect()
    ami.disconnect()
    ami.destroy()
    # from inside a handler: no deadlock, no exception
    ami2 = make_client()
    rec2 = Recorder(ami2)
    ami2.on("ami_login", lambda ok, frame: ami2.disconnect())
    ami2.connect()
    rec2.wait_for("ami_socket_close")
    assert _wait_no_threads()


def test_connect_again_after_disconnect(fake: FakeAsterisk, make_client: Any) -> None:
    ami = make_client()
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    ami.disconnect()
    ami.connect()
    rec.wait_for("ami_login", 2)
    assert ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"


# -- actions with results -----------------------------------------------------------------------------------


def test_request_event_list(fake: FakeAsterisk, make_client: Any) -> None:
    fake.respond(
        "CoreShowChannels",
        EventList(
            events=[{"Event": "CoreShowChannel", "Channel": f"PJSIP/{i}"} for i in range(3)],
            complete_event="CoreShowChannelsComplete",
            message="Channels will follow",
        ),
    )
    ami, _ = connected(make_client)
    result = ami.request({"Action": "CoreShowChannels"}, timeout=5)
    assert [e["channel"] for e in result.events] == ["PJSIP/0", "PJSIP/1", "PJSIP/2"]
    assert result.complete is not None and result.complete["listitems"] == "3"


def test_request_command_output_both_formats(fake: FakeAsterisk, make_client: Any) -> None:
    fake.respond_command("core show version", "Asterisk 22.1.0 built by x\nsecond: line")
    fake.respond_command("legacy", "old one\n\nold two", legacy=True)
    ami, _ = connected(make_client)
    assert ami.request({"Action": "Command", "Command": "core show version"}).output == [
        "Asterisk 22.1.0 built by x",
        "second: line",
    ]
    assert ami.request({"Action": "Command", "Command": "legacy"}).output == ["old one", "", "old two"]


def test_error_response_raises_action_error(fake: FakeAsterisk, make_client: Any) -> None:
    ami, _ = connected(make_client)
    with pytest.raises(ActionError) as info:
        ami.request({"Action": "Bogus"}, timeout=5)
    assert "Invalid/unknown command" in str(info.value)
    assert info.value.frame is not None and info.value.frame["response"] == "Error"


def test_timeout_then_late_response_dropped(fake: FakeAsterisk, make_client: Any) -> None:
    # E26: a synchronous action can hold the session for long; per-call timeouts end the wait
    answer = threading.Event()

    def slow(action: dict[str, Any], session: Any) -> dict[str, str] | None:
        answer.wait(5)
        return {"Response": "Success", "Message": "late"}

    fake.respond("SlowAction", slow)
    ami, rec = connected(make_client)
    future = ami.action({"Action": "SlowAction"}, timeout=0.3)
    with pytest.raises(ActionTimeoutError):
        future.result(5)
    assert isinstance(future.exception(), TimeoutError)
    answer.set()
    rec.wait_frames(lambda f: f.get("message") == "late")
    assert ami.stats["pending_actions"] == 0
    assert ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"


def test_connection_lost_with_100_actions_in_flight(fake: FakeAsterisk, make_client: Any) -> None:
    fake.respond("Hang", lambda action, session: None)  # never answers
    ami, _rec = connected(make_client)
    futures = [ami.action({"Action": "Hang"}) for _ in range(100)]
    wait_until(lambda: sum(1 for a in fake.actions if a["action"] == "Hang") == 100)
    fake.drop(rst=True)
    for future in futures:
        assert isinstance(future.exception(timeout=5), ConnectionLostError)
    assert ami.stats["pending_actions"] == 0


def test_request_from_inside_a_handler(fake: FakeAsterisk, make_client: Any) -> None:
    ami, rec = connected(make_client, max_queued_frames=5)
    results: list[Any] = []

    def on_event(frame: dict[str, Any]) -> None:
        results.append(ami.request({"Action": "Ping"}, timeout=5)["ping"])

    ami.on("Trigger", on_event)
    fake.push_event("Trigger")
    for i in range(50):  # more frames than the queue bound while the handler waits
        fake.push_event("Fill", N=i)
    rec.wait(lambda: results == ["Pong"], what="request inside handler")
    rec.wait_frames(lambda f: f.get("event") == "Fill", n=50)


def test_request_on_reader_thread_is_a_usage_error(fake: FakeAsterisk, make_client: Any) -> None:
    ami, _ = connected(make_client)
    errors: list[BaseException] = []
    done = threading.Event()

    def on_done(_: Any) -> None:
        try:
            ami.request({"Action": "Ping"})
        except UsageError as exc:
            errors.append(exc)
        done.set()

    fake.stall(True)  # so the callback is attached before the result can arrive (it then runs on the reader)
    ami.action({"Action": "Ping"}).add_done_callback(on_done)
    fake.stall(False)
    assert done.wait(5)
    assert len(errors) == 1


def test_keepalive_detects_a_stalled_server(fake: FakeAsterisk, make_client: Any) -> None:
    _ami, rec = connected(make_client, ping_interval=0.2, ping_timeout=0.3, reconnect=True, reconnect_after=50)
    wait_until(lambda: any(a["action"] == "Ping" for a in fake.actions), what="keepalive ping")
    fake.stall(True)
    rec.wait_for("ami_socket_timeout", timeout=5)
    fake.stall(False)
    rec.wait_for("ami_login", 2)


def test_debug_logging_never_shows_the_secret(
    fake: FakeAsterisk, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="asterisk_ami"):
        ami, _rec = connected(make_client, debug=True)
        ami.request({"Action": "Ping"}, timeout=5)
        with pytest.raises(HeaderInjectionError) as info:
            ami.send({"Action": "Login", "Secret": SECRET + "\n"})
        ami.disconnect()
    text = caplog.text
    assert "send" in text and "Login" in text
    assert SECRET not in text and SECRET not in str(info.value)
    logging.getLogger("asterisk_ami").setLevel(logging.NOTSET)


# -- handler snapshots: the dispatch thread reads handler lists once per batch -------------------------


def _burst(n: int, name: str = "Tick") -> bytes:
    """``n`` events in one write, so they reach the dispatch thread as one batch."""
    return b"".join(f"Event: {name}\r\nSeq: {i}\r\n\r\n".encode() for i in range(n))


def test_handler_removed_inside_a_batch_gets_no_later_frame(fake: FakeAsterisk, make_client: Any) -> None:
    ami, rec = connected(make_client)
    got: list[str] = []

    def first_only(frame: dict[str, Any]) -> None:
        got.append(frame["seq"])
        ami.remove_listener("Tick", first_only)

    ami.on("Tick", first_only)
    once: list[str] = []
    ami.once("ami_data", lambda frame: once.append(frame.get("seq", "")))
    fake.push_raw(_burst(50))
    rec.wait_frames(lambda f: f.get("seq") == "49")
    assert got == ["0"]
    assert once == ["0"]


def test_handler_added_inside_a_batch_sees_the_next_frame(fake: FakeAsterisk, make_client: Any) -> None:
    ami, rec = connected(make_client)
    late: list[str] = []

    def add_late(frame: dict[str, Any]) -> None:
        if frame["seq"] == "10":
            ami.on("Tick", lambda f: late.append(f["seq"]))

    ami.on("Tick", add_late)
    fake.push_raw(_burst(20))
    rec.wait_frames(lambda f: f.get("seq") == "19")
    assert late == [str(i) for i in range(11, 20)]
    ami.remove_all_listeners("Tick")
    fake.push_raw(_burst(5))
    rec.wait_frames(lambda f: f.get("seq") == "4", n=2)
    assert late == [str(i) for i in range(11, 20)]


def test_server_cannot_fire_the_librarys_own_events(fake: FakeAsterisk, make_client: Any) -> None:
    ami, rec = connected(make_client)
    errors: list[Any] = []
    ami.on("error", errors.append)
    ami.on("new_listener", lambda *args: errors.append(args))
    fake.push_raw(b"Event: ami_login\r\n\r\nEvent: error\r\n\r\nEvent: ami_socket_close\r\n\r\nEvent: Done\r\n\r\n")
    rec.wait_frames(lambda f: f.get("event") == "Done")
    assert rec.count("ami_login") == 1  # only the real login
    assert rec.count("ami_socket_close") == 0
    assert errors == []
    # but they still arrive as data
    assert [f["event"] for f in rec.frames if f.get("event") in ("ami_login", "error")] == ["ami_login", "error"]
