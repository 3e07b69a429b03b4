"""Shared helpers for the benchmarks: the event corpus, the baseline parser, memory readings.

This module imports nothing from ``asterisk_ami`` on purpose: the scenario for the PyPI ``asterisk-ami``
runs in a process where the project's package must not be importable.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DEFAULT_CORPUS = ROOT / "tests" / "data" / "asterisk22-session.bin"
VENDOR_DIR = BENCH_DIR / ".vendor"
TERM = b"\r\n\r\n"
USERNAME = "admin"
SECRET = "secret"
PASSWORD_ACCOUNTS = {USERNAME: SECRET}
BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def corpus_events(path: Path | str = DEFAULT_CORPUS) -> list[bytes]:
    """Every event frame of a recorded server stream, each with its terminating empty line.

    The banner line, responses and command output are left out: a firehose is events only.
    """
    data = Path(path).read_bytes()
    if data.startswith(b"Asterisk Call Manager"):
        data = data[data.find(b"\n") + 1 :]
    return [piece + TERM for piece in data.split(TERM) if piece.startswith(b"Event: ")]


def event_stream(events: list[bytes], count: int) -> bytes:
    """``count`` events, cycling through the corpus (in memory; for the parser-alone rows)."""
    blob = b"".join(events)
    full, rest = divmod(count, len(events))
    return blob * full + b"".join(events[:rest])


def rss_now_mb() -> float:
    """Resident set size of this process now, in MB (Linux /proc; 0.0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def rss_peak_mb() -> float:
    """Peak resident set size of this process (the larger of ru_maxrss and VmHWM, and RSS now), in MB."""
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":  # bytes there
        peak_kb //= 1024
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
    except OSError:
        pass
    return max(peak_kb * 1024 / 1e6, rss_now_mb())


def emit_result(result: dict[str, object]) -> None:
    """Hand one scenario's result to run.py: one JSON line on stdout, prefixed so logs cannot mix in."""
    result.setdefault("peak_rss_mb", round(rss_peak_mb(), 1))
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def percentiles(samples_ns: list[int]) -> dict[str, object]:
    samples = sorted(samples_ns)
    n = len(samples)

    def pct(p: float) -> float:
        return samples[min(n - 1, int(p * n))] / 1000.0

    return {
        "pings": n,
        "p50_us": round(pct(0.50), 1),
        "p90_us": round(pct(0.90), 1),
        "p99_us": round(pct(0.99), 1),
        "max_us": round(samples[-1] / 1000.0, 1),
        "mean_us": round(sum(samples) / n / 1000.0, 1),
    }


def scale_result(counts: list[int], target: int, seconds: float, **extra: object) -> dict[str, object]:
    """The scale rows' result: every client's frames (the login answer of each not counted in the rate)."""
    total = sum(counts)
    seconds = max(seconds, 1e-9)
    return {
        "frames": total,
        "seconds": round(seconds, 4),
        "rate": round((total - len(counts)) / seconds, 1),
        "clients": len(counts),
        "complete": all(c >= target for c in counts),
        **extra,
    }


def bare_loop(read: Callable[[], Any], buf: bytes, target: float) -> tuple[int, float, float]:
    """The baseline every ratio is measured against, the issue's bare loop: each ``read()`` (a socket's
    recv, or the next chunk in memory; ``b""`` ends) is split on the blank line, decoded, and made one
    dict per frame with lower-cased keys, no rule of the library and no helper call per frame. It is
    one function that *is* the loop, for the socket and the in-memory baselines alike. Returns the
    frames (at least ``target`` unless the reads ran out), when the first one was made and when the
    last read was done (``perf_counter``)."""
    count = 0
    t0 = t1 = time.perf_counter()
    while count < target:
        data = read()
        if not data:
            break
        *raws, buf = (buf + data).split(b"\r\n\r\n")
        for raw in raws:
            frame: dict[str, str] = {}
            for line in raw.decode("utf-8", "replace").split("\r\n"):
                key, _, value = line.partition(": ")
                frame[key.lower()] = value
            count += 1
            if count == 1:
                t0 = time.perf_counter()
        t1 = time.perf_counter()
    return count, t0, t1
