"""pytest plugin of asterisk_ami: the ``fake_asterisk`` fixture.

Installed with the package (entry point ``pytest11``: ``asterisk_ami = "asterisk_ami.pytest_plugin"``),
so any test can ask for it without a conftest::

    def test_ping(fake_asterisk):
        ami = AsteriskAmi(**fake_asterisk.client_options())   # admin / secret on an ephemeral port
        ...

Each test gets its own started :class:`~asterisk_ami.testing.FakeAsterisk`, closed (threads joined,
sockets closed) after the test. Options for it come from the ``fake_asterisk`` marker::

    @pytest.mark.fake_asterisk(banner=None, accounts={"bob": "pw"})
    def test_no_banner(fake_asterisk): ...

Only pytest loads this module; importing it needs pytest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .testing import FakeAsterisk

__all__ = ["fake_asterisk"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``fake_asterisk`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        "fake_asterisk(**options): keyword options for the fake_asterisk fixture's FakeAsterisk",
    )


@pytest.fixture
def fake_asterisk(request: pytest.FixtureRequest) -> Iterator[FakeAsterisk]:
    """A started ``FakeAsterisk`` (accounts ``{"admin": "secret"}`` unless the marker says otherwise)."""
    options: dict[str, Any] = {}
    marker = request.node.get_closest_marker("fake_asterisk")
    if marker is not None:
        if marker.args:
            raise TypeError("the fake_asterisk marker takes keyword options only")
        options.update(marker.kwargs)
    with FakeAsterisk(**options) as fake:
        yield fake
