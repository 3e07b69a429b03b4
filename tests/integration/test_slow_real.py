"""A client whose handlers stop keeping up, against a real Asterisk 22 with its default ``writetimeout``
(100 ms): a second connection floods UserEvents of about 1 KB while a handler (threaded) or an
``events()`` consumer (asyncio) is stuck for 4 s. The warning comes within a second, Asterisk drops the
session, the close is logged as probably that, the client reconnects, and ``stats`` shows it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import pytest

from asterisk_ami import AsteriskAmi
from asterisk_ami import asyncio as ami_asyncio

from ..helpers import wait_until

if TYPE_CHECKING:
    from .conftest import AsteriskServer

STUCK = 4.0
FLOOD = 20_000  # ~22 MB: more than the socket buffers on both sides and the client's queue hold


def flood(server: AsteriskServer) -> None:
    """FLOOD UserEvents of about 1 KB from another connection, as fast as Asterisk takes them."""
    sender = server.logged_in_client(events=False)
    try:
        pad = "x" * 1000
        futures = [sender.action({"Action": "UserEvent", "UserEvent": f"flood{i}", "Pad": pad}) for i in range(FLOOD)]
        for future in futures:
            future.result(30)
    finally:
        sender.destroy()


def warnings_of(caplog: pytest.LogCaptureFixture, needle: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if needle in r.getMessage() and r.levelno == logging.WARNING]


def check_outcome(caplog: pytest.LogCaptureFixture, stuck_at: float, stats: dict[str, Any], who: str) -> None:
    [warning] = warnings_of(caplog, "blocked for")
    assert warning.created - stuck_at < 1.0, "the warning came more than a second after the handler got stuck"
    assert "writetimeout" in warning.getMessage() and who in warning.getMessage()
    assert warnings_of(caplog, "Asterisk closed the connection, probably because")
    assert stats["reconnects"] >= 1 and stats["logins"] >= 2
    assert stats["blocked_seconds"] > 1.0 and stats["slow_handler_warnings"] >= 1


def test_threaded_warns_before_asterisk_drops_it_then_reconnects(
    asterisk_server: AsteriskServer, caplog: pytest.LogCaptureFixture
) -> None:
    ami = AsteriskAmi(**asterisk_server.options(reconnect=True, reconnect_after=200))
    logins: list[float] = []
    ami.on("ami_login", lambda ok, frame: logins.append(time.time()) if ok else None)
    stuck_at: list[float] = []

    def stuck_handler(frame: dict[str, Any]) -> None:
        if not stuck_at:
            stuck_at.append(time.time())
            time.sleep(STUCK)

    ami.on("UserEvent", stuck_handler)
    try:
        with caplog.at_level(logging.WARNING, logger="asterisk_ami"):
            ami.connect()
            wait_until(lambda: bool(logins), 15, "the login")
            flood(asterisk_server)
            wait_until(lambda: len(logins) >= 2 and ami.connected, 30, "the reconnect")
            stats = ami.stats
        check_outcome(caplog, stuck_at[0], stats, "stuck_handler")
        assert stats["slowest_handler"].endswith("stuck_handler") and stats["slowest_handler_seconds"] >= STUCK
    finally:
        ami.destroy()


def test_asyncio_warns_before_asterisk_drops_it_then_reconnects(
    asterisk_server: AsteriskServer, caplog: pytest.LogCaptureFixture
) -> None:
    stuck_at: list[float] = []

    async def main() -> dict[str, Any]:
        ami = ami_asyncio.AsteriskAmi(**asterisk_server.options(reconnect=True, reconnect_after=200))
        logins: list[float] = []
        ami.on("ami_login", lambda ok, frame: logins.append(time.time()) if ok else None)
        await ami.connect()

        async def consumer() -> None:
            async for _frame in ami.events("UserEvent"):
                if not stuck_at:
                    stuck_at.append(time.time())
                    await asyncio.sleep(STUCK)

        task = asyncio.create_task(consumer(), name="stuck-consumer")
        try:
            await asyncio.to_thread(flood, asterisk_server)
            for _ in range(300):
                if len(logins) >= 2 and ami.connected:
                    break
                await asyncio.sleep(0.1)
            return ami.stats
        finally:
            task.cancel()
            ami.destroy()

    with caplog.at_level(logging.WARNING, logger="asterisk_ami"):
        stats = asyncio.run(asyncio.wait_for(main(), 60))
    check_outcome(caplog, stuck_at[0], stats, "stuck-consumer")
