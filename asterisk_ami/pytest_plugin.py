"""pytest plugin of asterisk_ami: the ``fake_asterisk`` fixture, logged-in clients of both shells
(``ami_client``, ``async_ami_client``) and ``wait_for_event``.

Installed with the package (entry point ``pytest11``: ``asterisk_ami = "asterisk_ami.pytest_plugin"``),
so any test can ask for them without a conftest::

    def test_hangup_handler(fake_asterisk, ami_client, wait_for_event):
        hangups = []
        ami_client.on("Hangup", hangups.append)
        fake_asterisk.push_event("Hangup", Channel="PJSIP/100-00000001", Cause="16")
        assert wait_for_event("Hangup")["cause"] == "16"
        assert len(hangups) == 1          # every handler of the event has run when the wait returns

Each test gets its own started :class:`~asterisk_ami.testing.FakeAsterisk` (account ``admin`` /
``secret``), closed (threads joined, sockets closed) after the test. Its options come from the
``fake_asterisk`` marker; the clients' options (on top of the fake's address and first account) from the
``ami_client`` marker::

    @pytest.mark.fake_asterisk(accounts={"bob": "pw"}, read={"bob": "system"})
    @pytest.mark.ami_client(events="system", reconnect=True)
    def test_bob(ami_client): ...

* ``ami_client``: an ``asterisk_ami.AsteriskAmi`` logged in to the fake (its ``ami_login`` came), with
  an :class:`~asterisk_ami.testing.EventRecorder` attached before ``connect()``; destroyed after the test.
* ``wait_for_event(name, timeout=5.0, **headers)``: that recorder's wait: the first event of that name
  not returned before, whether it came before the call or comes later; when it returns, every handler of
  it has run.
* ``async_ami_client``: an :class:`~asterisk_ami.testing.AsyncAmiRunner`: the asyncio client logged in on
  the runner's own loop, for plain ``def`` tests (no pytest-asyncio needed): ``.ami``, ``.run(coro)``,
  ``.wait_for_event(...)``. With pytest-asyncio, make the client in your own async fixture instead
  (``async with AsteriskAmi(**fake_asterisk.client_options()) as ami: yield ami``).

Only pytest loads this module; importing it needs pytest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .protocol import Frame
from .sync import AsteriskAmi
from .testing import AsyncAmiRunner, EventRecorder, FakeAsterisk, logged_in_client

__all__ = ["ami_client", "async_ami_client", "fake_asterisk", "wait_for_event"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers (so ``--strict-markers`` accepts them)."""
    config.addinivalue_line(
        "markers",
        "fake_asterisk(**options): keyword options for the fake_asterisk fixture's FakeAsterisk",
    )
    config.addinivalue_line(
        "markers",
        "ami_client(**options): client options for ami_client and async_ami_client (on top of the fake's"
        " address and first account)",
    )


def _marker_options(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    marker = request.node.get_closest_marker(name)
    if marker is None:
        return {}
    if marker.args:
        raise TypeError(f"the {name} marker takes keyword options only")
    return dict(marker.kwargs)


@pytest.fixture
def fake_asterisk(request: pytest.FixtureRequest) -> Iterator[FakeAsterisk]:
    """A started ``FakeAsterisk`` (accounts ``{"admin": "secret"}`` unless the marker says otherwise)."""
    with FakeAsterisk(**_marker_options(request, "fake_asterisk")) as fake:
        yield fake


def _client_options(request: pytest.FixtureRequest, fake: FakeAsterisk) -> dict[str, Any]:
    return {**fake.client_options(), **_marker_options(request, "ami_client")}


@pytest.fixture
def _ami_client_and_events(
    request: pytest.FixtureRequest, fake_asterisk: FakeAsterisk
) -> Iterator[tuple[AsteriskAmi, EventRecorder]]:
    ami, recorder = logged_in_client(_client_options(request, fake_asterisk))
    try:
        yield ami, recorder
    finally:
        ami.destroy()


@pytest.fixture
def ami_client(_ami_client_and_events: tuple[AsteriskAmi, EventRecorder]) -> AsteriskAmi:
    """A threaded ``AsteriskAmi`` logged in to ``fake_asterisk`` (options from the ``ami_client`` marker)."""
    return _ami_client_and_events[0]


@pytest.fixture
def wait_for_event(_ami_client_and_events: tuple[AsteriskAmi, EventRecorder]) -> Callable[..., Frame]:
    """``wait_for_event(name, timeout=5.0, **headers)`` on ``ami_client``'s events (see EventRecorder)."""
    return _ami_client_and_events[1].wait_for_event


@pytest.fixture
def async_ami_client(request: pytest.FixtureRequest, fake_asterisk: FakeAsterisk) -> Iterator[AsyncAmiRunner]:
    """An ``AsyncAmiRunner``: the asyncio client logged in to ``fake_asterisk`` on its own loop."""
    runner = AsyncAmiRunner(_client_options(request, fake_asterisk))
    try:
        runner.start()
        yield runner
    finally:
        runner.close()
