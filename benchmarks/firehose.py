"""A tiny AMI firehose server: just enough of Asterisk to log in, then a stream of recorded events.

``python benchmarks/firehose.py --events N [--port 0] [--corpus FILE]`` prints ``PORT <n>`` on stdout,
then serves every connection on 127.0.0.1 in its own thread:

1. the banner ``Asterisk Call Manager/11.0.0``;
2. reads actions until ``Action: Login`` and answers it as Asterisk 22 does (``Response: Success``,
   the ActionID echoed, ``Message: Authentication accepted``); a ``Ping`` before that is answered;
3. writes N event frames from the corpus (the events of ``tests/data/asterisk22-session.bin``, about
   420 bytes and 20 headers each, cycled to reach N), pre-encoded, with ``sendall`` of ~1 MB chunks;
4. meanwhile, and after, answers ``Ping`` (``Response: Success`` / ``Ping: Pong``), ``Logoff``
   (``Goodbye``, close) and anything else with Asterisk's ``Invalid/unknown command``, between two
   chunks (a live-state client asks for its lists at login), until the client closes or 60 s of silence.

It is a dedicated replayer rather than :class:`asterisk_ami.testing.FakeAsterisk`, so that the server
is never what is measured: it spends its time in ``sendall`` of pre-built bytes (run.py measures the
FakeAsterisk-served variant too). It runs until killed (run.py kills it by pid).
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BANNER, DEFAULT_CORPUS, TERM, corpus_events

CHUNK_TARGET = 1 << 20
IDLE_TIMEOUT = 60.0


def _header(message: bytes, name: bytes) -> bytes | None:
    """The value of the first header ``name`` (lower case) of one action, or None."""
    for line in message.split(b"\r\n"):
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip()
    return None


def _answer(action_id: bytes | None, *headers: bytes) -> bytes:
    lines = [headers[0]]
    if action_id is not None:
        lines.append(b"ActionID: " + action_id)
    lines.extend(headers[1:])
    return b"\r\n".join(lines) + TERM


class Firehose:
    def __init__(self, events: list[bytes], count: int) -> None:
        self.count = count
        per_chunk = max(1, CHUNK_TARGET // max(1, sum(map(len, events)) // len(events)))
        cycled = [events[i % len(events)] for i in range(min(per_chunk, count))]
        self.chunk = b"".join(cycled)
        self.chunk_events = len(cycled)
        self.events = events

    def tail(self, n: int) -> bytes:
        """The last ``n`` events (fewer than one chunk), continuing the cycle."""
        start = (self.count - n) % len(self.events)
        return b"".join(self.events[(start + i) % len(self.events)] for i in range(n))

    def serve(self, conn: socket.socket) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(IDLE_TIMEOUT)
            conn.sendall(BANNER)
            buf = b""
            logged_in = False
            while not logged_in:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while TERM in buf:
                    message, buf = buf.split(TERM, 1)
                    action = (_header(message, b"action") or b"").lower()
                    action_id = _header(message, b"actionid")
                    if action == b"login":
                        conn.sendall(_answer(action_id, b"Response: Success", b"Message: Authentication accepted"))
                        logged_in = True
                        break
                    if action == b"ping":
                        conn.sendall(_answer(action_id, b"Response: Success", b"Ping: Pong", b"Timestamp: 0.0"))
            # answers go out between two chunks, never inside a frame: the reading thread queues them
            # while the stream runs, and writes them itself once it is over
            outbox: list[bytes] = []
            lock = threading.Lock()
            streaming = [True]
            answers = threading.Thread(target=self.answer, args=(conn, buf, lock, outbox, streaming), daemon=True)
            answers.start()
            full, rest = divmod(self.count, self.chunk_events)
            chunks = [self.chunk] * full + ([self.tail(rest)] if rest else [])
            for chunk in chunks:
                with lock:
                    replies, outbox[:] = list(outbox), []
                if replies:
                    conn.sendall(b"".join(replies))
                conn.sendall(chunk)
            with lock:
                streaming[0] = False
                replies, outbox[:] = list(outbox), []
            if replies:
                conn.sendall(b"".join(replies))
            answers.join()
        except OSError:
            return
        finally:
            conn.close()

    def answer(
        self, conn: socket.socket, buf: bytes, lock: threading.Lock, outbox: list[bytes], streaming: list[bool]
    ) -> None:
        """Answer the actions after the login until Logoff or the client closes."""
        try:
            while True:
                while TERM in buf:
                    message, buf = buf.split(TERM, 1)
                    action = (_header(message, b"action") or b"").lower()
                    action_id = _header(message, b"actionid")
                    if action == b"logoff":
                        reply = _answer(action_id, b"Response: Goodbye", b"Message: Thanks for all the fish.")
                    elif action == b"ping":
                        reply = _answer(action_id, b"Response: Success", b"Ping: Pong", b"Timestamp: 0.0")
                    elif action:
                        reply = _answer(action_id, b"Response: Error", b"Message: Invalid/unknown command")
                    else:
                        continue
                    with lock:
                        if streaming[0]:
                            outbox.append(reply)
                            continue
                    conn.sendall(reply)
                    if action == b"logoff":
                        conn.shutdown(socket.SHUT_RDWR)
                        return
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
        except OSError:
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, required=True, help="events per connection")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    hose = Firehose(corpus_events(args.corpus), args.events)
    listener = socket.create_server(("127.0.0.1", args.port), backlog=2048)
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=hose.serve, args=(conn,), daemon=True).start()
        time.sleep(0)


if __name__ == "__main__":
    sys.exit(main())
