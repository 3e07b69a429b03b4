"""One contract, two shells: the eleven lifecycle defects of the issue, each on the threaded client (driven
with threads, as its users write code) and on the asyncio client (driven from coroutines, also under
``asyncio.wait_for``, ``asyncio.timeout``, ``TaskGroup`` and ``gather``), against a real FakeAsterisk on
127.0.0.1. Negative checks wait for an explicit condition (the client's own counters), never a blind sleep.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import CancelledError
from typing import Any

import pytest

from asterisk_ami import (
    ActionTimeoutError,
    AsteriskAmi,
    AuthenticationError,
    NotConnectedError,
    WriteBufferFullError,
    WriteTimeoutError,
)
from asterisk_ami import asyncio as ami_asyncio
from asterisk_ami.testing import EventList, FakeAsterisk

from ..helpers import Recorder, client_threads, free_port, wait_until

SHELLS = ["threaded", "asyncio"]
BIG = {"Action": "UserEvent", "UserEvent": "fill", **{f"H{i}": "x" * 900 for i in range(100)}}  # ~93 KB


def run(coro: Coroutine[Any, Any, None], timeout: float = 30) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


def options(fake: FakeAsterisk, **extra: Any) -> dict[str, Any]:
    return {**fake.client_options(), **extra}


def push_user_events(fake: FakeAsterisk, n: int) -> threading.Thread:
    """Push ``n`` numbered UserEvents from a thread of its own (its writes block while the client reads nothing)."""

    def push() -> None:
        for i in range(n):
            if not fake.push_event("UserEvent", UserEvent="n", N=str(i)):
                return

    thread = threading.Thread(target=push, name="test-push", daemon=True)
    thread.start()
    return thread


async def until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# -- 1. keepalive while the client itself holds reading back ------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_keepalive_never_times_out_while_a_full_stream_holds_reading_back(fake: FakeAsterisk, shell: str) -> None:
    opts = options(fake, ping_interval=0.2, ping_timeout=0.2)
    if shell == "threaded":
        with AsteriskAmi(**opts) as ami:
            rec = Recorder(ami, data=False)
            stream = ami.events("UserEvent", maxsize=5)
            pusher = push_user_events(fake, 50)
            # held back for 1.5 s: seven ping intervals, each long enough to time a Ping out
            wait_until(lambda: ami.stats["blocked_seconds"] > 1.5, 10, "1.5 s of reading held back")
            assert ami.connected and rec.count("ami_socket_timeout") == 0
            got = [int(stream.get(5)["n"]) for _ in range(50)]  # type: ignore[index]
            assert got == list(range(50)) and ami.connected
            pusher.join(5)
        return

    async def main() -> None:
        async with ami_asyncio.AsteriskAmi(**opts) as ami:
            timeouts: list[int] = []
            ami.on("ami_socket_timeout", lambda: timeouts.append(1))
            stream = ami.events("UserEvent", maxsize=5)
            pusher = push_user_events(fake, 50)
            await until(lambda: ami.stats["blocked_seconds"] > 1.5, 10, "1.5 s of reading held back")
            assert ami.connected and timeouts == []
            got = [int((await stream.__anext__())["n"]) for _ in range(50)]  # type: ignore[arg-type]
            assert got == list(range(50)) and ami.connected
            pusher.join(5)

    run(main())


# -- 2. action deadlines fire on time while reading is held back -----------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_an_action_times_out_on_time_while_reading_is_held_back(fake: FakeAsterisk, shell: str) -> None:
    fake.respond("Silent", None)  # never answered
    if shell == "threaded":
        release = threading.Event()
        with AsteriskAmi(**options(fake, max_queued_frames=10)) as ami:
            ami.on("UserEvent", lambda frame: release.wait(10))  # a handler that does not keep up
            pusher = push_user_events(fake, 200)
            wait_until(lambda: ami.stats["blocked_episodes"] >= 1, 5, "the reader to wait for room")
            future = ami.action({"Action": "Silent"}, timeout=0.3)
            try:
                # it fails while the handler still holds everything: the deadline did not wait for room
                assert isinstance(future.exception(timeout=5), ActionTimeoutError)
                assert not release.is_set() and ami.stats["blocked_episodes"] >= 1
            finally:
                release.set()
            pusher.join(10)
        return

    async def main() -> None:
        async with ami_asyncio.AsteriskAmi(**options(fake)) as ami:
            stream = ami.events("UserEvent", maxsize=5)
            pusher = push_user_events(fake, 200)
            await until(lambda: stream.full, 5, "the stream to fill")
            with pytest.raises(ActionTimeoutError):
                await asyncio.wait_for(ami.action({"Action": "Silent"}, timeout=0.3), 5)
            assert stream.full  # nobody read: reading was still held back
            stream.close()
            pusher.join(10)

    run(main())


# -- 3. a login-actions provider may call send() ---------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_a_login_actions_provider_that_sends_does_not_deadlock(fake: FakeAsterisk, shell: str) -> None:
    before = client_threads()
    if shell == "threaded":
        ami = AsteriskAmi(**options(fake))

        def provider() -> list[dict[str, str]]:
            ami.send({"Action": "UserEvent", "UserEvent": "from-provider"})
            return [{"Action": "UserEvent", "UserEvent": "returned"}]

        ami.add_login_actions(provider)
        ami.connect_and_wait(5)
        assert fake.wait_for_action("UserEvent")["userevent"] == "returned"
        assert fake.wait_for_action("UserEvent")["userevent"] == "from-provider"
        ami.destroy(timeout=2)
        assert not (client_threads() - before), "the reader outlived destroy()"
        return

    async def main() -> None:
        ami = ami_asyncio.AsteriskAmi(**options(fake))

        def provider() -> list[dict[str, str]]:
            ami.send({"Action": "UserEvent", "UserEvent": "from-provider"})
            return [{"Action": "UserEvent", "UserEvent": "returned"}]

        ami.add_login_actions(provider)
        await asyncio.wait_for(ami.connect(), 5)
        await asyncio.to_thread(fake.wait_for_action, "UserEvent")
        assert await asyncio.to_thread(fake.wait_for_action, "UserEvent")
        ami.destroy()
        await asyncio.wait_for(ami.wait_closed(), 2)

    run(main())


# -- 4. write flow control against a server that stops reading ----------------------------------------------


def test_asyncio_writes_stay_bounded_and_action_waits_for_room(fake: FakeAsterisk) -> None:
    async def main() -> None:
        async with ami_asyncio.AsteriskAmi(**options(fake, max_write_bytes=1 << 20)) as ami:
            fake.stall(True)
            accepted = 0
            with pytest.raises(WriteBufferFullError, match="drain"):
                for _ in range(600):  # 55 MB offered
                    ami.send(BIG)
                    accepted += 1
                    await asyncio.sleep(0)
            # what was accepted fits the mark plus what the kernel's socket buffers took
            assert accepted * 93_000 < 32_000_000, accepted
            waiting = ami.action({"Action": "Ping"}, timeout=30)  # waits for room, not refused
            drained = asyncio.ensure_future(ami.drain())
            await asyncio.sleep(0.1)
            assert not waiting.done() and not drained.done()
            fake.stall(False)
            await asyncio.wait_for(drained, 20)
            assert (await asyncio.wait_for(waiting, 20))["ping"] == "Pong"
            assert ami.send({"Action": "Ping"})

    run(main(), 60)


def test_threaded_write_that_cannot_complete_raises_and_ends_the_connection(fake: FakeAsterisk) -> None:
    with AsteriskAmi(**options(fake, write_timeout=0.5)) as ami:
        rec = Recorder(ami, data=False)
        fake.stall(True)
        with pytest.raises(WriteTimeoutError, match="write_timeout"):
            for _ in range(1200):  # 110 MB offered: the kernel's buffers fill long before
                ami.send(BIG)
        rec.wait_for("ami_socket_close", timeout=5)
        assert not ami.connected
        with pytest.raises(NotConnectedError):
            ami.send({"Action": "Ping"})
        fake.stall(False)


# -- 5. cancellable futures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_an_action_future_can_be_cancelled_and_its_entry_goes(fake: FakeAsterisk, shell: str) -> None:
    fake.respond("Silent", None)
    fake.respond("Originate", None)
    if shell == "threaded":
        with AsteriskAmi(**options(fake)) as ami:
            future = ami.action({"Action": "Silent"})
            assert ami.stats["pending_actions"] == 1
            assert future.cancel() and future.cancelled()
            assert ami.stats["pending_actions"] == 0
            with pytest.raises(CancelledError):
                future.result(0)
            origin = ami.originate("Local/1@x", application="Wait", data="1")
            assert origin.cancel() and ami.stats["pending_actions"] == 0
        return

    async def main() -> None:
        async with ami_asyncio.AsteriskAmi(**options(fake)) as ami:
            future = ami.action({"Action": "Silent"})
            assert ami.stats["pending_actions"] == 1
            assert future.cancel()
            await asyncio.sleep(0)  # done-callbacks run on the loop
            assert ami.stats["pending_actions"] == 0

    run(main())


# -- 6. identifier is in every frame before anyone sees it --------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_identifier_is_in_the_result_response_and_events_when_request_returns(fake: FakeAsterisk, shell: str) -> None:
    fake.respond(
        "CoreShowChannels",
        EventList([{"Channel": f"PJSIP/{i}"} for i in range(50)], "CoreShowChannelsComplete", event="CoreShowChannel"),
    )

    def check(result: Any) -> None:
        assert result["identifier"] == "pbx-7" and result.response["identifier"] == "pbx-7"
        assert len(result.events) == 50 and all(e["identifier"] == "pbx-7" for e in result.events)
        assert result.complete is not None and result.complete["identifier"] == "pbx-7"

    if shell == "threaded":
        with AsteriskAmi(**options(fake, identifier="pbx-7")) as ami:
            for _ in range(10):
                check(ami.request({"Action": "CoreShowChannels"}, timeout=5))
        return

    async def main() -> None:
        async with ami_asyncio.AsteriskAmi(**options(fake, identifier="pbx-7")) as ami:
            for _ in range(10):
                check(await ami.request({"Action": "CoreShowChannels"}, timeout=5))

    run(main())


# -- 7. nothing after the login answer is missed by a subscription made right after connecting ------------


def _asyncio_connects() -> list[str]:
    ways = ["await", "wait_for", "gather"]
    if sys.version_info >= (3, 11):
        ways += ["timeout", "taskgroup"]
    return ways


@pytest.mark.parametrize("way", _asyncio_connects())
def test_asyncio_stream_made_right_after_connect_gets_fully_booted(fake: FakeAsterisk, way: str) -> None:
    async def main() -> None:
        ami = ami_asyncio.AsteriskAmi(**options(fake))
        if way == "await":
            await ami.connect()
        elif way == "wait_for":
            await asyncio.wait_for(ami.connect(), 5)
        elif way == "gather":
            await asyncio.gather(asyncio.create_task(ami.connect()))
        elif way == "timeout":
            async with asyncio.timeout(5):  # type: ignore[attr-defined,unused-ignore]
                await ami.connect()
        else:
            async with asyncio.TaskGroup() as group:  # type: ignore[attr-defined,unused-ignore]
                group.create_task(ami.connect())
        stream = ami.events()
        seen: list[str] = []
        ami.on("FullyBooted", lambda frame: seen.append(frame["event"]))
        frame = await asyncio.wait_for(stream.__anext__(), 5)
        assert frame["event"] == "FullyBooted" and seen == ["FullyBooted"]
        await ami.disconnect()

    run(main())


def test_threaded_stream_made_right_after_the_login_wait_gets_fully_booted(fake: FakeAsterisk) -> None:
    with AsteriskAmi(**options(fake)) as ami:
        stream = ami.events()
        frame = stream.get(5)
        assert frame is not None and frame["event"] == "FullyBooted"
    ami = AsteriskAmi(**options(fake))
    ami.connect_and_wait(5)
    seen: list[str] = []
    ami.on("FullyBooted", lambda frame: seen.append(frame["event"]))
    wait_until(lambda: seen == ["FullyBooted"], 5, "FullyBooted for a handler added right after")
    ami.disconnect()


# -- 8. disconnect() writes what was queued before its Logoff --------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_disconnect_right_after_connect_and_send_delivers_every_action(shell: str) -> None:
    with FakeAsterisk(accounts={"admin": "secret"}, login_delay=0.2) as slow:
        opts = options(slow)
        if shell == "threaded":
            ami = AsteriskAmi(**opts)
            ami.connect()
            for i in range(5):
                ami.send({"Action": "UserEvent", "UserEvent": f"e{i}"})
            pinged = ami.action({"Action": "Ping"})
            ami.disconnect()  # the seed's own usage
            assert pinged.result(5)["ping"] == "Pong"
        else:

            async def main() -> None:
                ami = ami_asyncio.AsteriskAmi(**opts)
                connecting = asyncio.ensure_future(ami.connect())
                await asyncio.sleep(0)
                for i in range(5):
                    ami.send({"Action": "UserEvent", "UserEvent": f"e{i}"})
                pinged = ami.action({"Action": "Ping"})
                await ami.disconnect()
                assert (await pinged)["ping"] == "Pong"
                await asyncio.gather(connecting, return_exceptions=True)

            run(main())
        names = [(a["action"], a.get("userevent")) for a in slow.actions]
        assert names == [("Login", None), *[("UserEvent", f"e{i}") for i in range(5)], ("Ping", None), ("Logoff", None)]


@pytest.mark.parametrize("shell", SHELLS)
def test_disconnect_that_cannot_wait_for_the_login_fails_the_queue_with_the_reason(
    shell: str, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeAsterisk(accounts={"admin": "secret"}, login_delay=5) as never, caplog.at_level(logging.WARNING):
        opts = options(never)
        if shell == "threaded":
            ami = AsteriskAmi(**opts)
            ami.connect()
            ami.send({"Action": "UserEvent", "UserEvent": "lost"})
            waiting = ami.action({"Action": "Ping"})
            ami.disconnect(timeout=0.3)
            error = waiting.exception(5)
        else:

            async def main() -> BaseException | None:
                ami = ami_asyncio.AsteriskAmi(**opts)
                connecting = asyncio.ensure_future(ami.connect())
                await asyncio.sleep(0)
                ami.send({"Action": "UserEvent", "UserEvent": "lost"})
                waiting = ami.action({"Action": "Ping"})
                await ami.disconnect(timeout=0.3)
                await asyncio.gather(connecting, return_exceptions=True)
                return waiting.exception()

            box: list[BaseException | None] = []
            run(_collect(main(), box))
            error = box[0]
    assert isinstance(error, NotConnectedError) and "disconnect() gave up" in str(error)
    assert "1 action(s) given to send() were never written" in caplog.text


async def _collect(coro: Coroutine[Any, Any, BaseException | None], box: list[BaseException | None]) -> None:
    box.append(await coro)


# -- 9. send() before connect() ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_send_before_connect_raises_instead_of_losing_the_action(shell: str) -> None:
    if shell == "threaded":
        ami = AsteriskAmi(port=free_port())
        with pytest.raises(NotConnectedError, match="connect"):
            ami.send({"Action": "Ping"})
        assert isinstance(ami.action({"Action": "Ping"}).exception(1), NotConnectedError)
        return

    async def main() -> None:
        ami = ami_asyncio.AsteriskAmi(port=free_port())
        with pytest.raises(NotConnectedError, match="connect"):
            ami.send({"Action": "Ping"})
        with pytest.raises(NotConnectedError):
            await ami.request({"Action": "Ping"})

    run(main())


# -- 10. a refused login is the error the waiters get --------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_a_refused_login_is_what_a_waiting_request_raises(shell: str) -> None:
    with FakeAsterisk(accounts={"admin": "secret"}, auth_fail_delay=0.3) as fake:
        opts = options(fake, password="wrong")
        if shell == "threaded":
            ami = AsteriskAmi(**opts)
            ami.connect()
            with pytest.raises(AuthenticationError):
                ami.request({"Action": "Ping"}, timeout=5)
            with pytest.raises(NotConnectedError) as later:  # after the end: the refusal as its cause
                ami.request({"Action": "Ping"}, timeout=5)
            assert isinstance(later.value.__cause__, AuthenticationError)
            with pytest.raises(AuthenticationError), AsteriskAmi(**opts):
                pass
            return

        async def main() -> None:
            ami = ami_asyncio.AsteriskAmi(**opts)
            with pytest.raises(AuthenticationError):
                await ami.connect()
            with pytest.raises(NotConnectedError) as later:
                await ami.request({"Action": "Ping"})
            assert isinstance(later.value.__cause__, AuthenticationError)

        run(main())


@pytest.mark.parametrize("shell", SHELLS)
def test_a_wrong_port_is_what_a_waiting_request_raises(shell: str) -> None:
    port = free_port()
    if shell == "threaded":
        ami = AsteriskAmi(host="127.0.0.1", port=port)
        ami.connect()
        with pytest.raises(NotConnectedError) as caught:
            ami.request({"Action": "Ping"}, timeout=5)
        assert isinstance(caught.value.__cause__, ConnectionRefusedError)
        with pytest.raises(ConnectionRefusedError), AsteriskAmi(host="127.0.0.1", port=port):
            pass
        return

    async def main() -> None:
        ami = ami_asyncio.AsteriskAmi(host="127.0.0.1", port=port)
        with pytest.raises(ConnectionRefusedError):
            await ami.connect()

    run(main())


# -- 11. a stream made before connect() ends with destroy() ----------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_a_stream_made_before_any_connect_ends_with_destroy(shell: str) -> None:
    if shell == "threaded":
        ami = AsteriskAmi(port=free_port())
        stream = ami.events()
        ended = threading.Event()

        def consume() -> None:
            for _ in stream:
                pass
            ended.set()

        threading.Thread(target=consume, daemon=True).start()
        ami.destroy()
        assert ended.wait(2) and stream.closed
        return

    async def main() -> None:
        ami = ami_asyncio.AsteriskAmi(port=free_port())
        stream = ami.events()

        async def consume() -> int:
            return len([frame async for frame in stream])

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0)
        ami.destroy()
        assert await asyncio.wait_for(task, 2) == 0

    run(main())
