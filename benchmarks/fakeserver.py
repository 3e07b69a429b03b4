"""The project's :class:`asterisk_ami.testing.FakeAsterisk` in its own process, for the benchmarks.

``python benchmarks/fakeserver.py [--stream N]`` prints ``PORT <n>`` and serves until killed.
Account ``admin`` / ``secret``. It answers Login, Ping, Logoff... as FakeAsterisk does (the latency rows).
With ``--stream N`` every session that logs in then gets N corpus events, written with
:meth:`FakeSession.send_raw` in ~1 MB pieces from a thread per session (the FakeAsterisk-served
firehose row, to show the dedicated firehose.py is not flattering the numbers).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DEFAULT_CORPUS, PASSWORD_ACCOUNTS, corpus_events

from asterisk_ami.testing import FakeAsterisk, FakeSession

CHUNK_TARGET = 1 << 20


def _stream(session: FakeSession, events: list[bytes], count: int) -> None:
    per_chunk = max(1, CHUNK_TARGET // (sum(map(len, events)) // len(events)))
    sent = 0
    i = 0
    while sent < count:
        n = min(per_chunk, count - sent)
        chunk = b"".join(events[(i + k) % len(events)] for k in range(n))
        if not session.send_raw(chunk):
            return
        sent += n
        i = (i + n) % len(events)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", type=int, default=0, help="events to send to each session after its login")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    events = corpus_events(args.corpus)
    fake = FakeAsterisk(accounts=PASSWORD_ACCOUNTS, send_fully_booted=False, authlimit=None).start()
    print(f"PORT {fake.port}", flush=True)
    started: set[FakeSession] = set()
    while True:
        if not args.stream:
            time.sleep(3600)  # FakeAsterisk's own threads serve; this one only waits to be killed
            continue
        for session in fake.sessions:
            if session.logged_in and session not in started:
                started.add(session)
                threading.Thread(target=_stream, args=(session, events, args.stream), daemon=True).start()
        time.sleep(0.002)


if __name__ == "__main__":
    sys.exit(main())
