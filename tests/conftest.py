"""Fixtures shared by the client test modules: a FakeAsterisk and a factory of clients for it.

A module sets ``SECRET`` to choose the admin secret (tests then check it never leaks). Every client
made by ``make_client`` is destroyed after its test, and the fixture checks what every test should:
no ``asterisk-ami-*`` thread outlives ``destroy()``, the client ends ``disconnected`` and no action is
left pending.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from asterisk_ami import protocol
from asterisk_ami.testing import FakeAsterisk

from .helpers import MakeClient
from .shells import SHELLS, client_factory

DEFAULT_SECRET = "secret"


@pytest.fixture(params=["c", "python"])
def parser_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on both parsers: the C fast path (when built) and pure Python. A module takes it for
    every test with ``pytestmark = pytest.mark.usefixtures("parser_impl")``."""
    if request.param == "c" and not protocol.SPEEDUPS:
        pytest.skip("the C fast path is not built (tests/test_speedups.py fails in CI for that)")
    if request.param == "python":
        monkeypatch.setattr(protocol, "_c_parse_simple", None)
    return str(request.param)


@pytest.fixture
def secret(request: pytest.FixtureRequest) -> str:
    return str(getattr(request.module, "SECRET", DEFAULT_SECRET))


@pytest.fixture
def fake(secret: str) -> Iterator[FakeAsterisk]:
    with FakeAsterisk(accounts={"admin": secret}) as server:
        yield server


@pytest.fixture
def make_client(fake: FakeAsterisk, secret: str) -> Iterator[MakeClient]:
    yield from client_factory("threaded", fake, secret)


@pytest.fixture(params=SHELLS)
def make_any_client(request: pytest.FixtureRequest, fake: FakeAsterisk, secret: str) -> Iterator[MakeClient]:
    """make_client for each shell: the threaded client, then the asyncio one (tests/shells.py)."""
    yield from client_factory(str(request.param), fake, secret)


@pytest.fixture(autouse=True)
def reset_library_logger() -> Iterator[None]:
    yield
    # debug=True installs a stderr handler and DEBUG level on the library logger: undo it for other tests
    lib = logging.getLogger("asterisk_ami")
    for handler in [h for h in lib.handlers if getattr(h, "_asterisk_ami_debug", False)]:
        lib.removeHandler(handler)
    lib.setLevel(logging.NOTSET)
