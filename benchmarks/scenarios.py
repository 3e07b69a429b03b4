"""One benchmark scenario per process: ``python benchmarks/scenarios.py NAME [options]``.

run.py starts each scenario in its own process, so the peak RSS it reports (``ru_maxrss``) belongs to
that scenario alone and no client shares a GIL with the server. The last stdout line is
``RESULT {json}``. Throughput is counted where a user would count it: in the event callback, from the
first frame to the last (connection setup and login are not timed); rate = (frames - 1) / seconds.

Scenarios:

* ``baseline``: the issue's bare loop, no library: recv(65536), split on CRLFCRLF, decode, one dict per
  frame with ``k.lower()`` keys. The reference every ratio is taken against.
* ``lib``: ``AsteriskAmi`` through its public API: ``ami.on('ami_data', handler)`` (``--identifier``).
* ``scale``: ``--clients`` AsteriskAmi clients in this one process, each to its own connection.
* ``panoramisk``: panoramisk's asyncio ``Manager`` with ``register_event('*', callback)``.
* ``pypi_ami``: asterisk-ami 0.1.7 from PyPI (``asterisk.ami.AMIClient.add_event_listener``), loaded
  from ``--vendor``; the project's ``asterisk_ami`` is made unimportable in this process.
* ``parser_baseline`` / ``parser_lib``: bytes -> frames in memory, 64 KiB chunks, no sockets.
* ``ping_bare`` / ``ping_lib``: Ping round trips, a raw socket vs ``ami.request({'Action': 'Ping'})``.
"""

from __future__ import annotations

import argparse
import functools
import math
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    DEFAULT_CORPUS,
    SECRET,
    TERM,
    USERNAME,
    bare_loop,
    corpus_events,
    emit_result,
    event_stream,
    percentiles,
    rss_now_mb,
    rss_peak_mb,
    scale_result,
)
from scenarios_asyncio import SCENARIOS as ASYNCIO_SCENARIOS
from scenarios_live import SCENARIOS as LIVE_SCENARIOS

RECV = 65536
PARSER_BLOB_EVENTS = 24_000  # ~10 MB of events fed over and over to the in-memory parsers


class _EventCounter:
    """A third-party client's event callback: counts events, times the first and the ``target``-th,
    and calls ``on_done`` at the target."""

    def __init__(self, target: int, on_done: Callable[[], object]) -> None:
        self.target = target
        self.on_done = on_done
        self.count = 0
        self.t0 = self.t1 = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.count += 1
        if self.count == 1:
            self.t0 = time.perf_counter()
        elif self.count >= self.target:
            self.t1 = time.perf_counter()
            self.on_done()

    def stop_clock(self) -> None:
        """End the timing now if the target was never reached (timeout, closed connection)."""
        if not self.t1:
            self.t1 = time.perf_counter()

    def result(self, **extra: object) -> dict[str, object]:
        return _throughput(self.count, self.t0, self.t1, complete=self.count >= self.target, **extra)


def _throughput(frames: int, t0: float, t1: float, **extra: object) -> dict[str, object]:
    seconds = max(t1 - t0, 1e-9)
    rate = (frames - 1) / seconds if frames > 1 else 0.0
    return {"frames": frames, "seconds": round(seconds, 4), "rate": round(rate, 1), **extra}


# -- bare socket helpers ------------------------------------------------------------------------------


def _bare_connect(host: str, port: int, username: str, secret: str, events: str) -> tuple[socket.socket, bytes]:
    """Connect, read the banner, send Login; returns the socket and bytes read after the banner."""
    sock = socket.create_connection((host, port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    while b"\n" not in buf:
        data = sock.recv(RECV)
        if not data:
            raise ConnectionError("closed before the banner")
        buf += data
    buf = buf[buf.find(b"\n") + 1 :]
    login = f"Action: Login\r\nActionID: login\r\nUsername: {username}\r\nSecret: {secret}\r\nEvents: {events}\r\n\r\n"
    sock.sendall(login.encode())
    return sock, buf


def _read_until_response(sock: socket.socket, buf: bytes, marker: bytes) -> bytes:
    """Read frames until one contains ``marker`` (an ActionID line); returns the bytes after it."""
    while True:
        end = buf.find(TERM)
        while end >= 0:
            frame, buf = buf[:end], buf[end + 4 :]
            if marker in frame:
                return buf
            end = buf.find(TERM)
        data = sock.recv(RECV)
        if not data:
            raise ConnectionError("closed while waiting for a response")
        buf += data


# -- throughput over a socket ----------------------------------------------------------------------------


def scenario_baseline(args: argparse.Namespace) -> dict[str, object]:
    sock, buf = _bare_connect(args.host, args.port, USERNAME, SECRET, "on")
    target = args.events + 1  # the login response, then the events
    try:
        count, t0, t1 = bare_loop(functools.partial(sock.recv, RECV), buf, target)
    finally:
        sock.close()
    return _throughput(count, t0, t1, complete=count >= target)


def _profiled_threads() -> list[tuple[str, Any]]:
    """Profile every thread started from now on (the library's reader and dispatch threads)."""
    import cProfile

    profiles: list[tuple[str, cProfile.Profile]] = []
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profiles.append((self.name, profile))
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    return profiles


def _profile_report(profiles: list[tuple[str, Any]], top: int = 10) -> str:
    """Top ``top`` functions by own time, per thread (blocking calls count their waiting time)."""
    import io
    import pstats

    out = io.StringIO()
    for name, profile in profiles:
        stats = pstats.Stats(profile, stream=out)
        if stats.total_tt < 0.05:  # type: ignore[attr-defined]
            continue
        out.write(f"--- thread {name}\n")
        stats.sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    return "\n".join(line for line in text.splitlines() if line.strip() and "Ordered by" not in line)


Sample = tuple[int, float, int, int]


def _sampler(
    ami: Any, progress: Callable[[], int], stop: threading.Event, interval: float
) -> tuple[threading.Thread, list[Sample]]:
    """Every ``interval`` s: (frames so far, RSS MB, frames waiting for the dispatch thread, pymalloc blocks)."""
    samples: list[Sample] = []

    def run() -> None:
        while not stop.wait(interval):
            queued = int(ami.stats.get("queued_frames", -1))
            samples.append((progress(), rss_now_mb(), queued, sys.getallocatedblocks()))

    thread = threading.Thread(target=run, name="rss-sampler", daemon=True)
    thread.start()
    return thread, samples


def _memory_summary(samples: list[Sample], target: int) -> dict[str, object]:
    """RSS and leak indicators over the stream.

    ``rss_growth_mb``: the highest RSS in the second half minus the highest RSS between 10 % and 50 %.
    It also rises when the reader runs ahead of the handler late in the run (up to ``max_queued_frames``
    parsed frames wait in memory; freed arenas are not always given back to the OS), so the leak test is
    ``blocks_growth_per_event``: pymalloc blocks in use (``sys.getallocatedblocks``), the lowest reading
    of the second half minus the lowest of 10-50 % (the lowest: frames waiting in the queue add blocks
    for a moment), per event in between. A leak of one object per event shows as ~1; a bounded working
    set as ~0.
    """
    warm = [s for s in samples if target * 0.1 <= s[0] < target * 0.5]
    late = [s for s in samples if s[0] >= target * 0.5]
    out: dict[str, object] = {
        "samples": len(samples),
        "queued_frames_max": max((s[2] for s in samples), default=-1),
        "rss_sampled_max_mb": round(max((s[1] for s in samples), default=0.0), 1),
    }
    if warm and late:
        out["rss_warm_max_mb"] = round(max(s[1] for s in warm), 1)
        out["rss_late_max_mb"] = round(max(s[1] for s in late), 1)
        out["rss_growth_mb"] = round(max(s[1] for s in late) - max(s[1] for s in warm), 1)
        w, lt = min(warm, key=lambda s: s[3]), min(late, key=lambda s: s[3])
        out["blocks_warm"] = w[3]
        out["blocks_late"] = lt[3]
        out["blocks_growth_per_event"] = round((lt[3] - w[3]) / max(1, lt[0] - w[0]), 4)
    step = max(1, len(samples) // 10)
    out["timeline"] = [[n, round(rss, 1), q, blocks] for n, rss, q, blocks in samples[::step]]
    return out


def scenario_lib(args: argparse.Namespace) -> dict[str, object]:
    profiles = _profiled_threads() if args.profile else None
    from asterisk_ami import AsteriskAmi

    ami = AsteriskAmi(
        host=args.host, port=args.port, username=USERNAME, password=SECRET, identifier=args.identifier or None
    )
    live = None
    if args.live:  # the live state attached, before the ami_data handler that counts
        from asterisk_ami.live import LiveState

        live = LiveState(ami)
    target = args.events + 1
    mark = max(2, target // 10)
    done = threading.Event()
    count = 0
    t0 = t1 = 0.0
    rss_warm = 0.0
    last: dict[str, Any] = {}

    def on_data(frame: dict[str, Any]) -> None:
        nonlocal count, t0, t1, rss_warm, last
        count += 1
        if count == 1:
            t0 = time.perf_counter()
        elif count == mark:
            rss_warm = rss_now_mb()
        elif count >= target:
            t1 = time.perf_counter()
            last = frame
            done.set()

    ami.on("ami_data", on_data)
    ami.on("ami_socket_close", lambda *_: done.set())
    stop_sampling = threading.Event()
    sampler = _sampler(ami, lambda: count, stop_sampling, args.sample) if args.sample else None
    ami.connect()
    finished = done.wait(args.timeout)
    if not t1:
        t1 = time.perf_counter()
    rss_end = rss_now_mb()
    stop_sampling.set()
    ami.destroy()
    from asterisk_ami.protocol import SPEEDUPS

    extra: dict[str, object] = {
        "speedups": SPEEDUPS,
        "complete": finished and count >= target,
        "rss_10pct_mb": round(rss_warm, 1),
        "rss_end_mb": round(rss_end, 1),
        "identifier_seen": last.get("identifier"),
        "peak_rss_mb": round(rss_peak_mb(), 1),
    }
    if live is not None:  # proof the model did its work, not just sat attached
        extra["live_channels"] = len(live.channels)
        extra["live_synced"] = live.synced
    extra["queue_high_water_frames"] = ami.stats["queue_high_water"]
    if sampler is not None:
        sampler[0].join()
        extra.update(_memory_summary(sampler[1], target))
    if profiles:
        extra["profile"] = _profile_report(profiles)
    return _throughput(count, t0, t1, **extra)


def scenario_scale(args: argparse.Namespace) -> dict[str, object]:
    from asterisk_ami import AsteriskAmi

    target = args.events + 1
    lock = threading.Lock()
    remaining = args.clients
    all_done = threading.Event()
    counts = [0] * args.clients
    first = [0.0]
    t_end = [0.0]
    clients: list[AsteriskAmi] = []
    lost: set[int] = set()

    def make_handler(i: int) -> Callable[[dict[str, Any]], None]:
        def on_data(frame: dict[str, Any]) -> None:
            nonlocal remaining
            n = counts[i] = counts[i] + 1
            if n == 1:
                with lock:
                    if not first[0]:
                        first[0] = time.perf_counter()
            elif n == target:
                with lock:
                    remaining -= 1
                    if remaining == 0:
                        t_end[0] = time.perf_counter()
                        all_done.set()

        return on_data

    def make_close_handler(i: int) -> Callable[..., None]:
        def on_close(*_: object) -> None:  # a connection lost early must not leave the run waiting
            nonlocal remaining
            with lock:
                if counts[i] < target and i not in lost:
                    lost.add(i)
                    remaining -= 1
                    if remaining <= 0:
                        all_done.set()

        return on_close

    peak_threads = threading.active_count()
    try:
        for i in range(args.clients):
            ami = AsteriskAmi(host=args.host, port=args.port, username=USERNAME, password=SECRET)
            ami.on("ami_data", make_handler(i))
            ami.on("ami_socket_close", make_close_handler(i))
            clients.append(ami)
        for ami in clients:
            ami.connect()
        deadline = time.monotonic() + args.timeout
        while not all_done.wait(0.02) and time.monotonic() < deadline:
            peak_threads = max(peak_threads, threading.active_count())
        peak_threads = max(peak_threads, threading.active_count())
        t1 = t_end[0] or time.perf_counter()
    finally:
        for ami in clients:
            ami.destroy(timeout=1.0)
    result = scale_result(counts, target, t1 - first[0], lost_connections=len(lost), peak_threads=peak_threads)
    result["complete"] = result["complete"] and not lost
    return result


def _dist_version(name: str, paths: list[str] | None) -> str:
    """The version of distribution ``name``, looked up in ``paths`` first (the vendor directories)."""
    from importlib import metadata

    for dist in metadata.distributions(name=name, path=[*(paths or []), *sys.path]):
        return str(dist.version)
    return "?"


def scenario_panoramisk(args: argparse.Namespace) -> dict[str, object]:
    import asyncio

    for vendor in args.vendor or []:
        sys.path.insert(0, vendor)
    import panoramisk
    from panoramisk import Manager

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    on_event = _EventCounter(args.events, loop.stop)
    manager = Manager(
        loop=loop,
        host=args.host,
        port=args.port,
        username=USERNAME,
        secret=SECRET,
        ping_delay=3600,
        ping_interval=3600,
        reconnect_timeout=3600,
        on_disconnect=lambda *_: loop.stop(),
    )
    manager.register_event("*", on_event)
    manager.connect()
    timer = loop.call_later(args.timeout, loop.stop)
    loop.run_forever()
    timer.cancel()
    on_event.stop_clock()
    manager.close()
    loop.run_until_complete(asyncio.sleep(0))
    version = _dist_version("panoramisk", args.vendor) or getattr(panoramisk, "__version__", "?")
    return on_event.result(version=version)


def scenario_pypi_ami(args: argparse.Namespace) -> dict[str, object]:
    sys.modules["asterisk_ami"] = None  # type: ignore[assignment]  # the project's package must not be used
    for vendor in args.vendor or []:
        sys.path.insert(0, vendor)
    from asterisk.ami import AMIClient

    done = threading.Event()
    on_event = _EventCounter(args.events, done.set)
    client = AMIClient(address=args.host, port=args.port)  # its defaults: 1 KiB recv, 3 s socket timeout
    client.add_event_listener(on_event)
    client.add_listener(on_disconnect=lambda *_, **__: done.set())
    client.login(username=USERNAME, secret=SECRET)
    done.wait(args.timeout)
    on_event.stop_clock()
    client.logoff()  # the server answers Goodbye and closes: the reader thread ends
    client.disconnect()
    module_file = str(getattr(sys.modules["asterisk.ami"], "__file__", "?"))
    version = _dist_version("asterisk-ami", args.vendor)
    return on_event.result(version=version, module_file=module_file)


# -- parser alone, in memory -----------------------------------------------------------------------------


def _chunks(args: argparse.Namespace) -> tuple[list[bytes], int, int]:
    """~10 MB of corpus events cut in 64 KiB chunks; and how many frames and bytes one pass holds."""
    events = corpus_events(args.corpus)
    per_pass = min(args.events, PARSER_BLOB_EVENTS)
    blob = event_stream(events, per_pass)
    view = memoryview(blob)
    return [bytes(view[i : i + RECV]) for i in range(0, len(blob), RECV)], per_pass, len(blob)


def _parser_result(frames: int, nbytes: int, seconds: float, passes: int) -> dict[str, object]:
    return {
        "frames": frames,
        "seconds": round(seconds, 4),
        "rate": round(frames / seconds, 1),
        "mb_per_s": round(nbytes / seconds / 1e6, 1),
        "passes": passes,
    }


def scenario_parser_baseline(args: argparse.Namespace) -> dict[str, object]:
    chunks, per_pass, nbytes = _chunks(args)
    passes = max(1, args.events // per_pass)
    frames = 0
    t0 = time.perf_counter()
    for _ in range(passes):
        frames += bare_loop(functools.partial(next, iter(chunks), b""), b"", math.inf)[0]
    seconds = time.perf_counter() - t0
    assert frames == passes * per_pass, (frames, passes * per_pass)
    return _parser_result(frames, nbytes * passes, seconds, passes)


def scenario_parser_lib(args: argparse.Namespace) -> dict[str, object]:
    from asterisk_ami.protocol import AmiProtocol

    chunks, per_pass, nbytes = _chunks(args)
    passes = max(1, args.events // per_pass)
    frames = 0
    proto = AmiProtocol()
    proto.receive_data(b"Asterisk Call Manager/11.0.0\r\n")
    receive = proto.receive_data
    t0 = time.perf_counter()
    for _ in range(passes):
        for data in chunks:
            frames += len(receive(data))
    seconds = time.perf_counter() - t0
    assert frames == passes * per_pass, (frames, passes * per_pass)
    from asterisk_ami.protocol import SPEEDUPS

    return _parser_result(frames, nbytes * passes, seconds, passes) | {"speedups": SPEEDUPS}


# -- latency ---------------------------------------------------------------------------------------------


def scenario_ping_bare(args: argparse.Namespace) -> dict[str, object]:
    sock, buf = _bare_connect(args.host, args.port, args.username, args.secret, "off")
    samples: list[int] = []
    try:
        buf = _read_until_response(sock, buf, b"ActionID: login\r\n")
        for i in range(args.warmup + args.pings):
            t0 = time.perf_counter_ns()
            sock.sendall(b"Action: Ping\r\nActionID: p%d\r\n\r\n" % i)
            buf = _read_until_response(sock, buf, b"ActionID: p%d\r\n" % i)
            if i >= args.warmup:
                samples.append(time.perf_counter_ns() - t0)
        sock.sendall(b"Action: Logoff\r\n\r\n")
    finally:
        sock.close()
    return percentiles(samples)


def scenario_ping_lib(args: argparse.Namespace) -> dict[str, object]:
    from asterisk_ami import AsteriskAmi

    ami = AsteriskAmi(host=args.host, port=args.port, username=args.username, password=args.secret, events=False)
    logged_in = threading.Event()
    ami.on("ami_login", lambda ok, frame: logged_in.set())
    ami.connect()
    samples: list[int] = []
    try:
        if not logged_in.wait(30) or not ami.connected:
            raise ConnectionError("login failed")
        request = ami.request
        ping = {"Action": "Ping"}
        for i in range(args.warmup + args.pings):
            t0 = time.perf_counter_ns()
            request(ping)
            if i >= args.warmup:
                samples.append(time.perf_counter_ns() - t0)
    finally:
        ami.disconnect(timeout=2.0)
    return percentiles(samples)


SCENARIOS: dict[str, Callable[[argparse.Namespace], dict[str, object]]] = {
    "baseline": scenario_baseline,
    "lib": scenario_lib,
    "scale": scenario_scale,
    "panoramisk": scenario_panoramisk,
    "pypi_ami": scenario_pypi_ami,
    "parser_baseline": scenario_parser_baseline,
    "parser_lib": scenario_parser_lib,
    "ping_bare": scenario_ping_bare,
    "ping_lib": scenario_ping_lib,
    **ASYNCIO_SCENARIOS,
    **LIVE_SCENARIOS,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--username", default=USERNAME)
    parser.add_argument("--secret", default=SECRET)
    parser.add_argument("--events", type=int, default=100_000, help="events per connection")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--identifier", default="")
    parser.add_argument("--live", action="store_true", help="lib: attach a LiveState to the client")
    parser.add_argument("--channels", type=int, default=1000, help="live_memory: concurrent channels")
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--vendor", action="append", help="a directory to put first on sys.path")
    parser.add_argument("--profile", action="store_true", help="cProfile every thread (lib scenario)")
    parser.add_argument("--stream", action="store_true", help="lib_asyncio: count in async for ami.events()")
    parser.add_argument("--sample", type=float, default=0.0, help="sample RSS every SECONDS (lib scenario)")
    args = parser.parse_args()
    result = SCENARIOS[args.scenario](args)
    emit_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
