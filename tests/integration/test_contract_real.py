"""The lifecycle contract against the real Asterisk 22, on both shells: what a user sends and then
disconnects from reaches Asterisk; a refused login is what a waiting request raises."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

from asterisk_ami import AsteriskAmi, AuthenticationError
from asterisk_ami import asyncio as ami_asyncio

from ..helpers import wait_until
from .conftest import AsteriskServer

pytestmark = pytest.mark.integration
SHELLS = ["threaded", "asyncio"]


@pytest.mark.parametrize("shell", SHELLS)
def test_connect_send_disconnect_delivers_every_user_event(asterisk_server: AsteriskServer, shell: str) -> None:
    watcher = asterisk_server.logged_in_client()
    tag = uuid.uuid4().hex[:10]
    seen: list[str] = []
    lock = threading.Lock()

    def on_user_event(frame: dict[str, object]) -> None:
        if frame.get("userevent") == tag:
            with lock:
                seen.append(str(frame.get("n")))

    watcher.on("UserEvent", on_user_event)
    try:
        for round_ in range(3):  # the seed's own usage, three rounds of five
            if shell == "threaded":
                ami = AsteriskAmi(**asterisk_server.options())
                ami.connect()
                for i in range(5):
                    ami.send({"Action": "UserEvent", "UserEvent": tag, "N": f"{round_}-{i}"})
                ami.disconnect()
            else:

                async def main(r: int = round_) -> None:
                    ami = ami_asyncio.AsteriskAmi(**asterisk_server.options())
                    connecting = asyncio.ensure_future(ami.connect())
                    await asyncio.sleep(0)
                    for i in range(5):
                        ami.send({"Action": "UserEvent", "UserEvent": tag, "N": f"{r}-{i}"})
                    await ami.disconnect()
                    await asyncio.gather(connecting, return_exceptions=True)

                asyncio.run(main())
        wait_until(lambda: len(seen) == 15, 10, "15 UserEvents at the watcher")
        assert sorted(seen) == sorted(f"{r}-{i}" for r in range(3) for i in range(5))
    finally:
        watcher.destroy()


def test_a_refused_login_is_what_a_waiting_request_raises(asterisk_server: AsteriskServer) -> None:
    ami = AsteriskAmi(**asterisk_server.options(password=asterisk_server.accounts.wrong_secret))
    ami.connect()
    with pytest.raises(AuthenticationError):
        ami.request({"Action": "Ping"}, timeout=10)
    ami.destroy()
