"""Fixtures of the relay's tests: a real nats-server (JetStream, file storage, its own store directory,
a free port on 127.0.0.1), stopped by its pid after each test. Without nats-py (the version matrix
installs only the ``test`` extra) the tests that need NATS are skipped; the rest still run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def nats_server() -> Iterator[Any]:
    pytest.importorskip("nats", reason="the relay's tests need nats-py (pip install -e '.[dev]')")
    from .support import nats_server_fixture

    yield from nats_server_fixture()
