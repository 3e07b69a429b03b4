"""``asterisk_ami.asyncio.AsteriskAmi`` against a real Asterisk 22 (the ``asterisk_server`` sandbox).

Dialplan (scripts/asterisk_sandbox/config.py): 100 = Answer, UserEvent(TestEvent,Foo: bar), Wait(1), Hangup;
200 = Answer, Wait(30), Hangup. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from asterisk_ami import ActionError, AuthenticationError, ConnectionLostError
from asterisk_ami.asyncio import AsteriskAmi

if TYPE_CHECKING:
    from .conftest import AsteriskServer

T = TypeVar("T")
CALL_TIMEOUT = 15.0


def run(coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def client(server: AsteriskServer, account: str = "admin", **options: Any) -> AsteriskAmi:
    creds = getattr(server.accounts, account)
    options.setdefault("port", server.port)
    return AsteriskAmi(host=server.host, username=creds.username, password=creds.secret, connect_timeout=10, **options)


def originate(exten: str, action_id: str, data: str = "1") -> dict[str, str]:
    return {
        "Action": "Originate",
        "Channel": f"Local/{exten}@default",
        "Application": "Wait",
        "Data": data,
        "Async": "true",
        "ActionID": action_id,
    }


def test_login_plain_md5_and_tls(asterisk_server: AsteriskServer) -> None:
    async def main() -> None:
        async with client(asterisk_server) as ami:
            assert ami.connected and ami.banner and ami.banner.startswith("Asterisk Call Manager/")
            assert (await ami.request({"Action": "Ping"}))["ping"] == "Pong"
        async with client(asterisk_server, auth="md5") as ami:
            assert (await ami.request({"Action": "Ping"}))["ping"] == "Pong"
        if asterisk_server.tls_port is not None:
            tls = client(asterisk_server, port=asterisk_server.tls_port, ssl=asterisk_server.ssl_context())
            async with tls as ami:
                assert (await ami.request({"Action": "Ping"}))["ping"] == "Pong"
        wrong = AsteriskAmi(
            host=asterisk_server.host,
            port=asterisk_server.port,
            username=asterisk_server.accounts.admin.username,
            password=asterisk_server.accounts.wrong_secret,
        )
        with pytest.raises(AuthenticationError):
            await wrong.connect()

    run(main())


def test_fifty_originates_from_concurrent_tasks_each_answer_at_its_sender(asterisk_server: AsteriskServer) -> None:
    async def main() -> None:
        async with client(asterisk_server) as ami:
            responses = ami.events("OriginateResponse")
            ids = [f"aio-{n}-{uuid.uuid4().hex[:8]}" for n in range(50)]

            async def one(action_id: str) -> str:
                result = await ami.request(originate("100", action_id), timeout=CALL_TIMEOUT)
                return str(result["actionid"])

            assert await asyncio.gather(*(one(i) for i in ids)) == ids
            seen: set[str] = set()
            async for frame in responses:
                if frame.get("actionid") in ids:
                    assert frame["response"] == "Success"
                    seen.add(frame["actionid"])
                    if len(seen) == len(ids):
                        break
            assert seen == set(ids)

    run(main())


def test_event_lists_command_output_and_events_by_name(asterisk_server: AsteriskServer) -> None:
    async def main() -> None:
        async with client(asterisk_server) as ami:
            user_events = ami.events("UserEvent")
            hangups = ami.events("Hangup")
            long_id = f"aio-long-{uuid.uuid4().hex[:8]}"
            await ami.request(originate("200", long_id, data="30"), timeout=CALL_TIMEOUT)
            short_id = f"aio-short-{uuid.uuid4().hex[:8]}"
            await ami.request(originate("100", short_id), timeout=CALL_TIMEOUT)
            user_event = await asyncio.wait_for(user_events.__anext__(), CALL_TIMEOUT)
            assert user_event["event"] == "UserEvent" and user_event["foo"] == "bar"
            hangup = await asyncio.wait_for(hangups.__anext__(), CALL_TIMEOUT)
            assert hangup["event"] == "Hangup"
            listed = await ami.request({"Action": "CoreShowChannels"}, timeout=10)
            assert listed.complete is not None and int(listed.complete["listitems"]) == len(listed.events) >= 1
            assert any(e["channel"].startswith("Local/200@default") for e in listed.events)
            version = await ami.request({"Action": "Command", "Command": "core show version"}, timeout=10)
            assert version.output and version.output[0].startswith("Asterisk 22")
            with pytest.raises(ActionError) as info:
                await ami.request({"Action": "Command", "Command": "core show nosuchthing"}, timeout=10)
            assert any("No such command" in line for line in info.value.result.output)
            for channel in {e["channel"] for e in listed.events if e["channel"].startswith("Local/200@default")}:
                with contextlib.suppress(ActionError):  # already gone
                    await ami.request({"Action": "Hangup", "Channel": channel}, timeout=5)

    run(main())


def test_sigkill_restart_twice_with_reconnect(asterisk_server: AsteriskServer) -> None:
    if not asterisk_server.managed:
        pytest.skip("external AMI server: this session cannot kill or restart it")

    async def main() -> None:
        ami = client(asterisk_server, reconnect=True, reconnect_after=200)
        logins: list[bool] = []
        closes: list[bool] = []
        ami.on("ami_login", lambda ok, frame: logins.append(ok))
        ami.on("ami_socket_close", closes.append)
        await ami.connect()
        user_events = ami.events("UserEvent")
        try:
            # kill and start block the loop on purpose: Asterisk must be started from this thread (the
            # sandbox ties its life to the thread that started it), and the client copes with a late loop
            for round_no in (1, 2):
                asterisk_server.freeze()  # it cannot answer the Ping below
                in_flight = ami.action({"Action": "Ping"})
                asterisk_server.kill(signal.SIGKILL)
                with pytest.raises(ConnectionLostError):
                    await asyncio.wait_for(in_flight, 10)
                assert not ami.connected and len(closes) == round_no
                asterisk_server.start()
                while len(logins) < round_no + 1:
                    await asyncio.sleep(0.05)
                assert logins == [True] * (round_no + 1) and ami.connected
                # handlers and streams still attached after the reconnect
                await ami.request(originate("100", f"aio-kill-{round_no}-{uuid.uuid4().hex[:6]}"), timeout=CALL_TIMEOUT)
                frame = await asyncio.wait_for(user_events.__anext__(), CALL_TIMEOUT)
                assert frame["foo"] == "bar"
        finally:
            await ami.disconnect()
            if asterisk_server.pid is not None:
                asterisk_server.kill(signal.SIGCONT)
            asterisk_server.start()
        assert ami.state == "disconnected"

    run(main(), timeout=120)
