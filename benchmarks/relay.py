"""The relay's benchmarks, one command: ``python benchmarks/relay.py [--quick] [--json out.json]``.

Every row runs in processes of its own against a private nats-server (JetStream, file storage,
acknowledged publishes), fed by ``firehose.py`` (the recorded Asterisk 22 events, as fast as TCP takes
them) or by a paced server of this file; the baseline is ``asterisk-ami events`` reading the same
firehose in the same run (it parses, encodes each frame as JSON and writes it: the relay's work
without NATS). Rows:

* ``asterisk-ami events`` (the baseline) and ``asterisk-ami relay`` (``Relay``, batches on ``ami.<pbx>.ev``)
  into file-backed JetStream: events/s from the first frame read to the last acknowledged;
* the same relay with one message per frame (``--per-frame``, on ``ami.<pbx>.ev.<Event>``);
* a ``RemoteAmi`` with an ``ami_data`` handler reading the relay's stream from its start;
* latency from the AMI frame (a timestamp written by the paced server) to the consumer's handler, at
  ``--rate`` events/s through ``asterisk-ami relay``: p50, p99, max;
* the relay's RSS while NATS is stopped for ``--outage`` seconds at ``--rate`` events/s, in drop mode
  (the buffer bounds it; the loss is a gap) and block mode (it stops reading Asterisk).

Internal subcommands (one process each): ``_relay``, ``_consume``, ``_latency``, ``_paced``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BANNER, SECRET, TERM, USERNAME, emit_result, percentiles, rss_peak_mb
from firehose import _answer, _header
from harness import PYTHON, Row, fmt_rate, log, machine_info, markdown, run_command, server

from asterisk_ami.relay.testing import NatsServer, process_rss_mb

HERE = Path(__file__).resolve()


def _relay_config(nats: str, port: int, **options: Any) -> Any:
    from asterisk_ami.relay import RelayConfig, parse_pbx

    pbx = parse_pbx("bench", f"ami://{USERNAME}@127.0.0.1:{port}", secret=SECRET)
    return RelayConfig(nats=(nats,), pbxes=(pbx,), max_bytes=0, max_inflight=64, **options)


# -- scenarios (each in its own process) ------------------------------------------------------------------


async def relay_scenario(nats: str, port: int, events: int, per_frame: bool) -> dict[str, Any]:
    """A Relay against the firehose: events/s from the first frame read to the last one acknowledged.
    ``on_stall='block'``: the firehose is faster than the relay, whose reading then sets the pace."""
    from asterisk_ami.relay import Relay

    async with Relay(_relay_config(nats, port, per_frame=per_frame, on_stall="block")) as relay:
        outbox = relay.pbxes["bench"].outbox
        first = last = 0.0
        end = time.monotonic() + 600
        while outbox.frames_acked + outbox.dropped < events and time.monotonic() < end:
            if not first and outbox.frames_in:
                first = time.perf_counter()
            await asyncio.sleep(0.002)
        last = time.perf_counter()
        stats = relay.stats["pbxes"]["bench"]
    seconds = last - first
    return {
        "rate": events / seconds if seconds > 0 else 0.0,
        "events": events,
        "acked": stats["acked_frames"],
        "messages": stats["acked_messages"],
        "dropped": stats["dropped"],
        "seconds": round(seconds, 3),
    }


async def consume_scenario(nats: str, events: int) -> dict[str, Any]:
    """A RemoteAmi reading the stream from its start with an ami_data handler."""
    from asterisk_ami.relay import RemoteAmi

    done = asyncio.Event()
    count = [0]
    started = [0.0]

    def on_frame(frame: dict[str, Any]) -> None:
        if not count[0]:
            started[0] = time.perf_counter()
        count[0] += 1
        if count[0] >= events:
            done.set()

    async with RemoteAmi(nats, pbx="bench", replay=True) as remote:
        remote.on("ami_data", on_frame)
        await asyncio.wait_for(done.wait(), 600)
        seconds = time.perf_counter() - started[0]
        gaps = remote.stats["gaps"]
    return {"rate": count[0] / seconds if seconds > 0 else 0.0, "events": count[0], "gaps": gaps}


async def latency_scenario(nats: str, expect: int) -> dict[str, Any]:
    """A RemoteAmi timing each frame from the paced server's timestamp to its handler."""
    from asterisk_ami.relay import RemoteAmi

    samples: list[int] = []
    done = asyncio.Event()

    def on_frame(frame: dict[str, Any]) -> None:
        sent = frame.get("sent")
        if isinstance(sent, str):
            samples.append(time.monotonic_ns() - int(sent))
            if len(samples) >= expect:
                done.set()

    async with RemoteAmi(nats, pbx="bench") as remote:
        remote.on("UserEvent", on_frame)
        print("READY", flush=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), 120)
        gaps = remote.stats["gaps"]
    return {**percentiles(samples), "events": len(samples), "gaps": gaps}


# -- the paced server -----------------------------------------------------------------------------------


def paced_serve(conn: socket.socket, rate: float, seconds: float, pad: int) -> None:
    """Banner, Login, then ``rate`` UserEvents a second for ``seconds``, each stamped with
    ``time.monotonic_ns()`` as it is written; other actions get Asterisk's error answer."""
    lock = threading.Lock()
    try:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(BANNER)
        buf = b""
        while b"action: login" not in buf.lower():
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        message = buf.split(TERM, 1)[0]
        conn.sendall(_answer(_header(message, b"actionid"), b"Response: Success", b"Message: Authentication accepted"))

        def answer() -> None:
            rest = b""
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                rest += data
                while TERM in rest:
                    action, rest = rest.split(TERM, 1)
                    reply = _answer(
                        _header(action, b"actionid"), b"Response: Error", b"Message: Invalid/unknown command"
                    )
                    with lock:
                        conn.sendall(reply)

        threading.Thread(target=answer, daemon=True).start()
        filler = b"Pad: " + b"x" * pad + b"\r\n"
        began, sent = time.monotonic(), 0
        while time.monotonic() - began < seconds:
            due = int((time.monotonic() - began) * rate) - sent
            if due > 0:
                now = time.monotonic_ns()
                frame = b"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: Bench\r\nSent: %d\r\n" % now
                with lock:
                    conn.sendall((frame + filler + b"\r\n") * due)
                sent += due
            time.sleep(0.001)
    except OSError:
        return
    finally:
        time.sleep(0.5)
        conn.close()


def paced_main(rate: float, seconds: float, pad: int) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=paced_serve, args=(conn, rate, seconds, pad), daemon=True).start()


# -- rows --------------------------------------------------------------------------------------------------


def baseline_scenario(port: int, events: int) -> dict[str, Any]:
    """``asterisk-ami events --count N`` (the command's own main(), stdout to /dev/null), timed from the
    call to its return: connect, login, then every frame parsed, encoded as JSON and written."""
    from asterisk_ami import cli

    os.environ["AMI_SECRET"] = SECRET
    argv = ["events", "--host", "127.0.0.1", "--port", str(port), "--username", USERNAME, "--count", str(events)]
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):
        began = time.perf_counter()
        code = cli.main(argv)
        seconds = time.perf_counter() - began
    if code != 0:
        return {"error": f"asterisk-ami events exited {code}"}
    return {"rate": events / seconds, "events": events, "seconds": round(seconds, 3)}


def relay_cli(nats: NatsServer, port: int, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMI_")} | {"AMI_SECRET_BENCH": SECRET}
    cmd = [
        PYTHON,
        "-m",
        "asterisk_ami",
        "relay",
        "--nats",
        nats.url,
        "--pbx",
        f"bench=ami://{USERNAME}@127.0.0.1:{port}",
    ]
    return subprocess.Popen([*cmd, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def throughput_rows(args: argparse.Namespace, rows: list[Row], results: dict[str, Any]) -> None:
    events = args.events
    with server("firehose.py", "--events", str(events)) as port:
        log(f"baseline: asterisk-ami events ({events:,} events)")
        base = run_command([PYTHON, str(HERE), "_baseline", str(port), str(events)], None)
        results["baseline"] = base
        base_rate = float(base.get("rate") or 0.0)
        rows.append(
            Row(
                "baseline: asterisk-ami events > /dev/null", fmt_rate(base_rate), "1.00x", base.get("peak_rss_mb"), base
            )
        )
        with NatsServer() as nats:
            log(f"relay into JetStream, batches ({events:,} events)")
            relay = run_command([PYTHON, str(HERE), "_relay", nats.url, str(port), str(events)], None)
            results["relay"] = relay
            rate = float(relay.get("rate") or 0.0)
            text = f"{fmt_rate(rate)}, {relay.get('messages', 0):,} messages acknowledged"
            rows.append(
                Row(
                    "asterisk-ami relay: batches on ami.<pbx>.ev, acknowledged",
                    text,
                    ratio(rate, base_rate),
                    relay.get("peak_rss_mb"),
                    relay,
                )
            )
            log(f"RemoteAmi reading the stream ({events:,} events)")
            consume = run_command([PYTHON, str(HERE), "_consume", nats.url, str(events)], None)
            results["consumer"] = consume
            rate = float(consume.get("rate") or 0.0)
            rows.append(
                Row(
                    "RemoteAmi: ami_data handler, from the stream",
                    f"{fmt_rate(rate)}, {consume.get('gaps', '?')} gaps",
                    ratio(rate, base_rate),
                    consume.get("peak_rss_mb"),
                    consume,
                )
            )
    per_frame = args.per_frame_events
    with server("firehose.py", "--events", str(per_frame)) as port, NatsServer() as nats:
        log(f"relay into JetStream, one message per frame ({per_frame:,} events)")
        relay = run_command([PYTHON, str(HERE), "_relay", nats.url, str(port), str(per_frame), "--per-frame"], None)
        results["relay_per_frame"] = relay
        rate = float(relay.get("rate") or 0.0)
        rows.append(
            Row(
                "asterisk-ami relay --per-frame: ami.<pbx>.ev.<Event>",
                fmt_rate(rate),
                ratio(rate, base_rate),
                relay.get("peak_rss_mb"),
                relay,
            )
        )


def latency_row(args: argparse.Namespace, rows: list[Row], results: dict[str, Any]) -> None:
    rate, seconds = args.rate, args.latency_seconds
    expect = int(rate * seconds * 0.99)
    log(f"latency at {rate:,.0f} events/s for {seconds:.0f} s")
    with NatsServer() as nats:
        consumer = subprocess.Popen(
            [PYTHON, str(HERE), "_latency", nats.url, str(expect)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert consumer.stdout is not None
        assert consumer.stdout.readline().strip() == "READY"
        with server(str(HERE.name), "_paced", str(rate), str(seconds), "300") as port:
            relay = relay_cli(nats, port)
            try:
                out, _ = consumer.communicate(timeout=seconds + 120)
            finally:
                relay.terminate()
                relay.wait(30)
    result = next(
        (json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")), {"error": "no result"}
    )
    results["latency"] = result
    ms = {k: float(result.get(k, 0.0)) / 1000 for k in ("p50_us", "p99_us", "max_us")}
    text = f"p50 {ms['p50_us']:.1f} ms, p99 {ms['p99_us']:.1f} ms, max {ms['max_us']:.1f} ms"
    text += f" ({result.get('events', 0):,} events)"
    rows.append(
        Row(
            f"latency, AMI frame to RemoteAmi handler, {rate:,.0f} events/s",
            text,
            "-",
            result.get("peak_rss_mb"),
            result,
        )
    )


def outage_rows(args: argparse.Namespace, rows: list[Row], results: dict[str, Any]) -> None:
    rate, outage = args.rate, args.outage
    for mode in ("drop", "block"):
        log(f"relay RSS, NATS stopped for {outage:.0f} s at {rate:,.0f} events/s ({mode})")
        warm, after = 5.0, 10.0
        with (
            NatsServer() as nats,
            server(str(HERE.name), "_paced", str(rate), str(warm + outage + after), "300") as port,
        ):
            relay = relay_cli(nats, port, "--on-stall", mode)
            try:
                time.sleep(warm)
                before = process_rss_mb(relay.pid)
                nats.stop()
                peak, end = before, time.monotonic() + outage
                while time.monotonic() < end:
                    peak = max(peak, process_rss_mb(relay.pid))
                    time.sleep(0.2)
                nats.start()
                time.sleep(after)
                later = process_rss_mb(relay.pid)
            finally:
                relay.terminate()
                _, err = relay.communicate(timeout=30)
        dropped = sum(int(n) for n in re.findall(r"(\d+) frame\(s\) dropped", err))
        data = {
            "before_mb": round(before, 1),
            "peak_mb": round(peak, 1),
            "after_mb": round(later, 1),
            "dropped": dropped,
        }
        results[f"outage_{mode}"] = data
        lost = f"{dropped:,} frames dropped (a gap)" if mode == "drop" else "Asterisk's writes waited"
        text = f"RSS {before:.1f} MB before, {peak:.1f} MB peak during, {later:.1f} MB after; {lost}"
        rows.append(
            Row(
                f"relay RSS, NATS stopped {outage:.0f} s at {rate:,.0f} events/s, --on-stall {mode}",
                text,
                "-",
                round(peak, 1),
                data,
            )
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events, a 10 s outage")
    parser.add_argument("--events", type=int, help="events of the throughput rows (default 500,000; quick 100,000)")
    parser.add_argument("--per-frame-events", type=int, help="events of the per-frame row (default 100,000)")
    parser.add_argument("--rate", type=float, default=10_000.0, help="events/s of the latency and outage rows")
    parser.add_argument("--latency-seconds", type=float, help="seconds of the latency row (default 20; quick 5)")
    parser.add_argument("--outage", type=float, help="seconds NATS is stopped (default 60; quick 10)")
    parser.add_argument("--rows", default="throughput,latency,outage", help="which sections to run")
    parser.add_argument("--json", type=Path, help="write every result to this file")
    args = parser.parse_args()
    args.events = args.events or (100_000 if args.quick else 500_000)
    args.per_frame_events = args.per_frame_events or (30_000 if args.quick else 100_000)
    args.latency_seconds = args.latency_seconds or (5.0 if args.quick else 20.0)
    args.outage = args.outage if args.outage is not None else (10.0 if args.quick else 60.0)
    started = time.monotonic()
    rows: list[Row] = []
    results: dict[str, Any] = {}
    sections = set(args.rows.split(","))
    if "throughput" in sections:
        throughput_rows(args, rows, results)
    if "latency" in sections:
        latency_row(args, rows, results)
    if "outage" in sections:
        outage_rows(args, rows, results)
    info = machine_info()
    print(
        f"\nasterisk-ami relay benchmarks: Python {info['python']}, {info['cpus_usable']} CPUs usable ({info['cpu']}), "
        f"asterisk_ami {info['asterisk_ami']} @ {info['commit']}; ratios are to asterisk-ami events of this run\n"
    )
    print(markdown(rows))
    print(f"\ntook {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2) + "\n")
    return 0


def scenario(argv: list[str]) -> int:
    name, rest = argv[0], argv[1:]
    if name == "_paced":
        paced_main(float(rest[0]), float(rest[1]), int(rest[2]))
        return 0
    if name == "_baseline":
        result = baseline_scenario(int(rest[0]), int(rest[1]))
    elif name == "_relay":
        result = asyncio.run(relay_scenario(rest[0], int(rest[1]), int(rest[2]), "--per-frame" in rest))
    elif name == "_consume":
        result = asyncio.run(consume_scenario(rest[0], int(rest[1])))
    elif name == "_latency":
        result = asyncio.run(latency_scenario(rest[0], int(rest[1])))
    else:
        raise SystemExit(f"unknown scenario {name}")
    result["peak_rss_mb"] = round(rss_peak_mb(), 1)
    emit_result(result)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        sys.exit(scenario(sys.argv[1:]))
    sys.exit(main())
