"""Servers' quirks from the field (E30-E32 and the frame limit), end to end: AsteriskAmi against FakeAsterisk
over real loopback sockets. tests/test_protocol_field.py has the same rules on the parser alone."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from asterisk_ami import AsteriskAmi, FrameTooLargeError
from asterisk_ami.testing import FakeAsterisk

from .helpers import Recorder, client_threads, wait_until

MAP_COMPLETE = b"Event: CoreShowChannelMapComplete\r\nActionID: %s\r\nEventList: Complete\r\nListItems: 1\r\n\n"


@pytest.fixture
def connect() -> Iterator[Any]:
    """connect(fake, **options) -> a logged-in client and its Recorder; every client is destroyed after."""
    before = client_threads()
    clients: list[AsteriskAmi] = []

    def make(fake: FakeAsterisk, **options: Any) -> tuple[AsteriskAmi, Recorder]:
        ami = AsteriskAmi(host=fake.host, port=fake.port, username="admin", password="secret", **options)
        clients.append(ami)
        rec = Recorder(ami)
        ami.connect()
        rec.wait_for("ami_login")
        return ami, rec

    yield make
    for ami in clients:
        ami.destroy()
    wait_until(lambda: not (client_threads() - before), 5, "client threads to end after destroy()")


def channel_map(frame: Any, session: Any) -> bytes:
    """What Asterisk 18.19+/20.4+ answers CoreShowChannelMap with: its last event ends in \\r\\n\\n (E30)."""
    action_id = frame["actionid"].encode()
    return (
        b"Response: Success\r\nActionID: %s\r\nEventList: start\r\nMessage: Channel map will follow\r\n\r\n"
        b"Event: CoreShowChannelMap\r\nActionID: %s\r\nChannel: PJSIP/100-00000001\r\n"
        b"ConnectedChannel: PJSIP/200-00000002\r\n\r\n" % (action_id, action_id)
    ) + MAP_COMPLETE % action_id


@pytest.mark.parametrize("line_end", ["\r\n", "\n"], ids=["strict", "lenient"])
def test_after_a_frame_ending_in_crlf_lf_the_next_request_gets_its_answer(connect: Any, line_end: str) -> None:
    with FakeAsterisk(line_end=line_end) as fake:
        fake.respond("CoreShowChannelMap", channel_map)
        ami, rec = connect(fake)
        result = ami.request({"Action": "CoreShowChannelMap", "Channel": "PJSIP/100-00000001"}, timeout=5)
        assert [e["connectedchannel"] for e in result.events] == ["PJSIP/200-00000002"]
        assert result.complete is not None and result.complete["listitems"] == "1"
        assert ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"
        # the same from an event that is not ours: the next frame is not merged into it
        fake.push_raw(MAP_COMPLETE % b"someone-else")
        assert ami.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"
        rec.wait_frames(lambda f: f.get("actionid") == "someone-else")
        assert not any(isinstance(f.get("actionid"), list) for f in rec.frames)


@pytest.mark.parametrize("banner", ["PBX Call Manager/5.0.0", "Asterisk Call Manager Proxy/1.2"])
def test_a_banner_of_another_product_is_the_banner(connect: Any, banner: str) -> None:
    with FakeAsterisk(banner=banner) as fake:
        ami, rec = connect(fake)
        success, frame = rec.args("ami_login")[0]
        assert success is True and "raw" not in frame
        assert frame["message"] == "Authentication accepted"
        assert ami.banner == banner
        assert ami.protocol_version == banner.rsplit("/", 1)[1]


def test_blank_lines_then_a_close_is_no_frame_cut_short(connect: Any, caplog: pytest.LogCaptureFixture) -> None:
    with FakeAsterisk() as fake:
        _, rec = connect(fake)
        fake.push_raw(b"Event: RPT_RXKEYED\r\nNode: 2000\r\n\r\n\r\n\r\n\r\n\n\n")
        rec.wait_frames(lambda f: f.get("event") == "RPT_RXKEYED")
        with caplog.at_level(logging.WARNING, logger="asterisk_ami"):
            fake.drop()
            rec.wait_for("ami_socket_close")
        assert not [r for r in caplog.records if "inside a frame" in r.getMessage()]
        assert [f["node"] for f in rec.frames if f.get("event") == "RPT_RXKEYED"] == ["2000"]


@pytest.mark.parametrize("line_end", ["\r\n", "\n"], ids=["strict", "lenient"])
def test_an_endless_follows_body_ends_in_frame_too_large(connect: Any, line_end: str) -> None:
    with FakeAsterisk(line_end=line_end) as fake:
        _, rec = connect(fake, max_frame_bytes=1024)
        nl = line_end.encode()
        fake.push_raw(b"Response: Follows" + nl + b"Privilege: Command" + nl)
        blob = (b"out" + nl + nl + b"Event: Swallowed" + nl + nl) * 2000
        fake.push_raw(blob)
        rec.wait_for("ami_socket_close", timeout=10)
        errors = [args[0] for args in rec.args("ami_socket_error")]
        assert len(errors) == 1 and isinstance(errors[0], FrameTooLargeError)
        assert not any(f.get("event") == "Swallowed" for f in rec.frames)
        assert rec.args("ami_socket_close") == [(True,)]
