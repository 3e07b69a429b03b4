"""``event_filters`` against a real Asterisk 22, on both shells: the filtered events never arrive, the
others do, and the same holds after Asterisk is killed and started again (the filters are written again
at the new login). A second connection sends the events (``Action: UserEvent``)."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from asterisk_ami import AsteriskAmi
from asterisk_ami.errors import EventFilterError

from ..helpers import Recorder, wait_until
from ..shells import SHELLS, AsyncioClient, LoopThread

if TYPE_CHECKING:
    from .conftest import AsteriskServer

TIMEOUT = 15.0
FILTERS = [
    "name(UserEvent)",  # advanced syntax: only UserEvents ...
    "action(exclude),header(UserEvent),method(starts_with) = drop-",  # ... but not these
    "Event: Hangup",  # legacy syntax: and Hangups
]


@pytest.fixture(params=SHELLS)
def make(request: pytest.FixtureRequest, asterisk_server: AsteriskServer) -> Iterator[Any]:
    loop = LoopThread() if request.param == "asyncio" else None
    made: list[Any] = []

    def client(**options: Any) -> Any:
        options = asterisk_server.options(connect_timeout=10, **options)
        ami = AsteriskAmi(**options) if loop is None else AsyncioClient(loop, **options)
        made.append(ami)
        return ami

    try:
        yield client
    finally:
        for ami in made:
            ami.destroy()
        if loop is not None:
            loop.stop()


def send_round(asterisk_server: AsteriskServer, rec: Recorder) -> list[str]:
    """UserEvents keep-*, drop-* and a last keep-*, from another connection; the UserEvent names received."""
    tag = uuid.uuid4().hex[:8]
    ami = asterisk_server.logged_in_client(events=False)
    try:
        for name in (f"keep-{tag}-1", f"drop-{tag}", f"keep-{tag}-2"):
            ami.request({"Action": "UserEvent", "UserEvent": name}, timeout=TIMEOUT)
        # an event no filter lets through: a Newchannel and its fellows, from a call
        ami.request(
            {"Action": "Originate", "Channel": "Local/100@default", "Application": "Wait", "Data": "1"}, timeout=TIMEOUT
        )
    finally:
        ami.destroy()
    last = f"keep-{tag}-2"
    rec.wait_frames(lambda f: f.get("userevent") == last, timeout=TIMEOUT)
    rec.wait_frames(
        lambda f: f.get("event") == "Hangup" and f.get("channel", "").startswith("Local/100@"), timeout=TIMEOUT
    )
    return [f["userevent"] for f in rec.frames if f.get("event") == "UserEvent" and tag in str(f.get("userevent"))]


def test_filtered_events_never_arrive_also_after_a_restart(make: Any, asterisk_server: AsteriskServer) -> None:
    ami = make(event_filters=FILTERS, reconnect=True, reconnect_after=100)
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login", timeout=TIMEOUT)
    ami.request({"Action": "Ping"}, timeout=TIMEOUT)  # the filters' answers came before this
    names = send_round(asterisk_server, rec)
    assert names == [n for n in names if n.startswith("keep-")] and len(names) == 2
    events = {f.get("event") for f in rec.frames if f.get("event")}
    assert {"UserEvent", "Hangup"} <= events
    assert not events & {"Newchannel", "Newexten", "VarSet", "Newstate"}  # the call's other events
    if not asterisk_server.managed:
        return
    try:
        asterisk_server.kill(signal.SIGKILL)
        wait_until(lambda: not ami.connected, TIMEOUT, "the client to notice")
        rec.frames.clear()
        asterisk_server.start()
        rec.wait_for("ami_login", n=2, timeout=TIMEOUT * 2)
    finally:
        if asterisk_server.pid is None:
            asterisk_server.start()
    ami.request({"Action": "Ping"}, timeout=TIMEOUT)
    names = send_round(asterisk_server, rec)
    assert len(names) == 2 and all(n.startswith("keep-") for n in names)
    events = {f.get("event") for f in rec.frames if f.get("event")}
    assert not events & {"Newchannel", "Newexten", "VarSet", "Newstate"}
    # connection refused while Asterisk was down, never a refused filter
    assert not [args for args in rec.args("ami_socket_error") if isinstance(args[0], EventFilterError)]


def test_a_filter_asterisk_refuses_is_an_error_and_the_connection_stays(make: Any) -> None:
    ami = make(event_filters=["Event: (((", "name(UserEvent)"])
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_socket_error", timeout=TIMEOUT)
    [(error,)] = rec.args("ami_socket_error")
    assert isinstance(error, EventFilterError) and "did not compile" in str(error)
    assert ami.connected and ami.request({"Action": "Ping"}, timeout=TIMEOUT)["ping"] == "Pong"
    assert rec.count("ami_socket_close") == 0
