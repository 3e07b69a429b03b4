"""Fixtures of the relay's tests: a real nats-server (JetStream, file storage, its own store directory,
a free port on 127.0.0.1), stopped by its pid after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("nats", reason="the relay's tests need nats-py (pip install -e '.[dev]')")

from asterisk_ami.relay.testing import NatsServer

from .support import nats_server_fixture


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    yield from nats_server_fixture()
