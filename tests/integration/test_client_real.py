"""``AsteriskAmi`` against a real Asterisk 22 (the ``asterisk_server`` sandbox of conftest.py).

Every wait has a timeout; the few fixed observation windows (``assert_stays``) only check that
something does *not* happen (no reconnect storm, no second login, no events).  Every client made
by the ``make_client`` fixture is destroyed after its test.

Dialplan (scripts/asterisk_sandbox/config.py): 100 = Answer, UserEvent(TestEvent,Foo: bar), Wait(1),
Hangup; 101 = Answer, UserEvent, Echo; 200 = Answer, Wait(30), Hangup.
"""

from __future__ import annotations

import contextlib
import signal
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import pytest

from asterisk_ami import (
    ActionError,
    ActionResult,
    AsteriskAmi,
    AuthenticationError,
    ConnectionLostError,
    NotConnectedError,
    PermissionDeniedError,
)

from ..helpers import Recorder, wait_until

if TYPE_CHECKING:
    from .conftest import AsteriskServer

Frame = dict[str, Any]
LOGIN_TIMEOUT = 10.0
CALL_TIMEOUT = 15.0


# --------------------------------------------------------------------------- helpers


class Named:
    """Collects frames delivered to by-name handlers (``ami.on('Hangup', ...)``)."""

    def __init__(self, ami: AsteriskAmi, *names: str) -> None:
        self.frames: list[tuple[str, Frame]] = []
        self._cond = threading.Condition()
        for name in names:
            ami.on(name, self._make(name))

    def _make(self, name: str) -> Callable[[Frame], None]:
        def handler(frame: Frame) -> None:
            with self._cond:
                self.frames.append((name, frame))
                self._cond.notify_all()

        return handler

    def matching(self, name: str, predicate: Callable[[Frame], bool] = lambda f: True) -> list[Frame]:
        with self._cond:
            return [f for n, f in self.frames if n == name and predicate(f)]

    def wait(
        self, name: str, predicate: Callable[[Frame], bool] = lambda f: True, n: int = 1, timeout: float = CALL_TIMEOUT
    ) -> list[Frame]:
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [f for e, f in self.frames if e == name and predicate(f)]
                if len(found) >= n:
                    return found
                left = end - time.monotonic()
                if left <= 0:
                    seen = sorted({e for e, _ in self.frames})
                    raise AssertionError(f"timed out waiting for {n} x {name} (got {len(found)}); names seen: {seen}")
                self._cond.wait(min(left, 0.05))


def assert_stays(predicate: Callable[[], bool], duration: float, what: str) -> None:
    """Fail as soon as ``predicate()`` turns false within ``duration`` seconds."""
    end = time.monotonic() + duration
    while time.monotonic() < end:
        assert predicate(), what
        time.sleep(0.02)
    assert predicate(), what


def events_of(rec: Recorder, name: str | None = None) -> list[Frame]:
    return [f for f in rec.frames_now() if "event" in f and (name is None or f["event"] == name)]


def frames_with(rec: Recorder, key: str, value: str) -> list[Frame]:
    return [f for f in rec.frames_now() if f.get(key) == value]


def login_results(rec: Recorder) -> list[bool]:
    return [args[0] for args in rec.args("ami_login")]


def call_prefix(channel: str) -> str:
    """``Local/100@default-0000000a;1`` -> ``Local/100@default-0000000a;`` (both halves of the call)."""
    return channel.rsplit(";", 1)[0] + ";"


def unique_id(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}"


def ami_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("asterisk-ami-") and t.is_alive()}


@pytest.fixture
def revive(asterisk_server: AsteriskServer) -> Iterator[AsteriskServer]:
    """For tests that stop or kill Asterisk: it runs again (and is not frozen) afterwards, pass or fail."""
    if not asterisk_server.managed:
        pytest.skip("external AMI server: this session cannot kill or restart it")
    yield asterisk_server
    if asterisk_server.pid is not None:
        asterisk_server.kill(signal.SIGCONT)
    asterisk_server.start()


ClientFactory = Callable[..., tuple[AsteriskAmi, Recorder]]


@pytest.fixture
def make_client(asterisk_server: AsteriskServer) -> Iterator[ClientFactory]:
    """``make_client(account='admin'|'system', secret=None, connect=True, login=True, **options)``.

    Returns ``(ami, recorder)``; with ``login`` it waits for ``ami_login`` and checks it succeeded.
    """
    clients: list[AsteriskAmi] = []

    def make(
        account: str = "admin", *, secret: str | None = None, connect: bool = True, login: bool = True, **options: Any
    ) -> tuple[AsteriskAmi, Recorder]:
        creds = getattr(asterisk_server.accounts, account)
        if creds is None:
            pytest.skip(f"the server under test has no {account!r} account")
        options.setdefault("host", asterisk_server.host)
        options.setdefault("port", asterisk_server.port)
        options.setdefault("connect_timeout", LOGIN_TIMEOUT)
        ami = AsteriskAmi(username=creds.username, password=secret or creds.secret, **options)
        clients.append(ami)
        rec = Recorder(ami)
        if connect:
            ami.connect()
            if login:
                rec.wait_for("ami_login", timeout=LOGIN_TIMEOUT)
                success, frame = rec.args("ami_login")[0]
                assert success is True, f"login failed: {frame}"
                assert ami.connected
        return ami, rec

    yield make
    for ami in clients:
        ami.destroy()


def originate_local(ami: AsteriskAmi, exten: str, action_id: str | None = None, **extra: str) -> ActionResult:
    """Async Originate of ``Local/<exten>@default`` running ``Wait(1)`` on the ;1 half."""
    msg = {
        "Action": "Originate",
        "Channel": f"Local/{exten}@default",
        "Application": "Wait",
        "Data": "1",
        "Async": "true",
        **extra,
    }
    if action_id is not None:
        msg["ActionID"] = action_id
    return ami.request(msg, timeout=CALL_TIMEOUT)


# --------------------------------------------------------------------------- 1. login, events off


def test_login_success_banner(make_client: ClientFactory) -> None:
    ami, rec = make_client(identifier="pbx-a")
    success, frame = rec.args("ami_login")[0]
    assert success is True
    assert frame["response"] == "Success"
    assert frame["message"] == "Authentication accepted"
    assert ami.banner is not None and ami.banner.startswith("Asterisk Call Manager/")
    assert ami.protocol_version and ami.protocol_version[0].isdigit()
    # the login response also reached ami_data, before any event
    assert rec.frames[0] is frame or rec.frames[0] == frame
    assert ami.state == "connected"
    # FullyBooted follows a login whose mask includes 'system' (events=True)
    rec.wait_frames(lambda f: f.get("event") == "FullyBooted", timeout=LOGIN_TIMEOUT)
    # the identifier option tags every frame handed out
    assert all(f.get("identifier") == "pbx-a" for f in rec.frames), rec.frames


def test_wrong_secret_no_reconnect_storm(make_client: ClientFactory, asterisk_server: AsteriskServer) -> None:
    ami, rec = make_client(
        secret=asterisk_server.accounts.wrong_secret, login=False, reconnect=True, reconnect_after=100
    )
    rec.wait_for("ami_login", timeout=LOGIN_TIMEOUT)  # Asterisk sleeps 1 s before refusing
    success, frame = rec.args("ami_login")[0]
    assert success is False
    assert frame["response"] == "Error"
    assert frame["message"] == "Authentication failed"
    rec.wait_for("ami_socket_close", timeout=5)
    errors = [args[0] for args in rec.args("ami_socket_error")]
    assert any(isinstance(e, AuthenticationError) for e in errors), errors
    assert rec.args("ami_socket_close")[0] == (True,)
    # reconnect_after=100 ms: a storm would give ~2 logins a second (each refused after Asterisk's 1 s sleep)
    assert_stays(lambda: rec.count("ami_login") == 1, 2.5, f"login retried: {rec.args('ami_login')}")
    assert rec.count("ami_socket_close") == 1
    assert not ami.connected
    assert ami.state == "disconnected"


def test_events_off_gets_no_events(make_client: ClientFactory) -> None:
    quiet, quiet_rec = make_client(events=False)
    caller, caller_rec = make_client()
    action_id = unique_id("evoff")
    assert originate_local(caller, "100", action_id)["actionid"] == action_id
    # the events=True control client sees the whole call ...
    caller_rec.wait_frames(lambda f: f.get("event") == "OriginateResponse" and f.get("actionid") == action_id)
    response = frames_with(caller_rec, "actionid", action_id)[-1]
    prefix = call_prefix(response["channel"])
    caller_rec.wait_frames(lambda f: f.get("event") == "Hangup" and f["channel"].startswith(prefix), n=2)
    # ... and the events=False one only its own responses (a Ping flushes the session after the call)
    assert quiet.request({"Action": "Ping"})["ping"] == "Pong"
    assert quiet_rec.frames, "the events=False client got no frames at all"
    assert events_of(quiet_rec) == [], f"events reached an events=False client: {events_of(quiet_rec)}"
    assert all(f.get("response") == "Success" for f in quiet_rec.frames), quiet_rec.frames


# --------------------------------------------------------------------------- 2. ping, unknown action


def test_ping_request(make_client: ClientFactory) -> None:
    ami, _ = make_client()
    result = ami.request({"Action": "Ping"}, timeout=5)
    assert isinstance(result, ActionResult)
    assert result["response"] == "Success"
    assert result["ping"] == "Pong"
    assert float(result["timestamp"]) > 1e9
    assert result.events == [] and result.complete is None


def test_unknown_action_raises_action_error(make_client: ClientFactory) -> None:
    ami, rec = make_client()
    with pytest.raises(ActionError) as info:
        ami.request({"Action": "NoSuchActionXyz"}, timeout=5)
    err = info.value
    assert "Invalid/unknown command" in str(err)
    assert err.frame is not None
    # the value carries ': ' itself and must arrive whole (E6)
    assert err.frame["message"] == (
        "Invalid/unknown command: NoSuchActionXyz. Use Action: ListCommands to show available commands."
    )
    assert err.frame["response"] == "Error"
    # the connection survives: the next action works
    assert ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"
    assert rec.count("ami_socket_close") == 0


# --------------------------------------------------------------------------- 3. originate and its events


def test_originate_events_by_data_and_by_name(make_client: ClientFactory) -> None:
    ami, rec = make_client()
    names = ("Newchannel", "Newstate", "Newexten", "DialBegin", "DialEnd", "UserEvent", "Hangup", "OriginateResponse")
    named = Named(ami, *names)
    action_id = unique_id("orig")
    result = originate_local(ami, "100", action_id)
    assert result["response"] == "Success"
    assert result["actionid"] == action_id
    assert result["message"] == "Originate successfully queued"

    orig = named.wait("OriginateResponse", lambda f: f.get("actionid") == action_id)[0]
    assert orig["response"] == "Success"
    assert orig["reason"] == "4"  # answered
    prefix = call_prefix(orig["channel"])

    def ours(f: Frame) -> bool:
        return str(f.get("channel", f.get("destchannel", ""))).startswith(prefix)

    hangups = named.wait("Hangup", ours, n=2)
    assert {h["channel"] for h in hangups} == {prefix + "1", prefix + "2"}
    assert len(named.wait("Newchannel", ours, n=2)) == 2
    assert any(f["channelstatedesc"] == "Up" for f in named.wait("Newstate", ours))
    assert named.wait("DialBegin", ours)[0]["dialstring"] == "100@default"
    assert named.wait("DialEnd", ours)[0]["dialstatus"] == "ANSWER"
    user = named.wait("UserEvent", ours)[0]
    assert user["userevent"] == "TestEvent"
    assert user["foo"] == "bar"
    app = named.wait("Newexten", lambda f: ours(f) and f.get("application") == "UserEvent")[0]
    assert app["appdata"] == "TestEvent,Foo: bar"  # a value with ': ' inside, whole

    # ami_data saw exactly the same frames for this call as the by-name handlers, in the same order
    by_data = [f for f in events_of(rec) if f["event"] in names and (ours(f) or f.get("actionid") == action_id)]
    by_name = [f for n, f in named.frames if ours(f) or f.get("actionid") == action_id]
    assert [f["event"] for f in by_data] == [f["event"] for f in by_name]
    assert all(a is b for a, b in zip(by_data, by_name, strict=True)), "by-name handler got a different frame"
    # the call's first event comes after the Originate response; the OriginateResponse event is not
    # mistaken for the response (it is an event frame carrying our ActionID and 'Response: Success')
    ours_by_id = frames_with(rec, "actionid", action_id)
    assert [("event" in f) for f in ours_by_id] == [False, True]
    assert rec.frames.index(ours_by_id[0]) < rec.frames.index(by_data[0])


# --------------------------------------------------------------------------- 4. concurrency


def test_fifty_concurrent_originates_from_ten_threads(make_client: ClientFactory) -> None:
    ami, rec = make_client()
    named = Named(ami, "OriginateResponse", "Hangup")
    threads_n, per_thread = 10, 5
    barrier = threading.Barrier(threads_n)
    sent: dict[int, list[tuple[str, Future[ActionResult] | None]]] = {}
    callbacks: dict[str, list[Frame]] = {}
    cb_lock = threading.Lock()
    errors: list[BaseException] = []

    def on_response(frame: Frame) -> None:
        with cb_lock:
            callbacks.setdefault(frame["actionid"], []).append(frame)

    def worker(n: int) -> None:
        try:
            mine: list[tuple[str, Future[ActionResult] | None]] = []
            barrier.wait(10)
            for i in range(per_thread):
                msg = {
                    "Action": "Originate",
                    "Channel": "Local/100@default",
                    "Application": "Wait",
                    "Data": "1",
                    "Async": "true",
                }
                if i % 2 == 0:  # futures with our own ActionIDs
                    action_id = f"t{n}-{i}-{uuid.uuid4().hex[:8]}"
                    mine.append((action_id, ami.action({**msg, "ActionID": action_id}, timeout=CALL_TIMEOUT)))
                else:  # generated ActionIDs returned by send(), response through the callback
                    mine.append((ami.send(msg, on_response), None))
            sent[n] = mine
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,), name=f"originator-{n}") for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    assert len(sent) == threads_n
    all_ids = [aid for mine in sent.values() for aid, _ in mine]
    assert len(set(all_ids)) == threads_n * per_thread

    for mine in sent.values():
        for action_id, future in mine:
            if future is not None:
                result = future.result(CALL_TIMEOUT)
                assert result["actionid"] == action_id
                assert result["response"] == "Success"
    callback_ids = [aid for mine in sent.values() for aid, fut in mine if fut is None]
    wait_until(lambda: all(aid in callbacks for aid in callback_ids), CALL_TIMEOUT, "send() callbacks")
    for aid in callback_ids:
        assert len(callbacks[aid]) == 1
        assert callbacks[aid][0]["actionid"] == aid
        assert callbacks[aid][0]["response"] == "Success"
        assert "event" not in callbacks[aid][0]  # the response, not the OriginateResponse event
    assert set(callbacks) == set(callback_ids)

    # every originate's OriginateResponse arrives, and both Local halves hang up (2 Hangups per call)
    ids = set(all_ids)
    responses = named.wait("OriginateResponse", lambda f: f.get("actionid") in ids, n=len(ids), timeout=30)
    assert sorted(f["actionid"] for f in responses) == sorted(ids)
    assert all(f["response"] == "Success" for f in responses)
    prefixes = {call_prefix(f["channel"]) for f in responses}
    assert len(prefixes) == len(ids)
    hangups = named.wait("Hangup", lambda f: call_prefix(f["channel"]) in prefixes, n=2 * len(ids), timeout=30)
    assert len({h["channel"] for h in hangups}) == 2 * len(ids)
    # ami_data saw every one of them too
    assert len([f for f in events_of(rec, "Hangup") if call_prefix(f["channel"]) in prefixes]) == 2 * len(ids)


# --------------------------------------------------------------------------- 5. event lists, Command


@pytest.fixture
def long_calls(make_client: ClientFactory) -> Iterator[tuple[AsteriskAmi, Recorder, set[str]]]:
    """Three calls to exten 200 (Wait(30)) that are up; yields (client, recorder, channel names)."""
    ami, rec = make_client()
    ids = [unique_id("long") for _ in range(3)]
    for action_id in ids:
        msg = {
            "Action": "Originate",
            "Channel": "Local/200@default",
            "Application": "Wait",
            "Data": "30",
            "Async": "true",
            "ActionID": action_id,
        }
        assert ami.request(msg, timeout=CALL_TIMEOUT)["actionid"] == action_id
    rec.wait_frames(lambda f: f.get("event") == "OriginateResponse" and f.get("actionid") in ids, n=3)
    responses = [f for f in events_of(rec, "OriginateResponse") if f.get("actionid") in ids]
    assert all(f["response"] == "Success" for f in responses), responses
    channels = {call_prefix(f["channel"]) + half for f in responses for half in "12"}
    yield ami, rec, channels
    if ami.connected:
        for channel in channels:
            with contextlib.suppress(ActionError):  # already gone
                ami.request({"Action": "Hangup", "Channel": channel}, timeout=5)


def test_core_show_channels_event_list(long_calls: tuple[AsteriskAmi, Recorder, set[str]]) -> None:
    ami, _, channels = long_calls
    result = ami.request({"Action": "CoreShowChannels"}, timeout=10)
    assert result["response"] == "Success"
    assert result["eventlist"].lower() == "start"
    listed = {e["channel"] for e in result.events}
    assert channels <= listed, f"missing {channels - listed}"
    assert all(e["event"] == "CoreShowChannel" for e in result.events)
    assert all(e["actionid"] == result["actionid"] for e in result.events)
    assert result.complete is not None
    assert result.complete["event"] == "CoreShowChannelsComplete"
    assert result.complete["eventlist"] == "Complete"
    assert int(result.complete["listitems"]) == len(result.events)


def test_status_event_list(long_calls: tuple[AsteriskAmi, Recorder, set[str]]) -> None:
    ami, _, channels = long_calls
    result = ami.request({"Action": "Status"}, timeout=10)
    assert result["message"] == "Channel status will follow"
    assert channels <= {e["channel"] for e in result.events}
    assert all(e["event"] == "Status" for e in result.events)
    assert result.complete is not None and result.complete["event"] == "StatusComplete"
    assert int(result.complete["listitems"]) == len(result.events)
    # one channel only
    one = sorted(channels)[0]
    single = ami.request({"Action": "Status", "Channel": one}, timeout=10)
    assert [e["channel"] for e in single.events] == [one]


def test_command_output(make_client: ClientFactory, asterisk_server: AsteriskServer) -> None:
    ami, _ = make_client()
    result = ami.request({"Action": "Command", "Command": "core show version"}, timeout=10)
    assert result["response"] == "Success"
    assert isinstance(result.output, list) and result.output
    assert result.output[0].startswith("Asterisk 22"), result.output
    if asterisk_server.version:
        assert result.output[0].startswith(asterisk_server.version + " built by"), result.output
    # a multi-line output keeps every line, in order
    uptime = ami.request({"Action": "Command", "Command": "core show uptime"}, timeout=10)
    assert len(uptime.output) >= 2 and uptime.output[0].startswith("System uptime:"), uptime.output
    # a failing command: Response: Error that still carries Output lines
    with pytest.raises(ActionError) as info:
        ami.request({"Action": "Command", "Command": "core show nosuchthing"}, timeout=10)
    assert info.value.result is not None
    assert any("No such command" in line for line in info.value.result.output), info.value.result.output


# --------------------------------------------------------------------------- 6. SIGKILL and reconnect


def test_sigkill_restart_twice_reconnects(make_client: ClientFactory, revive: AsteriskServer) -> None:
    asterisk_server = revive
    before = ami_threads()
    ami, rec = make_client(reconnect=True, reconnect_after=200)
    named = Named(ami, "UserEvent")
    for round_no in (1, 2):
        closes = rec.count("ami_socket_close")
        # an action in flight when Asterisk dies: SIGSTOP first so it cannot answer, then SIGKILL
        asterisk_server.freeze()
        in_flight = ami.action({"Action": "Ping"})  # no timeout: only the connection loss can end it
        asterisk_server.kill(signal.SIGKILL)
        rec.wait_for("ami_socket_close", n=closes + 1, timeout=10)
        killed_at = time.monotonic()
        with pytest.raises(ConnectionLostError):
            in_flight.result(5)
        assert not ami.connected
        ended = rec.names()[rec.names().index("ami_login") :]
        assert "ami_socket_end" in ended or "ami_socket_error" in ended, ended
        # an action while the server is down must end too (NotConnected, ConnectionLost or, after the
        # reconnect, a result) -- it must never hang
        while_down = ami.action({"Action": "Ping"})
        asterisk_server.start()
        started_at = time.monotonic()
        rec.wait_for("ami_login", n=round_no + 1, timeout=LOGIN_TIMEOUT)
        relogin = time.monotonic() - started_at
        assert login_results(rec) == [True] * (round_no + 1)
        assert ami.connected
        try:
            outcome: object = while_down.result(LOGIN_TIMEOUT)["ping"]
        except (NotConnectedError, ConnectionLostError) as exc:
            outcome = exc
        print(
            f"round {round_no}: restart took {started_at - killed_at:.2f} s, re-login {relogin:.2f} s later; "
            f"action sent while down -> {outcome!r}"
        )
        # handlers are still attached after the reconnect: a new call's UserEvent reaches the by-name handler
        # (channel numbers restart at 00000000 with Asterisk, so count rather than match the name only)
        seen = len(named.matching("UserEvent"))
        action_id = unique_id(f"after-kill-{round_no}")
        originate_local(ami, "100", action_id)
        rec.wait_frames(lambda f, a=action_id: f.get("event") == "OriginateResponse" and f.get("actionid") == a)
        prefix = call_prefix(frames_with(rec, "actionid", action_id)[-1]["channel"])
        named.wait("UserEvent", lambda f, p=prefix: f["channel"].startswith(p), n=seen + 1)
        assert ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"
    assert len(named.matching("UserEvent")) == 2
    # the only errors were the kills and the refused connects while the port was closed
    assert all(isinstance(e[0], OSError) for e in rec.args("ami_socket_error")), rec.args("ami_socket_error")
    print("events:", [n for n in rec.names() if n != "ami_socket_drain"])
    ami.destroy()
    wait_until(lambda: not (ami_threads() - before), 5, f"client threads to end: {ami_threads() - before}")
    assert ami.state == "disconnected"


def test_keepalive_detects_frozen_server(make_client: ClientFactory, revive: AsteriskServer) -> None:
    """A server that stops answering (SIGSTOP: the TCP link stays up) is noticed by the keepalive Ping."""
    asterisk_server = revive
    ami, rec = make_client(
        ping_interval=0.3, ping_timeout=0.7, reconnect=True, reconnect_after=200, connect_timeout=1.5
    )
    # idle but alive: keepalive Pings are answered and the link stays up
    assert_stays(lambda: rec.count("ami_socket_close") == 0, 1.0, f"link dropped while idle: {rec.names()}")
    asterisk_server.freeze()
    try:
        rec.wait_for("ami_socket_timeout", timeout=5)
        rec.wait_for("ami_socket_close", timeout=5)
        assert not ami.connected
    finally:
        asterisk_server.kill(signal.SIGCONT)
    rec.wait_for("ami_login", n=2, timeout=LOGIN_TIMEOUT)
    assert login_results(rec)[-1] is True
    assert ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"


# --------------------------------------------------------------------------- 7. disconnect


def test_disconnect_sends_logoff_and_stays_down(make_client: ClientFactory) -> None:
    ami, rec = make_client(reconnect=True, reconnect_after=100)
    ami.disconnect(timeout=5)
    goodbye = [f for f in rec.frames if f.get("response") == "Goodbye"]
    assert len(goodbye) == 1, rec.frames[-3:]
    assert goodbye[0]["message"] == "Thanks for all the fish."
    rec.wait_for("ami_socket_close", timeout=5)
    assert rec.args("ami_socket_close")[0] == (False,)
    assert not ami.connected
    # reconnect=True must not bring a client back that the user disconnected
    assert_stays(
        lambda: rec.count("ami_login") == 1 and rec.count("ami_socket_close") == 1,
        1.0,
        f"client came back after disconnect(): {rec.names()}",
    )
    assert ami.state == "disconnected"


# --------------------------------------------------------------------------- 8. MD5


def test_md5_login(make_client: ClientFactory) -> None:
    ami, rec = make_client(auth="md5")
    challenge = [f for f in rec.frames if "challenge" in f]
    assert len(challenge) == 1 and challenge[0]["challenge"].isdigit(), rec.frames[:2]
    assert ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"


def test_md5_wrong_secret(make_client: ClientFactory, asterisk_server: AsteriskServer) -> None:
    ami, rec = make_client(auth="md5", secret=asterisk_server.accounts.wrong_secret, login=False)
    rec.wait_for("ami_login", timeout=LOGIN_TIMEOUT)
    success, frame = rec.args("ami_login")[0]
    assert success is False
    assert frame["message"] == "Authentication failed"
    rec.wait_for("ami_socket_close", timeout=5)
    assert not ami.connected


# --------------------------------------------------------------------------- 9. TLS


def test_tls_with_server_cert(make_client: ClientFactory, asterisk_server: AsteriskServer) -> None:
    # E27: TLS is a second listener (tlsbindaddr) speaking the same protocol
    if asterisk_server.tls_port is None:
        pytest.skip("no TLS listener")
    ami, rec = make_client(port=asterisk_server.tls_port, ssl=asterisk_server.ssl_context())
    assert ami.banner is not None and ami.banner.startswith("Asterisk Call Manager/")
    assert ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"
    # larger responses over TLS (several records) arrive whole
    result = ami.request({"Action": "Command", "Command": "core show help"}, timeout=10)
    assert len(result.output) > 50
    assert rec.count("ami_socket_error") == 0


def test_tls_default_trust_refuses_self_signed(make_client: ClientFactory, asterisk_server: AsteriskServer) -> None:
    if asterisk_server.tls_port is None:
        pytest.skip("no TLS listener")
    ami, rec = make_client(port=asterisk_server.tls_port, ssl=True, login=False)
    rec.wait_for("ami_socket_close", timeout=LOGIN_TIMEOUT)
    errors = [args[0] for args in rec.args("ami_socket_error")]
    assert len(errors) == 1 and isinstance(errors[0], ssl.SSLError), errors
    assert isinstance(errors[0], ssl.SSLCertVerificationError), errors
    assert rec.args("ami_socket_close")[0] == (True,)
    assert rec.count("ami_login") == 0
    assert rec.frames == []
    assert ami.banner is None  # nothing was read from an unverified server
    assert not ami.connected


# --------------------------------------------------------------------------- 10. permissions


def test_system_only_account(make_client: ClientFactory) -> None:
    ami, rec = make_client("system")
    with pytest.raises(ActionError) as info:
        ami.request(
            {
                "Action": "Originate",
                "Channel": "Local/100@default",
                "Application": "Wait",
                "Data": "1",
                "Async": "true",
            },
            timeout=10,
        )
    assert info.value.frame is not None
    assert info.value.frame["message"] == "Permission denied"  # Asterisk 22's exact text
    assert "Permission denied" in str(info.value)
    assert isinstance(info.value, PermissionDeniedError) and info.value.action == "Originate"
    assert ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"
    assert rec.count("ami_socket_close") == 0
