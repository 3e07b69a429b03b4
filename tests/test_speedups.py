"""The optional C fast path (asterisk_ami/_speedups.c) gives exactly the frames of the pure-Python parser.

tests/test_protocol.py runs every protocol rule on both; here: the C function's own edges (its name
table, text it must hand back), random streams compared frame for frame, and threads sharing the table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asterisk_ami import protocol
from asterisk_ami.errors import ProtocolError
from asterisk_ami.protocol import AmiProtocol, Frame

CORPUS = (Path(__file__).parent / "data" / "asterisk22-session.bin").read_bytes()
ROOT = Path(__file__).resolve().parent.parent
FOLLOWS = "Response: Follows"


def test_built_wherever_ci_runs() -> None:
    # the throughput target depends on it: a silently failed compile must not pass CI
    if not os.environ.get("CI") or os.environ.get("ASTERISK_AMI_PURE_PYTHON"):
        pytest.skip("only required in CI")
    assert protocol.SPEEDUPS, "asterisk_ami._speedups did not build: is gcc or Python.h missing?"


needs_c = pytest.mark.skipif(not protocol.SPEEDUPS, reason="the C fast path is not built")


def both(data: bytes | list[bytes], **kwargs: Any) -> list[Frame]:
    """Feed the same reads to both parsers; assert they agree (frames or the same error); the frames."""
    chunks = [data] if isinstance(data, bytes) else data
    results = []
    for speedups in (True, False):
        proto = AmiProtocol(speedups=speedups, **kwargs)
        frames: list[Frame] = []
        try:
            for chunk in chunks:
                frames.extend(proto.receive_data(chunk))
        except ProtocolError as exc:
            results.append((frames, type(exc)))
        else:
            results.append((frames, None))
    assert results[0] == results[1], f"C: {results[0]!r}\nPython: {results[1]!r}"
    return results[0][0]


def c_calls(proto: AmiProtocol) -> list[object]:
    """Record what the C function returns for this parser."""
    seen: list[object] = []
    real = proto._c_parse
    assert real is not None

    def spy(*args: Any) -> Any:
        result = real(*args)
        seen.append(result)
        return result

    proto._c_parse = spy
    return seen


@needs_c
def test_the_recorded_session_goes_through_c_and_matches() -> None:
    proto = AmiProtocol()
    seen = c_calls(proto)
    fast = proto.receive_data(CORPUS)
    assert seen and all(result is not None for result in seen)
    assert fast == AmiProtocol(speedups=False).receive_data(CORPUS)
    assert len(fast) > 100


@needs_c
def test_parse_simple_hands_back_what_it_cannot_take() -> None:
    from asterisk_ami._speedups import parse_simple

    keys = {"Event": "event", "Channel": "channel", "Response": "response"}
    items, slow = parse_simple("Event: A\r\nChannel: x\r\n\r\nNew: y\r\n\r\nraw line", keys, FOLLOWS)  # type: ignore[misc]
    assert items == [{"event": "A", "channel": "x"}, "New: y", "raw line"] and slow == 2
    body = "Response: Follows\r\nbody\r\n--END COMMAND--"
    assert parse_simple(body, keys, FOLLOWS) == ([body], 1)
    assert parse_simple("Event: A\nChannel: x", keys, FOLLOWS) is None  # bare LF: the Python parser decides
    assert parse_simple("Event: \u20ac", keys, FOLLOWS) is None  # not one byte per character
    items, slow = parse_simple("Event: caf\u00e9\r\nEvent: B", keys, FOLLOWS)  # type: ignore[misc]
    assert items == [{"event": ["caf\u00e9", "B"]}] and slow == 0
    items, slow = parse_simple("", keys, FOLLOWS)  # type: ignore[misc]
    assert items == [""] and slow == 1
    with pytest.raises(TypeError):
        parse_simple(b"Event: A", keys, FOLLOWS)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        parse_simple("Never-Cached-Name: A", {"Never-Cached-Name": 1}, FOLLOWS)  # type: ignore[dict-item]


def test_follows_bodies_and_bare_lf_streams_agree() -> None:
    both(b"Response: Follows\r\nPrivilege: Command\r\nline 1\nline 2\n--END COMMAND--\r\n\r\n")
    both(b"Event: A\r\nChannel: x\nChannel: y\r\n\r\nEvent: B\r\n\r\n")
    both(b"Response: Follows\r\nResponse: Follows\r\n\r\n")


def in_fresh_process(check: str) -> None:
    """Run ``check`` (a function of this module) in a new interpreter. It fills the C name table, which
    lives as long as the process: in this one, later tests (tests/test_perf_guard.py) would find it full
    and their frames on the Python path."""
    done = subprocess.run(
        [sys.executable, "-c", f"from tests.test_speedups import {check}; {check}()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


@needs_c
def test_many_distinct_names_and_long_names_agree() -> None:
    in_fresh_process("check_many_distinct_names_and_long_names")


@needs_c
def test_threads_sharing_the_name_table_get_their_own_frames() -> None:
    in_fresh_process("check_threads_sharing_the_name_table")


@needs_c
def test_values_of_few_valued_headers_are_shared_and_a_flood_of_them_still_agrees() -> None:
    in_fresh_process("check_shared_values")


def check_shared_values() -> None:
    data = b"Event: Newstate\r\nChannelState: Up\r\nChannel: PJSIP/a\r\n\r\n" * 2
    proto = AmiProtocol()
    proto.receive_data(data)  # names met for the first time: the Python parser takes them, and learns them
    first, second = proto.receive_data(data)
    # one str per Event (and ChannelState) value, its hash computed once; other values are their own
    assert first["event"] is second["event"] and first["channelstate"] is second["channelstate"]
    assert first["channel"] == second["channel"] and first["channel"] is not second["channel"]
    # more distinct values than the C table keeps, values either side of its 48-byte limit, repeats
    events = [f"Flood{i}" for i in range(2000)] + ["E" * 47, "E" * 48, "E" * 49, "E" * 400]
    stream = b"".join(f"Event: {e}\r\nPrivilege: p{i % 7}\r\nEvent: {e}\r\n\r\n".encode() for i, e in enumerate(events))
    got = both([stream, stream])
    assert len(got) == 2 * len(events)
    assert got[-1] == {"event": ["E" * 400, "E" * 400], "privilege": f"p{(len(events) - 1) % 7}"}


def check_many_distinct_names_and_long_names() -> None:
    # more names than the C table keeps, and names either side of its 48-byte limit
    names = [f"X-Header-{i}" for i in range(2000)] + ["N" * 47, "N" * 48, "N" * 49, "N" * 400]
    frames = [f"Event: Many\r\n{name}: {i}\r\n{name}: again\r\n\r\n".encode() for i, name in enumerate(names)]
    stream = b"".join(frames)
    got = both([stream, stream])  # the second pass finds every name cached
    assert len(got) == 2 * len(names)
    assert got[-1] == {"event": "Many", "n" * 400: ["2003", "again"]}


def check_threads_sharing_the_name_table() -> None:
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            for round_ in range(30):
                data = b"".join(f"Event: T{n}\r\nKey-{n}-{i % 300}: {round_}\r\n\r\n".encode() for i in range(50))
                frames = AmiProtocol().receive_data(data)
                assert frames == AmiProtocol(speedups=False).receive_data(data)
                assert {f["event"] for f in frames} == {f"T{n}"}
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures


_NAMES = ["Event", "Channel", "Variable", "ActionID", "Response", "X", "Key", "Ké", "A:b", " Event", "Event ", ""]
_CR_LED = ["\rResponse", "\r", "\r\rEvent"]  # the fast paths once disagreed on these (see the test below)
_names = st.sampled_from([*_NAMES, "N" * 49, *_CR_LED])
_values = st.text(alphabet=st.sampled_from(list("ab: \r\n\té\u20acZ")), max_size=12)
_seps = st.sampled_from([": ", ":", ": : ", "", " : "])
_line = st.tuples(_names, _seps, _values).map(lambda t: "".join(t))
_line_end = st.sampled_from(["\r\n", "\r\n", "\r\n", "\n"])  # mostly CRLF; a bare LF now and then
_frame = st.lists(st.tuples(_line, _line_end), min_size=0, max_size=6).map(
    lambda lines: "".join(line + end for line, end in lines)[:-1]
)
# pre-14 Command output: bare-LF body lines (blank ones too), with or without the marker
_follows = st.tuples(
    st.sampled_from(["Response: Follows\r\nPrivilege: Command\r\n", "Response: Follows\n", "\rResponse: Follows\r\n"]),
    st.lists(st.sampled_from(["line", "", "a: b", "Event: X", "\r"]), max_size=5).map("\n".join),
    st.sampled_from(["\n--END COMMAND--", "--END COMMAND--", " --END COMMAND--", ""]),
).map("".join)
# the empty line that ends a frame: CRLF or a bare LF (E30), after a CRLF or LF line end, in runs (E32)
_ends = st.sampled_from(["\r\n\r\n", "\r\n\n", "\n\r\n", "\n\n", "\r\n\r\n\r\n\r\n", "\n\n\n", "\r\n"])
_banners = st.sampled_from(
    [
        "",
        "Asterisk Call Manager/11.0.0\r\n",
        "Asterisk Call Manager/1.1\n",
        "Asterisk Call Manager Proxy/1.2\r\n",
        "PBX Call Manager/5.0.0\n",
        "\r\n\r\nPBX Call Manager/5.0.0\r\n\r\n",
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(_frame, _frame, _frame, _follows), _ends), max_size=8),
    st.lists(st.integers(min_value=1, max_value=400), max_size=6),
    _banners,
)
def test_random_streams_give_the_same_frames_on_both_parsers(
    frames: list[tuple[str, str]], cuts: list[int], banner: str
) -> None:
    """Both parsers agree on random streams cut at random places, and give what one whole read gives."""
    data = (banner + "".join(body + end for body, end in frames)).encode("utf-8")
    chunks, pos = [], 0
    for cut in sorted(set(cuts)):
        chunks.append(data[pos:cut])
        pos = max(pos, cut)
    chunks.append(data[pos:])
    for encoding in ("utf-8", "latin-1"):
        chunked = both(chunks, encoding=encoding, max_frame_bytes=4096)
        whole = both(data, encoding=encoding, max_frame_bytes=4096)
        assert chunked == whole


def test_a_piece_starting_with_cr_parses_the_same_whatever_names_were_seen_before() -> None:
    # Found in review: the general parser strips CR/LF at the start of a piece, so a fast path that took
    # "\rResponse" as a cached name gave other frames than a fresh parser, depending on history (other
    # connections included, through the C name table), on name length (> 48 bytes) and on line count.
    AmiProtocol().receive_data(b"Raw\r\n\rResponse: x\r\n\r\n\rResponse: y\r\n\r\n\r: z\r\n\r\n")  # primes the table
    assert both(b"\rResponse: Follows\r\n--END COMMAND--\r\n\r\n") == [{"response": "Follows", "output": []}]
    # (after a banner: as a connection's first line, ": Follows" would be its banner, E31)
    assert both(b"Asterisk Call Manager/11.0.0\r\n\r: Follows\r\n\r\n") == [{"raw": ": Follows"}]
    long = b"\r" * 41 + b"Response"  # a name over the C table's 48 bytes
    both([b"Raw\r\n" + long + b": x\r\n\r\n" + long + b": Follows\r\n\r\n"])
    both([b"Raw\r\n\rResponse: x\r\nA: b\r\n\r\n", b"\rResponse: Follows" + b"\r\nA: b" * 128 + b"\r\n\r\n"])
