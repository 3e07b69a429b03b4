"""The asyncio client's scenarios (run by ``benchmarks/scenarios.py``, one per process like the others).

* ``lib_asyncio``: ``asterisk_ami.asyncio.AsteriskAmi`` with an ``ami_data`` handler (``--stream``: an
  ``async for frame in ami.events()`` loop instead), counted from the first frame to the last;
* ``ping_lib_asyncio``: ``await ami.request({'Action': 'Ping'})`` round trips;
* ``scale_asyncio``: ``--clients`` connections in one event loop, each receiving ``--events`` events.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
import time
from typing import Any

from common import SECRET, USERNAME, percentiles, rss_peak_mb, scale_result


def _client(args: argparse.Namespace, **options: Any) -> Any:
    from asterisk_ami.asyncio import AsteriskAmi

    username, secret = args.username or USERNAME, args.secret or SECRET
    return AsteriskAmi(host=args.host, port=args.port, username=username, password=secret, **options)


def _rate(frames: int, t0: float, t1: float, **extra: object) -> dict[str, object]:
    seconds = max(t1 - t0, 1e-9)
    return {"frames": frames, "seconds": round(seconds, 4), "rate": round((frames - 1) / seconds, 1), **extra}


def scenario_lib_asyncio(args: argparse.Namespace) -> dict[str, object]:
    from asterisk_ami.protocol import SPEEDUPS

    async def main() -> dict[str, object]:
        ami = _client(args)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        state = {"count": 0, "t0": 0.0, "t1": 0.0}
        # ami_data sees the login answer, then the events; a stream sees the events only
        target = args.events if args.stream else args.events + 1

        def count(frame: dict[str, Any]) -> None:
            n = state["count"] = state["count"] + 1
            if n == 1:
                state["t0"] = time.perf_counter()
            elif n >= target:
                state["t1"] = time.perf_counter()
                if not done.done():
                    done.set_result(None)

        def closed(*_: object) -> None:
            if not done.done():
                done.set_result(None)

        ami.on("ami_socket_close", closed)
        if not args.stream:
            ami.on("ami_data", count)
        await ami.connect()
        if args.stream:
            async with ami.events() as stream:
                waiting = loop.create_task(asyncio.wait_for(asyncio.shield(done), args.timeout))
                async for frame in stream:
                    count(frame)
                    if done.done():
                        break
                waiting.cancel()
        else:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done, args.timeout)
        t1 = state["t1"] or time.perf_counter()
        ami.destroy()
        return _rate(
            int(state["count"]),
            state["t0"],
            t1,
            complete=state["count"] >= target,
            speedups=SPEEDUPS,
            threads=threading.active_count(),
            peak_rss_mb=round(rss_peak_mb(), 1),
        )

    return asyncio.run(main())


def scenario_ping_lib_asyncio(args: argparse.Namespace) -> dict[str, object]:
    async def main() -> dict[str, object]:
        ami = _client(args, events=False)
        await ami.connect()
        samples: list[int] = []
        ping = {"Action": "Ping"}
        try:
            for i in range(args.warmup + args.pings):
                t0 = time.perf_counter_ns()
                await ami.request(ping)
                if i >= args.warmup:
                    samples.append(time.perf_counter_ns() - t0)
        finally:
            await ami.disconnect(timeout=2.0)
        return percentiles(samples)

    return asyncio.run(main())


def scenario_scale_asyncio(args: argparse.Namespace) -> dict[str, object]:
    async def main() -> dict[str, object]:
        target = args.events + 1
        counts = [0] * args.clients
        remaining = [args.clients]
        first = [0.0]
        last = [0.0]
        loop = asyncio.get_running_loop()
        all_done: asyncio.Future[None] = loop.create_future()

        def handler(i: int) -> Any:
            def on_data(frame: dict[str, Any]) -> None:
                n = counts[i] = counts[i] + 1
                if n == 1 and not first[0]:
                    first[0] = time.perf_counter()
                elif n == target:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        last[0] = time.perf_counter()
                        all_done.set_result(None)

            return on_data

        clients = [_client(args) for _ in range(args.clients)]
        for i, ami in enumerate(clients):
            ami.on("ami_data", handler(i))
        peak_threads = threading.active_count()
        await asyncio.gather(*(c.connect() for c in clients))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(all_done), args.timeout)
        peak_threads = max(peak_threads, threading.active_count())
        t1 = last[0] or time.perf_counter()
        for ami in clients:
            ami.destroy()
        await asyncio.sleep(0)
        rss = round(rss_peak_mb(), 1)
        return scale_result(counts, target, t1 - first[0], peak_threads=peak_threads, peak_rss_mb=rss)

    return asyncio.run(main())


SCENARIOS = {
    "lib_asyncio": scenario_lib_asyncio,
    "ping_lib_asyncio": scenario_ping_lib_asyncio,
    "scale_asyncio": scenario_scale_asyncio,
}
