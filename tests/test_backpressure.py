"""A warning before Asterisk drops a slow client: the rules (blocking.BlockWatch, no clock), then both
shells against FakeAsterisk with a handler or an ``events()`` consumer that stops keeping up."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from asterisk_ami import AsteriskAmi
from asterisk_ami import asyncio as ami_asyncio
from asterisk_ami.backpressure import AFTERMATH, BlockWatch
from asterisk_ami.testing import FakeAsterisk

from .helpers import Recorder, wait_until

# -- the rules ---------------------------------------------------------------------------------------------


def test_one_warning_per_episode_once_it_lasts_the_threshold() -> None:
    watch = BlockWatch(0.05)
    watch.block(10.0)
    assert watch.next_check(10.0) == pytest.approx(10.05)
    assert watch.check(10.02, "on_hangup", 0.02) is None  # not yet
    message = watch.check(10.06, "on_hangup", 0.06)
    assert message is not None
    assert "blocked for 60 ms" in message and "slowest handler: on_hangup (busy 60 ms)" in message
    assert "writetimeout" in message and "slow_handler_warning=0.05" in message
    assert watch.check(10.5, "on_hangup", 0.5) is None and watch.next_check(10.5) is None  # once per episode
    watch.unblock(11.0)
    assert watch.stats(11.0) == {"blocked_seconds": 1.0, "blocked_episodes": 1, "slow_handler_warnings": 1}
    watch.block(20.0)  # a new episode warns again
    assert watch.check(20.1) is not None
    assert watch.stats(20.2)["blocked_seconds"] == pytest.approx(1.2)


def test_a_short_episode_is_counted_never_warned_about() -> None:
    watch = BlockWatch(0.05)
    watch.block(1.0)
    assert watch.check(1.04, "f", 0.04) is None
    watch.unblock(1.045)
    assert watch.warnings == 0 and watch.episodes == 1 and watch.blocked_seconds == pytest.approx(0.045)
    assert watch.server_closed(1.1) is None  # not for a reader that was hardly blocked


def test_no_threshold_no_warning_but_still_counted() -> None:
    watch = BlockWatch(None)
    watch.block(0.0)
    assert watch.next_check(0.0) is None and watch.check(100.0, "f", 100.0) is None
    watch.unblock(100.0)
    assert watch.blocked_seconds == 100.0


def test_the_slowest_handler_of_the_episode_is_named() -> None:
    watch = BlockWatch(0.1)
    watch.block(0.0)
    watch.check(0.02, "quick", 0.001)
    watch.check(0.05, "slow", 0.04)
    message = watch.check(0.12, "quick", 0.002)
    assert message is not None and "slowest handler: slow (busy 40 ms)" in message


def test_a_close_during_or_right_after_a_warned_episode_is_probably_that() -> None:
    watch = BlockWatch(0.05)
    watch.block(0.0)
    watch.check(0.06, "on_event", 0.06)
    said = watch.server_closed(0.5)  # still blocked
    assert said is not None and "probably" in said and "500 ms" in said and "on_event was the slowest" in said
    watch.unblock(4.0)
    assert watch.server_closed(4.1) is None  # said once
    watch.block(10.0)
    watch.check(10.1, "on_event", 0.1)
    watch.unblock(14.0)
    assert watch.server_closed(14.0 + AFTERMATH / 2) is not None  # right after: still probably that
    watch.block(20.0)
    watch.check(20.1)
    watch.unblock(21.0)
    assert watch.server_closed(21.0 + AFTERMATH + 1) is None  # long after: something else


def test_a_stall_seen_once_it_is_over() -> None:
    watch = BlockWatch(0.05)
    assert watch.stalled(5.0, 0.01, "quick") is None
    message = watch.stalled(9.0, 4.0, "sleepy")
    assert message is not None and "was blocked for 4000 ms" in message and "sleepy (busy 4000 ms)" in message
    assert watch.episodes == 2 and watch.blocked_seconds == pytest.approx(4.01)
    assert watch.server_closed(9.1) is not None


# -- the threaded client -----------------------------------------------------------------------------------


def flood(fake: FakeAsterisk, count: int, done: threading.Event) -> threading.Thread:
    """Push ``count`` events from another thread (a push blocks while the client does not read)."""

    def run() -> None:
        for i in range(count):
            if not fake.push_event("UserEvent", UserEvent=f"flood{i}", Pad="x" * 400):
                break
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_threaded_a_blocked_reader_warns_within_the_episode_and_stats_show_it(
    fake: FakeAsterisk, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    ami = AsteriskAmi(**fake.client_options(), max_queued_frames=50, slow_handler_warning=0.05)
    release = threading.Event()
    warned_while_blocked: list[bool] = []

    def stuck_handler(frame: dict[str, Any]) -> None:
        if frame.get("userevent") == "flood0":
            release.wait(10)

    ami.on("UserEvent", stuck_handler)
    rec = Recorder(ami)
    try:
        with caplog.at_level(logging.WARNING, logger="asterisk_ami"):
            ami.connect()
            rec.wait_for("ami_login")
            pushed = threading.Event()
            flood(fake, 2000, pushed)
            wait_until(lambda: "blocked for" in caplog.text, 5, "the warning")
            warned_while_blocked.append(not release.is_set())
            stats = ami.stats
            assert stats["blocked_episodes"] >= 1 and stats["slow_handler_warnings"] == 1
            release.set()
            assert pushed.wait(20)
            wait_until(lambda: len([f for f in rec.frames if f.get("event") == "UserEvent"]) == 2000, 20, "every event")
        assert warned_while_blocked == [True]  # the warning came while the handler was still stuck
        [warning] = [r for r in caplog.records if "blocked for" in r.getMessage()]
        text = warning.getMessage()
        assert warning.levelname == "WARNING" and "writetimeout" in text and "stuck_handler" in text
        stats = ami.stats
        assert stats["blocked_seconds"] > 0.05 and stats["slowest_handler"].endswith("stuck_handler")
        assert stats["slowest_handler_seconds"] > 0.05 and ami.state == "connected"
    finally:
        release.set()
        ami.destroy()


def test_threaded_a_server_close_while_blocked_is_logged_as_probably_that(
    fake: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    ami = AsteriskAmi(**fake.client_options(), max_queued_frames=20)
    release = threading.Event()
    ami.on("UserEvent", lambda frame: release.wait(10) if frame.get("userevent") == "flood0" else None)
    rec = Recorder(ami)
    try:
        with caplog.at_level(logging.WARNING, logger="asterisk_ami"):
            ami.connect()
            rec.wait_for("ami_login")
            flood(fake, 300, threading.Event())
            wait_until(lambda: "blocked for" in caplog.text, 5, "the warning")
            fake.drop(rst=False)  # as Asterisk does past its writetimeout
            release.set()
            rec.wait_for("ami_socket_close", timeout=10)
        assert "Asterisk closed the connection, probably because" in caplog.text
    finally:
        release.set()
        ami.destroy()


# -- the asyncio client ------------------------------------------------------------------------------------


def test_asyncio_a_full_stream_warns_naming_it(fake: FakeAsterisk, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        ami = ami_asyncio.AsteriskAmi(**fake.client_options(), slow_handler_warning=0.05)
        await ami.connect()
        release = asyncio.Event()
        got = 0

        async def consumer() -> None:
            nonlocal got
            async for _frame in ami.events("UserEvent", maxsize=10):
                got += 1
                if got == 1:
                    await release.wait()

        task = asyncio.create_task(consumer(), name="slow-consumer")
        await asyncio.sleep(0.05)
        pushed = threading.Event()
        flood(fake, 500, pushed)
        for _ in range(100):
            if "blocked for" in caplog.text:
                break
            await asyncio.sleep(0.05)
        warned_while_full = "blocked for" in caplog.text
        release.set()
        while got < 500:
            await asyncio.sleep(0.02)
        task.cancel()
        stats = ami.stats
        ami.destroy()
        assert warned_while_full
        assert stats["blocked_episodes"] >= 1 and stats["blocked_seconds"] > 0.05

    with caplog.at_level(logging.WARNING, logger="asterisk_ami"):
        asyncio.run(asyncio.wait_for(main(), 30))
    [warning] = [r for r in caplog.records if "blocked for" in r.getMessage()]
    assert "events('UserEvent') in task 'slow-consumer'" in warning.getMessage()
    assert "writetimeout" in warning.getMessage()


def test_asyncio_a_plain_handler_holding_the_loop_is_warned_about_after(
    fake: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    def sleepy_handler(frame: dict[str, Any]) -> None:
        time.sleep(0.15)  # blocks the loop: nothing can warn before it returns

    async def main() -> dict[str, Any]:
        ami = ami_asyncio.AsteriskAmi(**fake.client_options())
        ami.on("UserEvent", sleepy_handler)
        await ami.connect()
        fake.push_event("UserEvent", UserEvent="one")
        for _ in range(100):
            if ami.stats["slow_handler_warnings"]:
                break
            await asyncio.sleep(0.02)
        stats = ami.stats
        ami.destroy()
        return stats

    with caplog.at_level(logging.WARNING, logger="asterisk_ami"):
        stats = asyncio.run(asyncio.wait_for(main(), 30))
    [warning] = [r for r in caplog.records if "blocked for" in r.getMessage()]
    assert "was blocked for" in warning.getMessage() and "sleepy_handler" in warning.getMessage()
    assert stats["slowest_handler"].endswith("sleepy_handler") and stats["slowest_handler_seconds"] >= 0.15


def test_an_action_callback_is_timed_as_itself_not_as_the_next_handler(fake: FakeAsterisk) -> None:
    # the answer and the next event in one write, so they reach the dispatch thread in one batch:
    # the callback runs between them, and its time must not be charged to the next frame's handler
    fake.respond("Ping", lambda frame, session: [{"Response": "Success", "Ping": "Pong"}, b"Event: After\r\n\r\n"])
    ami = AsteriskAmi(**fake.client_options())
    done = threading.Event()

    def slow_callback(frame: dict[str, Any]) -> None:
        time.sleep(0.1)

    def quick_handler(frame: dict[str, Any]) -> None:
        if frame.get("event") == "After":
            done.set()

    ami.on("ami_data", quick_handler)
    rec = Recorder(ami)
    try:
        ami.connect()
        rec.wait_for("ami_login")
        ami.send({"Action": "Ping"}, callback=slow_callback)
        assert done.wait(5)
        stats = ami.stats
        assert stats["slowest_handler"].endswith("slow_callback"), stats
        assert 0.1 <= stats["slowest_handler_seconds"] < 1.0
    finally:
        ami.destroy()


def test_asyncio_an_episode_ends_with_the_connection(fake: FakeAsterisk) -> None:
    async def main() -> None:
        # the connection ends while the stream is still full: then nothing is kept from reading any more
        # (and the keepalive never counts a silence the client made itself: it stays connected until then)
        ami = ami_asyncio.AsteriskAmi(**fake.client_options(), ping_interval=0.2, ping_timeout=0.2)
        await ami.connect()
        stream = ami.events("UserEvent", maxsize=5)
        flood(fake, 50, threading.Event())
        for _ in range(200):
            if stream.full and ami.stats["blocked_seconds"] > 0.6:
                break
            await asyncio.sleep(0.02)
        assert ami.state == "connected" and stream.full and ami.stats["blocked_episodes"] == 1
        ami.destroy()
        await ami.wait_closed()
        first = ami.stats["blocked_seconds"]
        await asyncio.sleep(0.2)
        assert ami.stats["blocked_seconds"] == first > 0.6  # the episode ended with the connection
        stream.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_the_option_is_checked() -> None:
    with pytest.raises(ValueError):
        AsteriskAmi(slow_handler_warning=0)
    assert AsteriskAmi(slow_handler_warning=None).options.slow_handler_warning is None
