"""Smoke tests of the Asterisk sandbox over raw sockets (independent of the client library)."""

from __future__ import annotations

import itertools
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # conftest is not importable as a module at run time
    from asterisk_sandbox import Credentials
    from conftest import AsteriskServer

Message = dict[str, str]
_action_ids = itertools.count(1)


class RawAMI:
    """A minimal blocking AMI connection: banner, actions, events."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.events: list[Message] = []
        self.banner = self._read_until(b"\r\n").decode()

    @classmethod
    def connect(cls, host: str, port: int, *, context: ssl.SSLContext | None = None, timeout: float = 10.0) -> RawAMI:
        """Connect (optionally with TLS, verifying the certificate for "localhost")."""
        sock = socket.create_connection((host, port), timeout=timeout)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname="localhost")
        return cls(sock)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def _read_until(self, terminator: bytes) -> bytes:
        while terminator not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("AMI connection closed")
            self.buffer += chunk
        data, self.buffer = self.buffer.split(terminator, 1)
        return data

    def read_message(self) -> Message:
        """Read one message (response or event)."""
        message: Message = {}
        for line in self._read_until(b"\r\n\r\n").decode().split("\r\n"):
            key, _, value = line.partition(":")
            message.setdefault(key.strip(), value.strip())
        return message

    def action(self, name: str, **fields: str) -> Message:
        """Send an action and return its response; events read meanwhile go to ``events``."""
        action_id = f"t{next(_action_ids)}"
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        lines += [f"{key}: {value}" for key, value in fields.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while True:
            message = self.read_message()
            if "Event" not in message and message.get("ActionID") == action_id:
                return message
            self.events.append(message)

    def login(self, credentials: Credentials, secret: str | None = None) -> Message:
        """Log in with ``credentials`` (or with another ``secret`` for the same user)."""
        return self.action("Login", Username=credentials.username, Secret=secret or credentials.secret)

    def wait_event(self, predicate: Callable[[Message], bool], timeout: float = 15.0) -> Message:
        """Return the first (already read or new) event matching ``predicate``."""
        deadline = time.monotonic() + timeout
        for event in self.events:
            if predicate(event):
                return event
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            event = self.read_message()
            self.events.append(event)
            if predicate(event):
                return event
        raise TimeoutError("event not received")


@pytest.fixture
def ami(asterisk_server: AsteriskServer) -> Iterator[RawAMI]:
    """A fresh, not yet logged-in plain-TCP connection."""
    conn = RawAMI.connect(asterisk_server.host, asterisk_server.port)
    yield conn
    conn.close()


def test_banner(ami: RawAMI) -> None:
    assert ami.banner.startswith("Asterisk Call Manager/")


def test_login_full_account(ami: RawAMI, asterisk_server: AsteriskServer) -> None:
    response = ami.login(asterisk_server.accounts.admin)
    assert response["Response"] == "Success"
    assert response["Message"] == "Authentication accepted"


def test_login_wrong_secret(ami: RawAMI, asterisk_server: AsteriskServer) -> None:
    response = ami.login(asterisk_server.accounts.admin, secret=asterisk_server.accounts.wrong_secret)
    assert response["Response"] == "Error"
    assert response["Message"] == "Authentication failed"


def test_ping(ami: RawAMI, asterisk_server: AsteriskServer) -> None:
    ami.login(asterisk_server.accounts.admin)
    response = ami.action("Ping")
    assert response["Response"] == "Success"
    assert response["Ping"] == "Pong"


def test_system_account_cannot_originate(ami: RawAMI, asterisk_server: AsteriskServer) -> None:
    if asterisk_server.accounts.system is None:
        pytest.skip("no system-only account configured for the external server")
    assert ami.login(asterisk_server.accounts.system)["Response"] == "Success"
    response = ami.action("Originate", Channel="Local/100@default", Application="Echo")
    assert response["Response"] == "Error"
    assert response["Message"] == "Permission denied"


def test_tls_login(asterisk_server: AsteriskServer) -> None:
    context = asterisk_server.ssl_context()
    assert asterisk_server.tls_port is not None
    conn = RawAMI.connect(asterisk_server.host, asterisk_server.tls_port, context=context)
    try:
        assert isinstance(conn.sock, ssl.SSLSocket)
        assert conn.banner.startswith("Asterisk Call Manager/")
        assert conn.login(asterisk_server.accounts.admin)["Response"] == "Success"
        assert conn.action("Ping")["Response"] == "Success"
    finally:
        conn.close()


def test_originate_events(ami: RawAMI, asterisk_server: AsteriskServer) -> None:
    ami.login(asterisk_server.accounts.admin)
    response = ami.action("Originate", Channel="Local/100@default", Application="Echo", Async="true", ActionID="orig-1")
    assert response["Response"] == "Success"
    new = ami.wait_event(lambda e: e.get("Event") == "Newchannel" and "Local/100@default" in e["Channel"])
    call = new["Channel"].rsplit(";", 1)[0]
    user = ami.wait_event(lambda e: e.get("Event") == "UserEvent" and e["Channel"].startswith(call))
    assert (user["UserEvent"], user["Foo"]) == ("TestEvent", "bar")
    hangup = ami.wait_event(lambda e: e.get("Event") == "Hangup" and e["Channel"].startswith(call))
    assert hangup["Cause-txt"] == "Normal Clearing"


def test_kill_and_restart(asterisk_server: AsteriskServer) -> None:
    if not asterisk_server.managed:
        pytest.skip("external AMI server")
    conn = RawAMI.connect(asterisk_server.host, asterisk_server.port)
    conn.login(asterisk_server.accounts.admin)
    asterisk_server.kill()
    with pytest.raises((ConnectionError, OSError)):
        conn.action("Ping")  # the server side is gone: EOF or reset
    conn.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((asterisk_server.host, asterisk_server.port), timeout=5).close()

    asterisk_server.restart()
    conn = RawAMI.connect(asterisk_server.host, asterisk_server.port)
    try:
        assert conn.banner.startswith("Asterisk Call Manager/")
        assert conn.login(asterisk_server.accounts.admin)["Response"] == "Success"
        assert conn.action("Ping")["Ping"] == "Pong"
    finally:
        conn.close()
