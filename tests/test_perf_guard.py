"""Regression guard for the hot path, without timing anything: count Python-level function calls.

A Python call per frame (a helper, a per-frame log call, pyee's emit) is what turns 300k frames/s into
150k. These budgets count calls with ``sys.setprofile``, which is deterministic for a given input, so
they fail on a structural slowdown and never on a slow or busy machine. The benchmarks (benchmarks/)
measure the speed itself.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pyee
import pytest

import asterisk_ami
from asterisk_ami import AmiProtocol, AsteriskAmi
from asterisk_ami.protocol import SPEEDUPS
from asterisk_ami.testing import FakeAsterisk, recorded_frames

from .helpers import Recorder, wait_until

CORPUS = (Path(__file__).parent / "data" / "asterisk22-session.bin").read_bytes()
EVENTS = recorded_frames(CORPUS, skip_login=True)


LIBRARY_DIRS = tuple(str(Path(m.__file__).parent) for m in (asterisk_ami, pyee) if m.__file__)


class CallCounter:
    """Counts Python function calls made by the library's (or pyee's) own code, not by C builtins and
    not inside user handlers; optionally only on threads whose name starts with ``thread_prefix``."""

    def __init__(self, thread_prefix: str | None = None) -> None:
        self.calls = 0
        self.by_name: dict[str, int] = {}
        self.prefix = thread_prefix

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        caller = frame.f_back
        if caller is None or not caller.f_code.co_filename.startswith(LIBRARY_DIRS):
            return
        if self.prefix is not None and not threading.current_thread().name.startswith(self.prefix):
            return
        self.calls += 1
        name = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)  # co_qualname: 3.11+
        self.by_name[name] = self.by_name.get(name, 0) + 1


@pytest.mark.parametrize(
    ("speedups", "budget"),
    [
        pytest.param(True, 0.045, marks=pytest.mark.skipif(not SPEEDUPS, reason="the C fast path is not built")),
        (False, 0.1),
    ],
    ids=["c", "python"],
)
def test_parser_makes_almost_no_python_calls_per_frame(speedups: bool, budget: float) -> None:
    stream = EVENTS * 20
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    proto = AmiProtocol(speedups=speedups)
    # meet every header name once, as a live connection does in its first seconds: a name's first
    # frame takes the general parser, which caches it
    proto.receive_data(b"Asterisk Call Manager/11.0.0\r\n" + EVENTS)
    counter = CallCounter()
    frames = 0
    sys.setprofile(counter)
    try:
        for chunk in chunks[1:]:
            frames += len(proto.receive_data(chunk))
    finally:
        sys.setprofile(None)
    assert frames > 5000
    # pure Python today: ~5 calls per 64 KiB chunk (~150 frames), plus one for each frame with a repeated
    # key (~4% of the corpus); with the C fast path, the ~5 per chunk only
    per_frame = counter.calls / frames
    assert per_frame < budget, (per_frame, sorted(counter.by_name.items(), key=lambda kv: -kv[1])[:8])


@pytest.fixture
def profiled_client() -> Iterator[tuple[FakeAsterisk, AsteriskAmi, CallCounter]]:
    with FakeAsterisk(accounts={"admin": "secret"}) as fake:
        counter = CallCounter(thread_prefix="asterisk-ami-")
        threading.setprofile(counter)  # threads started from now on: the client's reader and dispatcher
        ami = AsteriskAmi(host=fake.host, port=fake.port, username="admin", password="secret")
        try:
            yield fake, ami, counter
        finally:
            threading.setprofile(None)  # type: ignore[arg-type]
            ami.destroy()


def calls_per_frame(fake: FakeAsterisk, ami: AsteriskAmi, counter: CallCounter) -> float:
    """Push the corpus 20 times to a logged-in client; the library's Python calls per frame on its
    threads, less the calls of the two handlers that count (the Recorder's and this one's)."""
    received = [0]
    done = threading.Event()
    n = 20 * EVENTS.count(b"\r\n\r\n")

    def on_data(frame: dict[str, Any]) -> None:
        received[0] += 1
        if received[0] == n:
            done.set()

    ami.on("ami_data", on_data)
    before = counter.calls
    fake.push_raw(EVENTS * 20)
    assert done.wait(30), f"{received[0]} of {n} frames"
    return (counter.calls - before - 2 * n) / n


def connected(ami: AsteriskAmi) -> Recorder:
    rec = Recorder(ami)
    ami.connect()
    rec.wait_for("ami_login")
    rec.wait_frames(lambda f: f.get("event") == "FullyBooted")
    return rec


def top_calls(counter: CallCounter) -> list[tuple[str, int]]:
    return sorted(counter.by_name.items(), key=lambda kv: -kv[1])[:12]


def test_delivery_adds_almost_no_python_calls_per_frame(
    profiled_client: tuple[FakeAsterisk, AsteriskAmi, CallCounter],
) -> None:
    fake, ami, counter = profiled_client
    connected(ami)
    # per frame, beyond the handlers' own calls: per batch, a few queue calls. pyee's emit() per frame
    # would add 4 calls a frame.
    per_frame = calls_per_frame(fake, ami, counter)
    assert per_frame < 0.5, (per_frame, top_calls(counter))


def test_live_state_adds_few_python_calls_per_frame(
    profiled_client: tuple[FakeAsterisk, AsteriskAmi, CallCounter],
) -> None:
    """The LiveState's cost per frame on the client's threads, counted: its handler, the model's feed, the
    record update and snapshot of a channel event, and the handlers of the events that have one (about
    4.7 calls a frame over the corpus). The benchmark's lib_live row times it, within the noise of a
    shared machine; this fails on one call more per frame (asking the property ``wants_check`` after
    every frame was one), on a quiet machine or a busy one."""
    from asterisk_ami.live import LiveState

    fake, ami, counter = profiled_client
    live = LiveState(ami)
    connected(ami)
    # the bootstrap lists and the account's read classes come in: the steady state every later frame sees
    wait_until(lambda: live.synced and not live.model.wants_check, what="the live state synced, no check due")
    per_frame = calls_per_frame(fake, ami, counter)
    assert 2.0 <= per_frame < 5.0, (per_frame, top_calls(counter))  # at least its handler and feed: it ran
