"""The reconnect policy: fixed delay, or exponential backoff with full jitter between base and cap."""

from __future__ import annotations

import logging
import random
import re
import time

import pytest

from asterisk_ami import AsteriskAmi
from asterisk_ami.reconnect import ReconnectPolicy
from asterisk_ami.testing import FakeAsterisk

from .helpers import Recorder
from .shells import SHELLS, client_factory


def test_fixed_delay_is_reconnect_after_in_seconds() -> None:
    policy = ReconnectPolicy(3000)
    assert [policy.next_delay() for _ in range(5)] == [3.0] * 5
    assert policy.attempt == 5


def test_backoff_grows_stays_between_base_and_cap_and_resets() -> None:
    policy = ReconnectPolicy(100, 2000, rng=random.Random(7))
    delays = [policy.next_delay() for _ in range(12)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(2.0, 0.1 * 2 ** (n - 1))
        assert 0.1 <= delay <= ceiling + 1e-9
    assert delays[0] == 0.1  # the first retry waits exactly the base delay
    assert max(delays[6:]) > 1.0  # it does grow towards the cap
    policy.reset()
    assert policy.next_delay() == 0.1


def test_jitter_spreads_many_clients() -> None:
    delays = set()
    for seed in range(20):
        policy = ReconnectPolicy(100, 10_000, rng=random.Random(seed))
        for _ in range(5):
            delay = policy.next_delay()
        delays.add(round(delay, 6))
    assert len(delays) > 15  # clients restarting together do not come back in step


def _backs_off_then_logs_in(ami: AsteriskAmi, port: int) -> None:
    rec = Recorder(ami)
    started = time.monotonic()
    ami.connect()
    rec.wait_for("ami_socket_error", n=6, timeout=10)
    elapsed = time.monotonic() - started
    # five waits of at least the 20 ms base each; with backoff the attempt counter keeps growing
    assert elapsed >= 5 * 0.020
    assert ami.stats["reconnect_attempt"] >= 5
    with FakeAsterisk(accounts={"admin": "secret"}, port=port):
        rec.wait_for("ami_login", timeout=10)
        assert ami.stats["reconnect_attempt"] == 0


def test_client_backs_off_while_the_server_is_down_and_resets_after_login(caplog: pytest.LogCaptureFixture) -> None:
    with FakeAsterisk(accounts={"admin": "secret"}) as fake:
        port = fake.port
    # nothing listens on port now: every attempt is refused at once
    ami = AsteriskAmi(
        host="127.0.0.1",
        port=port,
        username="admin",
        password="secret",
        reconnect=True,
        reconnect_after=20,
        reconnect_max=160,
    )
    try:
        with caplog.at_level(logging.DEBUG, logger="asterisk_ami"):
            _backs_off_then_logs_in(ami, port)
    finally:
        ami.destroy()
    delays = [float(m) for m in re.findall(r"reconnecting in ([0-9.]+) s", caplog.text)]
    assert len(delays) >= 5
    assert delays[0] == 0.02 and all(0.02 <= d <= 0.16 for d in delays)
    assert max(delays) > 0.03  # a fixed 20 ms delay would never wait longer


@pytest.mark.parametrize("shell", SHELLS)
def test_login_actions_are_written_at_every_login_before_queued_actions(
    shell: str, caplog: pytest.LogCaptureFixture
) -> None:
    asked: list[int] = []

    def provider() -> list[dict[str, str]]:
        asked.append(len(asked) + 1)
        return [{"Action": "Events", "EventMask": "on", "ActionID": f"boot-{len(asked)}"}]

    def broken() -> list[dict[str, str]]:
        raise RuntimeError("provider bug")

    with FakeAsterisk(accounts={"admin": "secret"}) as fake:
        for ami in client_factory(shell, fake, "secret"):
            client = ami(reconnect=True, reconnect_after=20)
            client.add_login_actions(broken)  # logged; the next provider is still asked
            client.add_login_actions(provider)
            rec = Recorder(client)
            with caplog.at_level(logging.ERROR, logger="asterisk_ami"):
                client.connect()
                rec.wait_for("ami_login")
                assert fake.wait_for_action("Events")["actionid"] == "boot-1"
                assert fake.drop() == 1
                rec.wait_for("ami_login", n=2)
                assert fake.wait_for_action("Events")["actionid"] == "boot-2"
            assert "login actions provider raised" in caplog.text
            assert client.request({"Action": "Ping"}, timeout=5)["ping"] == "Pong"
            names = [(a.get("action"), a.get("actionid")) for a in fake.actions if a.get("action") != "Login"]
            assert names[:3] == [("Events", "boot-1"), ("Events", "boot-2"), ("Ping", names[2][1])]
            assert asked == [1, 2]
            client.remove_login_actions(provider)
            assert fake.drop() == 1
            rec.wait_for("ami_login", n=3)
            client.request({"Action": "Ping"}, timeout=5)
            assert asked == [1, 2]
