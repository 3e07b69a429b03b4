"""``asterisk_ami.asyncio.AsteriskAmi`` on its own loop against FakeAsterisk, over real loopback sockets.

What the shell adds: awaited connect()/request()/disconnect(), coroutine handlers, ``events()`` and its
back-pressure, frames that arrive with the login answer. The fault table runs on both shells in
tests/test_faults.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from asterisk_ami import (
    ActionError,
    ActionResult,
    ActionTimeoutError,
    AuthenticationError,
    ConnectionLostError,
    ConnectTimeoutError,
    NotConnectedError,
)
from asterisk_ami.asyncio import AsteriskAmi
from asterisk_ami.testing import EventList, FakeAsterisk, encode_frame

from .helpers import free_port, rss_bytes

SECRET = "aio-Secret-9"
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@pytest.fixture
def fake() -> Any:
    with FakeAsterisk(accounts={"admin": SECRET}) as server:
        yield server


def own_threads() -> set[threading.Thread]:
    """This process's threads but the fake server's."""
    return {t for t in threading.enumerate() if not t.name.startswith("fake-asterisk")}


def client(fake: FakeAsterisk, **options: Any) -> AsteriskAmi:
    return AsteriskAmi(host=fake.host, port=fake.port, username="admin", password=SECRET, **options)


# -- construction, connect, disconnect ---------------------------------------------------------------------


def test_same_options_as_the_threaded_client_and_no_secret_in_repr() -> None:
    with pytest.raises(TypeError, match="reconect"):
        AsteriskAmi(reconect=True)
    ami = AsteriskAmi(username="admin", password=SECRET, ssl=True)
    assert ami.options.port == 5039 and SECRET not in repr(ami) and SECRET not in repr(ami.options)
    assert ami.state == "disconnected" and not ami.connected


def test_async_with_connects_logs_in_and_logs_off(fake: FakeAsterisk) -> None:
    async def main() -> None:
        threads = own_threads()
        async with client(fake) as ami:
            assert ami.connected and ami.state == "connected"
            assert ami.banner == "Asterisk Call Manager/11.0.0" and ami.protocol_version == "11.0.0"
            assert own_threads() == threads  # no thread of its own
            assert (await ami.request({"Action": "Ping"}))["ping"] == "Pong"
        assert ami.state == "disconnected"
        assert [a["action"] for a in fake.actions][-1] == "Logoff"

    run(main())


def test_a_refused_login_raises_authentication_error_and_is_not_retried(fake: FakeAsterisk) -> None:
    async def main() -> None:
        ami = AsteriskAmi(host=fake.host, port=fake.port, username="admin", password="wrong", reconnect=True)
        logins: list[bool] = []
        ami.on("ami_login", lambda ok, frame: logins.append(ok))
        with pytest.raises(AuthenticationError):
            await ami.connect()
        await asyncio.sleep(0.2)
        assert logins == [False] and fake.connection_count == 1 and ami.state == "disconnected"

    run(main())


def test_without_reconnect_a_failed_attempt_raises_its_error() -> None:
    async def main() -> None:
        port = free_port()
        with pytest.raises(ConnectionRefusedError):
            await AsteriskAmi(host="127.0.0.1", port=port).connect()
        with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never speaks
            ami = AsteriskAmi(host="127.0.0.1", port=silent.getsockname()[1], connect_timeout=0.3)
            with pytest.raises(ConnectTimeoutError):
                await ami.connect()
            assert ami.state == "disconnected"

    run(main())


def test_with_reconnect_connect_waits_until_a_server_answers() -> None:
    async def main() -> None:
        port = free_port()
        ami = AsteriskAmi(
            host="127.0.0.1", port=port, password=SECRET, username="admin", reconnect=True, reconnect_after=20
        )
        errors: list[BaseException] = []
        ami.on("ami_socket_error", errors.append)
        connecting = asyncio.ensure_future(ami.connect())
        await asyncio.sleep(0.3)
        assert not connecting.done() and len(errors) >= 2
        with FakeAsterisk(accounts={"admin": SECRET}, port=port):
            await asyncio.wait_for(connecting, 5)
            assert ami.connected
            await ami.disconnect()

    run(main())


def test_a_cancelled_connect_stops_the_client() -> None:
    async def main() -> None:
        port = free_port()
        ami = AsteriskAmi(host="127.0.0.1", port=port, reconnect=True, reconnect_after=20)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ami.connect(), 0.2)
        await asyncio.sleep(0.1)
        assert ami.state == "disconnected"
        assert isinstance(ami.action({"Action": "Ping"}).exception(), NotConnectedError)

    run(main())


# -- actions ---------------------------------------------------------------------------------------------


def test_actions_results_errors_and_lists(fake: FakeAsterisk) -> None:
    fake.respond(
        "CoreShowChannels", EventList([{"Channel": "PJSIP/1"}], "CoreShowChannelsComplete", event="CoreShowChannel")
    )

    async def main() -> None:
        async with client(fake) as ami:
            listed = await ami.request({"Action": "CoreShowChannels"})
            assert [e["channel"] for e in listed.events] == ["PJSIP/1"] and listed.complete is not None
            future = ami.action({"Action": "Ping"})
            assert isinstance(future, asyncio.Future) and isinstance(await future, ActionResult)
            with pytest.raises(ActionError):
                await ami.request({"Action": "Bogus"})
            answers: list[Any] = []
            action_id = ami.send({"Action": "Ping"}, answers.append)
            while not answers:
                await asyncio.sleep(0.01)
            assert answers[0]["actionid"] == action_id

    run(main())


def test_timeout_cancel_and_a_close_with_actions_in_flight(fake: FakeAsterisk) -> None:
    fake.respond("Hang", lambda action, session: None)  # never answered

    async def main() -> None:
        async with client(fake) as ami:
            with pytest.raises(ActionTimeoutError):
                await ami.request({"Action": "Hang"}, timeout=0.2)
            waiting = asyncio.ensure_future(ami.request({"Action": "Hang"}, timeout=None))
            await asyncio.sleep(0.05)
            assert ami.stats["pending_actions"] == 1
            waiting.cancel()
            await asyncio.sleep(0)
            assert ami.stats["pending_actions"] == 0  # cancelling the request removed its entry
            in_flight = [ami.action({"Action": "Hang"}) for _ in range(100)]
            fake.wait_for(lambda: sum(1 for a in fake.actions if a.get("action") == "Hang") >= 102)
            fake.drop(rst=True)
            results = await asyncio.gather(*in_flight, return_exceptions=True)
            assert all(isinstance(r, ConnectionLostError) for r in results)
            assert ami.stats["pending_actions"] == 0

    run(main())


def test_send_with_no_connection_is_unwritable() -> None:
    async def main() -> None:
        ami = AsteriskAmi()
        seen: list[str] = []
        ami.on("ami_socket_unwritable", lambda: seen.append("unwritable"))
        with pytest.raises(NotConnectedError, match="connect"):  # never an ActionID for an action that goes nowhere
            ami.send({"Action": "Ping"})
        assert seen == ["unwritable"]
        assert isinstance(ami.action({"Action": "Ping"}).exception(), NotConnectedError)

    run(main())


# -- handlers ------------------------------------------------------------------------------------------


def test_plain_and_coroutine_handlers_and_raising_ones(fake: FakeAsterisk, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with client(fake) as ami:
            order: list[str] = []
            errors: list[BaseException] = []

            def plain(frame: dict[str, Any]) -> None:
                order.append("plain " + frame["n"])

            async def coroutine(frame: dict[str, Any]) -> None:
                await asyncio.sleep(0)
                order.append("coroutine " + frame["n"])

            def bad(frame: dict[str, Any]) -> None:
                raise RuntimeError("plain handler bug")

            async def bad_coroutine(frame: dict[str, Any]) -> None:
                raise ValueError("coroutine handler bug")

            for f in (bad, plain, bad_coroutine, coroutine):
                ami.on("Tick", f)
            ami.on("error", errors.append)
            for n in range(3):
                fake.push_event("Tick", N=str(n))
            while len(order) < 6:
                await asyncio.sleep(0.01)
            assert [o for o in order if o.startswith("plain")] == ["plain 0", "plain 1", "plain 2"]
            assert sorted(o for o in order if o.startswith("coroutine")) == [
                "coroutine 0",
                "coroutine 1",
                "coroutine 2",
            ]
            await asyncio.sleep(0.05)
            assert sorted(type(e).__name__ for e in errors) == ["RuntimeError"] * 3 + ["ValueError"] * 3
            assert (await ami.request({"Action": "Ping"}))["ping"] == "Pong"

    with caplog.at_level(logging.ERROR, logger="asterisk_ami"):
        run(main())
    assert "plain handler bug" in caplog.text and "coroutine handler bug" in caplog.text
    assert caplog.text.count("Traceback") >= 6


# -- events() --------------------------------------------------------------------------------------------


def test_events_by_name_and_all_events(fake: FakeAsterisk) -> None:
    async def main() -> None:
        async with client(fake) as ami:
            named = ami.events("Newchannel", "Hangup")
            every = ami.events()
            for name in ("Newchannel", "VarSet", "Hangup"):
                fake.push_event(name, Channel="PJSIP/1")
            await ami.request({"Action": "Ping"})  # a response: in no stream
            got = [(await named.__anext__())["event"] for _ in range(2)]
            assert got == ["Newchannel", "Hangup"]
            # FullyBooted came with the login answer: held until connect() had returned
            events = [(await every.__anext__())["event"] for _ in range(4)]
            assert events == ["FullyBooted", "Newchannel", "VarSet", "Hangup"]
            assert len(every) == 0
            async with ami.events("X") as scoped:
                fake.push_event("X", N="1")
                async for frame in scoped:
                    assert frame["n"] == "1"
                    break
            assert scoped.closed
        # the client's end ends every stream
        assert [frame async for frame in named] == []

    run(main())


def test_frames_with_the_login_answer_reach_a_stream_made_right_after_connect() -> None:
    total = 200_000
    blob = b"".join(encode_frame({"Event": "Seq", "Seq": n}) for n in range(total))
    with socket.create_server(("127.0.0.1", 0)) as server:

        def serve() -> None:  # the login answer, FullyBooted and every event in one write
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"Asterisk Call Manager/11.0.0\r\n")
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                action_id = data.split(b"ActionID: ")[1].split(b"\r\n")[0]
                answer = b"Response: Success\r\nActionID: %s\r\nMessage: Authentication accepted\r\n\r\n" % action_id
                conn.sendall(answer + encode_frame({"Event": "FullyBooted", "Status": "Fully Booted"}) + blob)
                conn.recv(4096)

        threading.Thread(target=serve, daemon=True).start()

        async def main() -> None:
            ami = AsteriskAmi(host="127.0.0.1", port=server.getsockname()[1])
            await ami.connect()
            stream = ami.events()
            first = await stream.__anext__()
            assert first["event"] == "FullyBooted"
            n = 0
            async for frame in stream:
                assert frame["seq"] == str(n)
                n += 1
                if n == total:
                    break
            ami.destroy()

        run(main())


def test_a_full_stream_stops_reading_and_nothing_is_lost(fake: FakeAsterisk) -> None:
    total, per_chunk, bound = 100_000, 1000, 50

    async def main() -> None:
        async with client(fake) as ami:
            stream = ami.events("Fill", maxsize=bound)
            (session,) = fake.wait_for_clients(1)
            sent = [0]

            def push() -> None:
                for start in range(0, total, per_chunk):
                    chunk = b"".join(
                        b"Event: Fill\r\nN: %d\r\nPad: %s\r\n\r\n" % (n, b"p" * 100)
                        for n in range(start, start + per_chunk)
                    )
                    if not session.send_raw(chunk):
                        return
                    sent[0] += 1

            rss_before = rss_bytes()
            pusher = threading.Thread(target=push, daemon=True)
            pusher.start()
            progress: list[int] = []
            while len(progress) < 20 or progress[-1] != progress[-20]:
                await asyncio.sleep(0.01)  # the consumer does nothing: the server's writes must block
                progress.append(sent[0])
            assert sent[0] < total // per_chunk, "the server was never pushed back"
            assert len(stream) <= bound + 1000  # the bound plus at most one read
            assert rss_bytes() - rss_before < 20_000_000
            for n in range(total):
                assert (await stream.__anext__())["n"] == str(n)
            pusher.join(5)

    run(main(), timeout=60)


# -- load --------------------------------------------------------------------------------------------------


def test_one_million_events_through_ami_data_count_and_checksum_exact() -> None:
    total, per_chunk = 1_000_000, 20_000
    with FakeAsterisk(accounts={"admin": SECRET}) as fake:

        async def main() -> None:
            async with client(fake) as ami:
                seen = [0, 0]
                done = asyncio.get_running_loop().create_future()

                def count(frame: dict[str, Any]) -> None:
                    if frame.get("event") == "Seq":
                        n = int(frame["seq"])
                        if n != seen[0] and not done.done():
                            done.set_exception(AssertionError(f"expected {seen[0]}, got {n}"))
                        seen[0] += 1
                        seen[1] = (seen[1] + n * 7) & 0xFFFFFFFF
                        if seen[0] == total and not done.done():
                            done.set_result(None)

                ami.on("ami_data", count)
                (session,) = fake.wait_for_clients(1)

                def push() -> None:
                    for start in range(0, total, per_chunk):
                        session.send_raw(
                            b"".join(b"Event: Seq\r\nSeq: %d\r\n\r\n" % n for n in range(start, start + per_chunk))
                        )

                started = time.monotonic()
                threading.Thread(target=push, daemon=True).start()
                await done
                print(f"\nasyncio: 1,000,000 events in {time.monotonic() - started:.2f} s")
                assert seen == [total, sum(n * 7 for n in range(total)) & 0xFFFFFFFF]

        run(main(), timeout=60)


def test_64_clients_in_one_loop_20000_actions_all_correlated() -> None:
    n_clients, total = 64, 20_000
    with FakeAsterisk(accounts={"admin": SECRET}, authlimit=None) as fake:
        fake.respond("Echo", lambda action, session: {"Response": "Success", "Token": action["token"]})

        async def main() -> None:
            clients = [client(fake, events=False) for _ in range(n_clients)]
            await asyncio.gather(*(c.connect() for c in clients))

            async def work(index: int, ami: AsteriskAmi) -> list[tuple[str, str]]:
                tokens = [f"{index}:{k}" for k in range(index, total, n_clients)]
                results = await asyncio.gather(
                    *(ami.request({"Action": "Echo", "Token": t}, timeout=30) for t in tokens)
                )
                return [(t, r["token"]) for t, r in zip(tokens, results, strict=True)]

            pairs = [p for ps in await asyncio.gather(*(work(i, c) for i, c in enumerate(clients))) for p in ps]
            assert len(pairs) == total and all(sent == got for sent, got in pairs)
            assert all(c.stats["pending_actions"] == 0 for c in clients)
            await asyncio.gather(*(c.disconnect() for c in clients))
            for session in fake.sessions:
                assert len({str(a["token"]).split(":")[0] for a in session.actions if a.get("action") == "Echo"}) <= 1

        run(main(), timeout=90)


def test_wait_closed_returns_once_the_client_has_stopped_for_good(fake: FakeAsterisk) -> None:
    async def main() -> None:
        ami = AsteriskAmi(**fake.client_options(), reconnect=True, reconnect_after=20)
        await asyncio.wait_for(ami.wait_closed(), 1)  # never ran: at once
        await ami.connect()
        waiter = asyncio.ensure_future(ami.wait_closed())
        await asyncio.sleep(0.05)
        assert not waiter.done()  # connected, and a drop only means a reconnect
        fake.drop()
        await asyncio.sleep(0.1)
        assert not waiter.done()
        ami.destroy()
        await asyncio.wait_for(waiter, 5)
        assert ami.state == "disconnected"
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert all("bounded" in repr(t.get_coro()) for t in tasks), tasks  # only this test's own wrapper

    run(main())
