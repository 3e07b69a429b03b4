"""Load: a million events through one client, and 64 clients sharing one server with 20,000 actions.

Real sockets on 127.0.0.1. The server side writes pre-encoded bytes in big chunks so the client, not the
fake, is what is measured. Figures are printed (``pytest -s``); only generous "did it hang" bounds are
asserted on time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from asterisk_ami import ActionResult, AsteriskAmi
from asterisk_ami.testing import FakeAsterisk, FakeSession

from .helpers import Recorder, client_threads, rss_bytes, wait_until

SECRET = "load-Secret-7"
MASK32 = 0xFFFFFFFF


def check_value(n: int) -> int:
    """The ``Check`` header of event ``n`` (Knuth's multiplicative hash)."""
    return (n * 2654435761) & MASK32


@pytest.fixture
def fake() -> Iterator[FakeAsterisk]:
    with FakeAsterisk(accounts={"admin": SECRET}, authlimit=None) as server:
        yield server


class SeqChecker:
    """An ``ami_data`` handler: counts ``Seq`` events, checks their order, headers and a checksum."""

    def __init__(self, total: int, warm_up: int) -> None:
        self.total = total
        self.warm_up = warm_up
        self.next = 0
        self.checksum = 0
        self.bad: list[dict[str, Any]] = []
        self.rss_after_warm_up = 0
        self.done = threading.Event()

    def __call__(self, frame: dict[str, Any]) -> None:
        if frame.get("event") != "Seq":
            return
        n = self.next
        # a lost, merged or reordered frame
        if (len(frame) != 3 or frame["seq"] != str(n)) and len(self.bad) < 5:
            self.bad.append(frame)
        self.checksum = (self.checksum + int(frame["check"])) & MASK32
        n += 1
        self.next = n
        if n == self.warm_up:
            self.rss_after_warm_up = rss_bytes()
        if n == self.total:
            self.done.set()


def test_one_million_events_none_lost_or_merged_and_memory_flat(fake: FakeAsterisk) -> None:
    total = 1_000_000
    per_chunk = 20_000
    checker = SeqChecker(total, warm_up=100_000)
    before = client_threads()
    ami = AsteriskAmi(host=fake.host, port=fake.port, username="admin", password=SECRET)
    ami.on("ami_data", checker)
    rec = Recorder(ami, data=False)
    ami.connect()
    rec.wait_for("ami_login")
    (session,) = fake.wait_for_clients(1)
    sent_checksum = [0]

    def push(session: FakeSession) -> None:
        checksum = 0
        for start in range(0, total, per_chunk):
            numbers = range(start, start + per_chunk)
            chunk = b"".join(b"Event: Seq\r\nSeq: %d\r\nCheck: %d\r\n\r\n" % (n, check_value(n)) for n in numbers)
            checksum = (checksum + sum(check_value(n) for n in numbers)) & MASK32
            if not session.send_raw(chunk):
                return
        sent_checksum[0] = checksum

    started = time.monotonic()
    pusher = threading.Thread(target=push, args=(session,), name="test-pusher", daemon=True)
    pusher.start()
    try:
        assert checker.done.wait(50), f"{checker.next} of {total} events in 50 s"
    finally:
        pusher.join(10)
        elapsed = time.monotonic() - started
        rss_end = rss_bytes()
        ami.destroy()
    growth = rss_end - checker.rss_after_warm_up
    print(
        f"\n1,000,000 events in {elapsed:.2f} s ({total / elapsed:,.0f}/s); queue high water "
        f"{ami.stats['queue_high_water']}; RSS after warm-up {checker.rss_after_warm_up / 1e6:.1f} MB, "
        f"growth {growth / 1e6:+.2f} MB"
    )
    assert checker.bad == [], checker.bad
    assert checker.next == total
    assert checker.checksum == sent_checksum[0]
    assert rec.count("ami_socket_error") == 0 and rec.count("ami_socket_close") == 1  # only our destroy()
    assert growth < 10_000_000, f"RSS grew {growth / 1e6:.1f} MB after warm-up"
    wait_until(lambda: not (client_threads() - before), 5, "client threads to end")


def test_64_clients_20000_actions_each_result_to_its_sender(fake: FakeAsterisk) -> None:
    n_clients = 64
    total = 20_000
    fake.respond("Echo", lambda action, session: {"Response": "Success", "Token": action["token"]})
    before = client_threads()
    clients = [
        AsteriskAmi(host=fake.host, port=fake.port, username="admin", password=SECRET, events=False)
        for _ in range(n_clients)
    ]
    try:
        for ami in clients:
            ami.connect()
        fake.wait_for_clients(n_clients, timeout=20)
        wait_until(lambda: all(ami.connected for ami in clients), 20, "every client logged in")
        started = time.monotonic()
        sent: list[tuple[str, Future[ActionResult]]] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def run(index: int, ami: AsteriskAmi) -> None:
            # one sender thread per client, so the 64 clients write concurrently
            mine = [(f"{index}:{k}", ami) for k in range(index, total, n_clients)]
            try:
                futures = [(token, c.action({"Action": "Echo", "Token": token}, timeout=30)) for token, c in mine]
            except BaseException as exc:
                errors.append(exc)
                return
            with lock:
                sent.extend(futures)

        senders = [
            threading.Thread(target=run, args=(i, ami), name=f"test-sender-{i}") for i, ami in enumerate(clients)
        ]
        for t in senders:
            t.start()
        for t in senders:
            t.join(30)
        assert errors == []
        assert len(sent) == total
        end = time.monotonic() + 60
        wrong = []
        for token, future in sent:
            result = future.result(timeout=max(0.1, end - time.monotonic()))
            if result["token"] != token or not result.ok:
                wrong.append((token, dict(result)))
        elapsed = time.monotonic() - started
        print(f"\n{total} actions over {n_clients} clients answered in {elapsed:.2f} s ({total / elapsed:,.0f}/s)")
        assert wrong == [], wrong[:5]
        # every action reached the server from the client that sent it
        by_session = {s.number: s for s in fake.sessions}
        assert len(by_session) == n_clients
        echoed = sum(1 for s in by_session.values() for a in s.actions if a.get("action") == "Echo")
        assert echoed == total
        for session in by_session.values():
            indexes = {str(a["token"]).split(":")[0] for a in session.actions if a.get("action") == "Echo"}
            assert len(indexes) == 1, indexes  # one session carried one client's actions only
        assert all(ami.stats["pending_actions"] == 0 for ami in clients)
    finally:
        for ami in clients:
            ami.destroy()
    wait_until(lambda: not (client_threads() - before), 10, "client threads to end")
