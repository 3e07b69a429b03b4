"""What the relay tests share: a real nats-server, FakeAsterisks that answer CoreStatus, a relay in this
process or in its own (``python -m asterisk_ami relay``), and readers of what the stream holds.

Imported by ``tests/relay/conftest.py`` and by ``tests/integration/test_relay_real.py`` (the fixtures are
plain functions here).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest.importorskip("nats", reason="the relay's tests need nats-py (pip install -e '.[dev]')")

from asterisk_ami.relay import Gap, RelayConfig, RemoteAmi, parse_pbx
from asterisk_ami.relay.testing import NatsServer, NatsServerUnavailable
from asterisk_ami.testing import FakeAsterisk

T = TypeVar("T")
SECRET = "relay-Secret-7"
STARTED = "2025-01-01 09:00:00"
ROOT = Path(__file__).resolve().parent.parent.parent


def run(coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait (on the loop, checking every 10 ms) until ``predicate()`` is true."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def nats_server_fixture() -> Iterator[NatsServer]:
    try:
        server = NatsServer()
    except NatsServerUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI is set, so this is an error)", pytrace=False)
        pytest.skip(str(exc))
    try:
        server.start()
        yield server
    finally:
        server.close()


def fake_pbx(started: str = STARTED, secret: str = SECRET, **options: Any) -> FakeAsterisk:
    """A FakeAsterisk that answers CoreStatus as Asterisk does, started."""
    fake = FakeAsterisk(accounts={"admin": secret}, **options)
    day, _, clock = started.partition(" ")
    fake.respond("CoreStatus", {"Response": "Success", "CoreStartupDate": day, "CoreStartupTime": clock})
    return fake.start()


def pbx_url(fake: FakeAsterisk) -> str:
    return f"ami://admin@{fake.host}:{fake.port}"


def relay_config(nats: NatsServer, fakes: dict[str, FakeAsterisk], **options: Any) -> RelayConfig:
    pbxes = tuple(parse_pbx(name, pbx_url(fake), secret=SECRET) for name, fake in fakes.items())
    options.setdefault("reconnect_after", 0.2)
    options.setdefault("reconnect_max", 1.0)
    options.setdefault("login_retry", 0.5)
    return RelayConfig(nats=(nats.url,), pbxes=pbxes, **options)


def relay_process(nats: NatsServer, fakes: dict[str, FakeAsterisk], *args: str) -> subprocess.Popen[bytes]:
    """``python -m asterisk_ami relay`` for these PBXes (secrets in the environment, as a user would)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMI_")}
    command = [sys.executable, "-m", "asterisk_ami", "relay", "--nats", nats.url]
    for name, fake in fakes.items():
        env[f"AMI_SECRET_{name.upper()}"] = SECRET
        command += ["--pbx", f"{name}={pbx_url(fake)}"]
    log = open(nats.dir / f"relay-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - the process writes it
    try:
        return subprocess.Popen([*command, *args], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    finally:
        log.close()


def stop_process(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout)


class Collector:
    """What a RemoteAmi hands out: frames per PBX, gaps, control messages, in order."""

    def __init__(self, remote: RemoteAmi) -> None:
        self.frames: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.gaps: list[Gap] = []
        self.controls: list[dict[str, Any]] = []
        remote.on("ami_data", self._frame)
        remote.on("ami_gap", self.gaps.append)
        remote.on("ami_control", self.controls.append)

    def _frame(self, frame: dict[str, Any]) -> None:
        self.frames[frame["identifier"]].append(frame)

    def numbers(self, pbx: str, event: str = "UserEvent") -> list[int]:
        return [int(f["n"]) for f in self.frames[pbx] if f.get("event") == event]

    def connected(self, pbx: str) -> list[dict[str, Any]]:
        return [c for c in self.controls if c["pbx"] == pbx and c["type"] == "connected"]


def push_numbered(fake: FakeAsterisk, start: int, count: int, per_second: float | None = None, pad: int = 0) -> None:
    """UserEvents numbered ``start``.. (header N), optionally paced, with ``pad`` bytes more each."""
    began = time.monotonic()
    extra = {"Pad": "x" * pad} if pad else {}
    for i in range(start, start + count):
        fake.push_event("UserEvent", UserEvent="numbered", N=str(i), **extra)
        if per_second is not None:
            ahead = (i - start + 1) / per_second - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)


async def stored(nats: NatsServer, stream: str = "AMI") -> list[tuple[str, dict[str, str], bytes]]:
    """Every message the stream holds now: (subject, headers, payload), in stream order."""
    import nats as nats_py
    from nats.js import api

    nc = await nats_py.connect(nats.url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        total = info.state.messages
        config = api.ConsumerConfig(ack_policy=api.AckPolicy.NONE, inactive_threshold=30, mem_storage=True)
        sub = await js.pull_subscribe("ami.>", stream=stream, config=config)
        out: list[tuple[str, dict[str, str], bytes]] = []
        while len(out) < total:
            for msg in await sub.fetch(min(500, total - len(out)), timeout=5):
                out.append((msg.subject, dict(msg.headers or {}), msg.data))
        return out
    finally:
        await nc.close()


def numbers_per_epoch(messages: list[tuple[str, dict[str, str], bytes]], pbx: str) -> dict[int, list[int]]:
    """The frame numbers of ``pbx`` stored, per epoch, in stream order (a number twice: stored twice)."""
    per: dict[int, list[int]] = defaultdict(list)
    for subject, headers, _ in messages:
        if headers.get("Ami-Pbx") != pbx or subject.endswith(".ctl"):
            continue
        first, last = int(headers["Ami-Seq"]), int(headers["Ami-Seq-Last"])
        per[int(headers["Ami-Epoch"])].extend(range(first, last + 1))
    return dict(per)


async def gather_all(*aws: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*aws))
