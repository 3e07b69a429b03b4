#!/usr/bin/env python3
"""Soak test: one AsteriskAmi against an in-process FakeAsterisk that is restarted every few seconds.

Events stream and actions are sent continuously; at the end a summary is printed (connections,
reconnects, actions sent/answered/failed, events, the client's ``stats``, max RSS, threads). Not run in CI:

    .venv/bin/python scripts/soak.py                       # 10 minutes
    .venv/bin/python scripts/soak.py --duration 30 --restart-every 5

Exit status 0 when every action ended (answered or failed with a ConnectionError), the events that
arrived were in order within each connection, and no client thread outlived destroy(); 1 otherwise.
"""

from __future__ import annotations

import argparse
import resource
import socket
import sys
import threading
import time
from collections import Counter
from concurrent.futures import Future
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asterisk_ami import ActionResult, AsteriskAmi
from asterisk_ami.testing import FakeAsterisk

SECRET = "soak-secret"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.port = free_port()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.pending: list[Future[ActionResult]] = []
        self.out_of_order = 0
        self.last_seq: int | None = None
        self.max_rss = 0.0
        self.max_threads = 0
        self.fake: FakeAsterisk | None = None
        self.server_lock = threading.Lock()

    # -- server side ------------------------------------------------------------------------------------

    def start_server(self) -> None:
        fake = FakeAsterisk(accounts={"admin": SECRET}, port=self.port)
        for attempt in range(50):  # the old listener's port may take a moment to be free
            try:
                fake.start()
                break
            except OSError:
                time.sleep(0.05 * (attempt + 1))
        else:
            raise RuntimeError(f"cannot listen on port {self.port} again")
        fake.respond("Echo", lambda action, session: {"Response": "Success", "Token": action.get("token", "")})
        with self.server_lock:
            self.fake = fake
        self.counts["server_starts"] += 1

    def restarter(self) -> None:
        while not self.stop.wait(self.args.restart_every):
            with self.server_lock:
                fake, self.fake = self.fake, None
            if fake is not None:
                self.counts["server_connections"] += fake.connection_count
                fake.close()
            if self.stop.wait(self.args.down_for):
                return
            self.start_server()

    def pusher(self) -> None:
        seq = 0
        batch = self.args.event_batch
        while not self.stop.is_set():
            with self.server_lock:
                fake = self.fake
            if fake is None or not fake.sessions:
                time.sleep(0.01)
                continue
            data = b"".join(b"Event: Soak\r\nSeq: %d\r\n\r\n" % n for n in range(seq, seq + batch))
            if fake.push_raw(data):
                seq += batch
                self.counts["events_pushed"] += batch
            time.sleep(self.args.event_pause)

    # -- client side ------------------------------------------------------------------------------------

    def on_data(self, frame: dict[str, Any]) -> None:
        if frame.get("event") != "Soak":
            return
        seq = int(frame["seq"])
        self.counts["events"] += 1
        # a gap is expected across a restart (events pushed to a dying connection); a step back is not
        if self.last_seq is not None and seq <= self.last_seq:
            self.out_of_order += 1
        self.last_seq = seq

    def on_login(self, success: bool, frame: dict[str, Any]) -> None:
        self.counts["logins" if success else "login_failures"] += 1

    def sender(self, ami: AsteriskAmi) -> None:
        n = 0
        while not self.stop.is_set():
            future = ami.action({"Action": "Echo", "Token": str(n)}, timeout=5)
            n += 1
            self.counts["actions_sent"] += 1
            with self.lock:
                self.pending.append(future)
            time.sleep(self.args.action_pause)

    def reaper(self, final: bool = False) -> None:
        with self.lock:
            pending, self.pending = self.pending, []
        still = []
        for future in pending:
            if not future.done() and not final:
                still.append(future)
                continue
            exc = future.exception(timeout=10)
            if exc is None:
                self.counts["actions_answered"] += 1
            else:
                self.counts["actions_failed"] += 1
                self.failures[type(exc).__name__] += 1
        with self.lock:
            self.pending[:0] = still

    def run(self) -> int:
        a = self.args
        threads_before = {t for t in threading.enumerate() if t.name.startswith("asterisk-ami-")}
        self.start_server()
        ami = AsteriskAmi(
            host="127.0.0.1",
            port=self.port,
            username="admin",
            password=SECRET,
            reconnect=True,
            reconnect_after=a.reconnect_after,
            reconnect_max=a.reconnect_max,
            ping_interval=1.0,
            ping_timeout=2.0,
            connect_timeout=3.0,
        )
        ami.on("ami_data", self.on_data)
        ami.on("ami_login", self.on_login)
        ami.on("ami_socket_close", lambda had_error: self.counts.update(["closes"]))
        ami.on("ami_socket_error", lambda exc: self.failures.update([f"socket_error:{type(exc).__name__}"]))
        ami.on("ami_socket_timeout", lambda: self.counts.update(["timeouts"]))
        ami.connect()
        workers = [
            threading.Thread(target=self.restarter, name="soak-restarter", daemon=True),
            threading.Thread(target=self.pusher, name="soak-pusher", daemon=True),
            threading.Thread(target=self.sender, args=(ami,), name="soak-sender", daemon=True),
        ]
        for t in workers:
            t.start()
        started = time.monotonic()
        next_report = started + a.report_every
        while time.monotonic() - started < a.duration:
            time.sleep(0.2)
            self.reaper()
            self.max_rss = max(self.max_rss, rss_mb())
            self.max_threads = max(self.max_threads, threading.active_count())
            if time.monotonic() >= next_report:
                next_report += a.report_every
                print(
                    f"[{time.monotonic() - started:6.0f} s] state={ami.state} logins={self.counts['logins']} "
                    f"events={self.counts['events']} answered={self.counts['actions_answered']} "
                    f"failed={self.counts['actions_failed']} rss={rss_mb():.1f} MB threads={threading.active_count()}",
                    flush=True,
                )
        self.stop.set()
        for t in workers:
            t.join(10)
        ami.destroy()
        stats = ami.stats  # the client's own counters, read after the last connection closed
        self.reaper(final=True)
        with self.server_lock:
            fake = self.fake
        if fake is not None:
            self.counts["server_connections"] += fake.connection_count
            fake.close()
        deadline = time.monotonic() + 5
        leaked: set[threading.Thread] = set()
        while time.monotonic() < deadline:
            leaked = {t for t in threading.enumerate() if t.name.startswith("asterisk-ami-")} - threads_before
            if not leaked:
                break
            time.sleep(0.05)
        c = self.counts
        unended = c["actions_sent"] - c["actions_answered"] - c["actions_failed"]
        bad_failures = {
            k: v
            for k, v in self.failures.items()
            if not k.startswith("socket_error")
            and k not in ("ConnectionLostError", "NotConnectedError", "ActionTimeoutError")
        }
        print("== soak summary")
        print(f"duration            {time.monotonic() - started:.0f} s (restart every {a.restart_every} s)")
        print(f"server starts       {c['server_starts']}")
        print(f"connections         {c['server_connections']} accepted by the server, {c['logins']} logins")
        print(f"reconnects          {max(0, c['logins'] - 1)}  (closes {c['closes']}, timeouts {c['timeouts']})")
        print(
            f"client stats        logins {stats['logins']}, reconnects {stats['reconnects']}, frames {stats['frames']},"
            f" {stats['bytes'] / 1e6:.1f} MB, queue high water {stats['queue_high_water']},"
            f" reader blocked {stats['blocked_seconds']:.2f} s in {stats['blocked_episodes']} episode(s),"
            f" slowest handler {stats['slowest_handler']} {stats['slowest_handler_seconds'] * 1000:.1f} ms"
        )
        print(
            f"actions             sent {c['actions_sent']}, answered {c['actions_answered']}, "
            f"failed {c['actions_failed']}, never ended {unended}"
        )
        print(f"failures            {dict(self.failures)}")
        print(
            f"events              pushed {c['events_pushed']}, received {c['events']}, out of order {self.out_of_order}"
        )
        print(
            f"max RSS             {max(self.max_rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024):.1f} MB"
        )
        print(f"threads             max {self.max_threads}, client threads left after destroy: {len(leaked)}")
        # the client counted the same logins as its ami_login handler saw
        ok = unended == 0 and self.out_of_order == 0 and not leaked and not bad_failures and c["logins"] >= 2
        ok = ok and stats["logins"] == c["logins"]
        print("result              " + ("OK" if ok else "FAILED"))
        return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=600.0, help="seconds to run (default 600)")
    p.add_argument("--restart-every", type=float, default=20.0, help="seconds between server restarts")
    p.add_argument("--down-for", type=float, default=0.5, help="seconds the server stays down per restart")
    p.add_argument("--reconnect-after", type=float, default=100.0, help="client reconnect_after (ms)")
    p.add_argument("--reconnect-max", type=float, default=2000.0, help="client reconnect_max (ms)")
    p.add_argument("--event-batch", type=int, default=500, help="events per push")
    p.add_argument("--event-pause", type=float, default=0.01, help="seconds between pushes")
    p.add_argument("--action-pause", type=float, default=0.002, help="seconds between actions")
    p.add_argument("--report-every", type=float, default=10.0, help="seconds between progress lines")
    return Soak(p.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
