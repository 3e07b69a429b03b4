"""``Relay``: many PBXes onto one NATS JetStream stream, in one asyncio process.

::

    config = RelayConfig(nats=("nats://127.0.0.1:4222",), pbxes=(parse_pbx("london", "ami://relay@10.0.0.1"),))
    async with Relay(config) as relay:   # connected to NATS, the stream made, every PBX connecting
        await relay.wait_stopped()       # until relay.stop() (the command line: SIGTERM or SIGINT)
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import replace
from types import TracebackType
from typing import Any

from .config import RelayConfig
from .link import NatsLink, connect_options
from .publisher import PbxRelay

logger = logging.getLogger("asterisk_ami.relay")


class Relay:
    """Relays every PBX of ``config`` (see :class:`~asterisk_ami.relay.config.RelayConfig`)."""

    def __init__(self, config: RelayConfig) -> None:
        if not config.relay_id:
            config = replace(config, relay_id=f"{socket.gethostname()}:{os.getpid()}")
        self.config = config
        self.link = NatsLink(
            connect_options(
                config.nats,
                name=f"asterisk-ami relay {config.relay_id}",
                user=config.nats_user,
                password=config.nats_password,
                token=config.nats_token,
                creds=config.nats_creds,
                cafile=config.nats_cafile,
            )
        )
        self.pbxes = {p.name: PbxRelay(p, config, self.link) for p in config.pbxes}
        self._stop_requested = asyncio.Event()
        self._stopping: asyncio.Future[None] | None = None
        self._started = False

    def __repr__(self) -> str:
        return f"<Relay {len(self.pbxes)} PBX(es) to {', '.join(self.config.nats_urls)} stream {self.config.stream}>"

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect to NATS (trying until it answers), make or update the stream, start every PBX.

        Returns once every PBX is started; their AMI sessions log in in the background."""
        if self._started:
            return
        self._started = True
        c = self.config
        inflight = c.max_inflight * len(self.pbxes) + 64  # never the shared limit: each PBX has its own
        await self.link.connect(max_pending=inflight)
        await self.link.ensure_stream(
            c.stream, max_age=c.max_age, max_bytes=c.max_bytes, duplicate_window=c.duplicate_window
        )
        await asyncio.gather(*(p.start() for p in self.pbxes.values()))
        logger.info("relaying %d PBX(es) into the stream %s", len(self.pbxes), c.stream)

    async def stop(self, timeout: float = 5.0) -> None:
        """Log off every PBX, publish their ``disconnected`` and what they still hold (up to ``timeout``
        seconds), close NATS. A second call waits for the first."""
        self._stop_requested.set()
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(timeout))
        await asyncio.shield(self._stopping)

    async def _stop(self, timeout: float) -> None:
        if self._started:
            await asyncio.gather(*(p.stop(timeout) for p in self.pbxes.values()))
        await self.link.close()
        logger.info("relay stopped")

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop (what a signal handler on the loop calls)."""
        self._stop_requested.set()

    async def wait_stopped(self) -> None:
        """Return once a stop has been asked for and is done."""
        await self._stop_requested.wait()
        await self.stop()

    async def run(self) -> None:
        """Start, run until :meth:`stop` or :meth:`request_stop`, then stop cleanly."""
        try:
            await self.start()
            await self._stop_requested.wait()
        finally:
            await self.stop()

    @property
    def stats(self) -> dict[str, Any]:
        """Counters per PBX (epoch, seq, frames, dropped, held, acked, duplicates, retries, actions...)
        and the NATS connection's."""
        return {
            "nats_connected": self.link.connected,
            "nats_disconnects": self.link.disconnects,
            "pbxes": {name: p.stats() for name, p in self.pbxes.items()},
        }
