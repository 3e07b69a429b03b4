"""Streams from servers in production (E30-E32 of docs/ami-protocol-notes.md), on both parsers, at
every split: frames ending in ``\\r\\n\\n``, banners of other products, runs of blank lines between
frames, and everything the parser holds between reads staying within ``max_frame_bytes``.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from asterisk_ami.errors import FrameTooLargeError, ProtocolError
from asterisk_ami.protocol import AmiProtocol, Frame

pytestmark = pytest.mark.usefixtures("parser_impl")  # every test on both parsers (conftest.py)


CRLF_BANNER = b"Asterisk Call Manager/11.0.0\r\n"
LF_BANNER = b"Asterisk Call Manager/1.1\n"


def at_every_split(data: bytes, **options: Any) -> list[Frame]:
    """The frames of ``data`` fed whole; asserts that every single cut, and one byte at a time, give the
    same frames and leave the same bytes pending."""
    whole = AmiProtocol(**options)
    frames = whole.receive_data(data)
    for cut in range(1, len(data)):
        proto = AmiProtocol(**options)
        got = proto.receive_data(data[:cut]) + proto.receive_data(data[cut:])
        assert got == frames, f"cut at {cut} ({data[:cut][-12:]!r} | {data[cut:][:12]!r})"
        assert proto.pending_bytes == whole.pending_bytes, f"cut at {cut}"
    proto = AmiProtocol(**options)
    bytewise = [frame for i in range(len(data)) for frame in proto.receive_data(data[i : i + 1])]
    assert bytewise == frames
    assert proto.pending_bytes == whole.pending_bytes
    return frames


# -- E30: a frame that ends in \r\n\n ------------------------------------------------------------------

MAP_COMPLETE = b"Event: CoreShowChannelMapComplete\r\nActionID: m1\r\nEventList: Complete\r\nListItems: 2\r\n\n"
PONG = b"Response: Success\r\nActionID: p1\r\nPing: Pong\r\n\r\n"


@pytest.mark.parametrize("banner", [CRLF_BANNER, LF_BANNER], ids=["strict", "lenient"])
def test_a_frame_ending_in_crlf_lf_ends_there(banner: bytes) -> None:
    frames = at_every_split(banner + MAP_COMPLETE + PONG)
    assert frames == [
        {"event": "CoreShowChannelMapComplete", "actionid": "m1", "eventlist": "Complete", "listitems": "2"},
        {"response": "Success", "actionid": "p1", "ping": "Pong"},
    ]


def test_a_frame_ending_in_crlf_lf_is_delivered_before_the_next_frame_arrives() -> None:
    # the list's last event must not wait in the buffer for whatever the server sends next
    proto = AmiProtocol()
    assert proto.receive_data(CRLF_BANNER + MAP_COMPLETE) == [
        {"event": "CoreShowChannelMapComplete", "actionid": "m1", "eventlist": "Complete", "listitems": "2"}
    ]
    assert proto.pending_bytes == 0


@pytest.mark.parametrize("end", [b"\r\n\r\n", b"\r\n\n", b"\n\r\n", b"\n\n"])
def test_every_empty_line_ends_a_frame_whatever_its_line_ends(end: bytes) -> None:
    for banner in (CRLF_BANNER, LF_BANNER):
        frames = at_every_split(banner + b"Event: A\r\nX: 1" + end + b"Event: B" + end)
        assert frames == [{"event": "A", "x": "1"}, {"event": "B"}]


def test_a_lone_cr_is_not_a_line_end() -> None:
    frames = at_every_split(CRLF_BANNER + b"Event: A\r\nValue: a\rb\r\r\n\r\nEvent: B\r\n\r\n")
    assert frames == [{"event": "A", "value": "a\rb\r"}, {"event": "B"}]


# -- E31: banners of other products ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("banner", "version"),
    [
        ("Asterisk Call Manager/11.0.0", "11.0.0"),
        ("Asterisk Call Manager/13.0.0", "13.0.0"),
        ("Asterisk Call Manager Proxy/1.2", "1.2"),
        ("PBX Call Manager/5.0.0", "5.0.0"),
        ("FreePBX Manager Interface/16.0.40/2.1", "2.1"),
        ("Call Manager ready", None),
    ],
)
@pytest.mark.parametrize("line_end", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_the_first_line_that_is_no_header_is_the_banner(banner: str, version: str | None, line_end: bytes) -> None:
    login = b"Response: Success\r\nActionID: l1\r\nMessage: Authentication accepted\r\n\r\n"
    data = banner.encode() + line_end + login.replace(b"\r\n", line_end)
    frames = at_every_split(data)
    assert frames == [{"response": "Success", "actionid": "l1", "message": "Authentication accepted"}]
    proto = AmiProtocol()
    proto.receive_data(data)
    assert proto.banner == banner
    assert proto.protocol_version == version
    assert proto.lenient == (line_end == b"\n")


def test_a_first_line_that_is_a_header_is_no_banner() -> None:
    proto = AmiProtocol()
    frames = proto.receive_data(b"Response: Success\r\nActionID: l1\r\n\r\n")
    assert frames == [{"response": "Success", "actionid": "l1"}]
    assert proto.banner is None and proto.protocol_version is None


def test_blank_lines_before_and_after_the_banner_are_skipped() -> None:
    frames = at_every_split(b"\r\n\r\nPBX Call Manager/5.0.0\r\n\r\n\r\nEvent: A\r\n\r\n")
    assert frames == [{"event": "A"}]
    proto = AmiProtocol()
    proto.receive_data(b"\r\n\r\nPBX Call Manager/5.0.0\r\n\r\n")
    assert proto.banner == "PBX Call Manager/5.0.0"


def test_a_first_line_longer_than_the_limit_fails_and_bounds_memory() -> None:
    proto = AmiProtocol(max_frame_bytes=100)
    with pytest.raises(FrameTooLargeError):
        for _ in range(20):
            proto.receive_data(b"x" * 10)
    assert proto.pending_bytes == 0


# -- E32: runs of blank lines between frames ------------------------------------------------------------


@pytest.mark.parametrize("run", [b"\r\n" * 5, b"\n" * 5, b"\r\n\n\r\n\n", b"\n\r\n\r\n\n"])
@pytest.mark.parametrize("banner", [CRLF_BANNER, LF_BANNER], ids=["strict", "lenient"])
def test_runs_of_blank_lines_between_frames_are_skipped(run: bytes, banner: bytes) -> None:
    data = banner + run + b"Event: A\r\n\r\n" + run + b"Event: B\r\n\r\n" + run
    assert at_every_split(data) == [{"event": "A"}, {"event": "B"}]


@pytest.mark.parametrize("cut", range(1, 8))
def test_blank_lines_are_never_pending_bytes(cut: int) -> None:
    # a close right after them must not look like a frame cut short
    proto = AmiProtocol()
    data = CRLF_BANNER + b"Event: RPT_RXKEYED\r\nNode: 2000\r\n\r\n" + b"\r\n" * 3 + b"\n\n"
    proto.receive_data(data[:-cut])
    proto.receive_data(data[-cut:])
    assert proto.pending_bytes == 0


# -- E13 in both modes: Follows bodies, with and without their marker -----------------------------------------


@pytest.mark.parametrize("banner", [CRLF_BANNER, LF_BANNER], ids=["strict", "lenient"])
@pytest.mark.parametrize("blank", [b"\n\n", b"\r\n\r\n", b"\n\r\n", b"\r\n\n"])
def test_a_follows_body_runs_over_blank_lines_to_its_marker(banner: bytes, blank: bytes) -> None:
    body = b"Context 'default':" + blank + b"  '100' => 1. NoOp()\n--END COMMAND--"
    data = banner + b"Response: Follows\r\nPrivilege: Command\r\nActionID: 9\r\n" + body + b"\r\n\r\nEvent: X\r\n\r\n"
    frames = at_every_split(data)
    assert frames == [
        {
            "response": "Follows",
            "privilege": "Command",
            "actionid": "9",
            "output": ["Context 'default':", "", "  '100' => 1. NoOp()"],
        },
        {"event": "X"},
    ]


@pytest.mark.parametrize("banner", [CRLF_BANNER, LF_BANNER], ids=["strict", "lenient"])
def test_a_follows_body_without_its_marker_holds_later_frames_until_it_comes(banner: bytes) -> None:
    head = banner + b"Event: Before\r\n\r\nResponse: Follows\r\nPrivilege: Command\r\nline 1\n\nline 2\n"
    proto = AmiProtocol()
    assert proto.receive_data(head + b"\r\n\r\nEvent: Held\r\n\r\n") == [{"event": "Before"}]
    assert proto.pending_bytes > 0
    frames = proto.receive_data(b"--END COMMAND--\r\n\r\n")
    assert [f.get("output") or f.get("event") for f in frames] == [["line 1", "", "line 2", "", "", "Event: Held", ""]]


@pytest.mark.parametrize("banner", [CRLF_BANNER, LF_BANNER], ids=["strict", "lenient"])
@pytest.mark.parametrize("piece", [b"out\n\n", b"out\r\n\r\nEvent: X\r\n\r\n"], ids=["lines", "frames"])
def test_an_endless_follows_body_fails_at_the_frame_limit_with_memory_bounded(banner: bytes, piece: bytes) -> None:
    # the body is held in the buffer that max_frame_bytes checks, exactly like an endless frame
    proto = AmiProtocol(max_frame_bytes=1024)
    proto.receive_data(banner + b"Response: Follows\r\nPrivilege: Command\r\n")
    delivered: list[Frame] = []
    with pytest.raises(FrameTooLargeError):
        for _ in range(3 * 1024 * 1024 // len(piece)):  # 3 MB
            delivered += proto.receive_data(piece)
            assert proto.pending_bytes <= 1024
    assert delivered == []
    assert proto.pending_bytes == 0
    with pytest.raises(ProtocolError):
        proto.receive_data(b"Event: After\r\n\r\n")


def test_the_marker_search_resumes_where_it_stopped() -> None:
    # a big body fed in small reads is scanned once, not once per read
    proto = AmiProtocol()
    proto.receive_data(CRLF_BANNER + b"Response: Follows\r\nPrivilege: Command\r\n")
    for i in range(20000):
        assert proto.receive_data(b"line %d\n\n" % i) == []
    [frame] = proto.receive_data(b"--END COMMAND--\r\n\r\n")
    assert len(frame["output"]) == 40000


# -- what else the parser keeps between reads -----------------------------------------------------------


def test_header_names_a_server_invents_cost_bounded_memory() -> None:
    # the name cache must not keep thousands of long names alive (a 1 KB name per frame here)
    proto = AmiProtocol()
    proto.receive_data(CRLF_BANNER)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            proto.receive_data(b"Event: X\r\n" + b"N%04d" % i + b"n" * 1000 + b": v\r\n\r\n")
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 512 * 1024, f"{held} bytes held after 2,000 distinct 1 KB header names"
