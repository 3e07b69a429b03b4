"""Fixtures shared by the client test modules: a FakeAsterisk and a factory of clients for it.

A module sets ``SECRET`` to choose the admin secret (tests then check it never leaks). Every client
made by ``make_client`` is destroyed after its test, and the fixture checks what every test should:
no ``asterisk-ami-*`` thread outlives ``destroy()``, the client ends ``disconnected`` and no action is
left pending.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from asterisk_ami import AsteriskAmi
from asterisk_ami.testing import FakeAsterisk

from .helpers import MakeClient, client_threads, wait_until

DEFAULT_SECRET = "secret"


@pytest.fixture
def secret(request: pytest.FixtureRequest) -> str:
    return str(getattr(request.module, "SECRET", DEFAULT_SECRET))


@pytest.fixture
def fake(secret: str) -> Iterator[FakeAsterisk]:
    with FakeAsterisk(accounts={"admin": secret}) as server:
        yield server


@pytest.fixture
def make_client(fake: FakeAsterisk, secret: str) -> Iterator[MakeClient]:
    before = client_threads()
    clients: list[AsteriskAmi] = []

    def make(**options: Any) -> AsteriskAmi:
        options = {"host": fake.host, "port": fake.port, "username": "admin", "password": secret, **options}
        ami = AsteriskAmi(**options)
        clients.append(ami)
        return ami

    yield make
    for ami in clients:
        ami.destroy()
    wait_until(lambda: not (client_threads() - before), 5, "client threads to end after destroy()")
    for ami in clients:
        assert ami.state == "disconnected"
        assert ami.stats["pending_actions"] == 0
    # debug=True installs a stderr handler and DEBUG level on the library logger: undo it for other tests
    lib = logging.getLogger("asterisk_ami")
    for handler in [h for h in lib.handlers if getattr(h, "_asterisk_ami_debug", False)]:
        lib.removeHandler(handler)
    lib.setLevel(logging.NOTSET)
