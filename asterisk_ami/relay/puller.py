"""A JetStream pull consumer kept fed, on the documented consumer API (``$JS.API.CONSUMER.MSG.NEXT``).

Up to ``batch`` messages are asked for at a time and more as they arrive, only while the consumer has
room (``pause()``/``resume()``: back-pressure from ``events()`` streams), so a message is handed on as soon
as the server has it and a slow consumer is never sent more than it asked for. The server's heartbeats
show the request is alive; after a NATS reconnect, or a silence past three heartbeats, the request is
made again, and a consumer the server lost (a restart without its state, an inactivity timeout) is made
again from the next stream sequence, so nothing in the stream is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api

from .link import NatsLink, spawn

logger = logging.getLogger("asterisk_ami.relay")
_NS = 1_000_000_000


class Puller:
    """Feeds ``handle(msg)`` from the consumer ``name`` of ``stream``. ``make_config(start_seq)`` gives
    the consumer's configuration, from a stream sequence when it has to be made again (None: the first
    time)."""

    def __init__(
        self,
        link: NatsLink,
        stream: str,
        name: str,
        make_config: Callable[[int | None], api.ConsumerConfig],
        handle: Callable[[Msg], None],
        *,
        batch: int = 256,
        heartbeat: float = 2.0,
        expires: float = 30.0,
        on_created: Callable[[api.ConsumerInfo], None] | None = None,
    ) -> None:
        self.link = link
        self.stream = stream
        self.name = name
        self.make_config = make_config
        self.handle = handle
        self.batch = batch
        self.heartbeat = heartbeat
        self.expires = expires
        self.on_created = on_created
        self.last_stream_seq = 0  # the last stream sequence handed on
        self.outstanding = 0  # asked for and not delivered
        self.requests = 0
        self.recreated = 0
        self._room = True
        self._sub: Subscription | None = None
        self._inbox = ""
        self._active = time.monotonic()
        self._generation = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._asking = False

    async def start(self, *, create: bool = True) -> api.ConsumerInfo:
        """Make the consumer (or bind to it when ``create`` is False), subscribe and ask for messages."""
        nc = self.link.nc
        assert nc is not None
        info = await self._create(None) if create else await self._info()
        self._inbox = nc.new_inbox()
        self._sub = await nc.subscribe(self._inbox, cb=self._on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1)
        self._generation = self.link.generation
        spawn(self._watch(), self._tasks, f"consumer {self.name}: watch")
        await self._ask()
        return info

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(nats.errors.Error, OSError):
                await sub.unsubscribe()

    async def _info(self) -> api.ConsumerInfo:
        js = self.link.js
        assert js is not None
        info: api.ConsumerInfo = await js.consumer_info(self.stream, self.name)
        return info

    async def _create(self, start_seq: int | None) -> api.ConsumerInfo:
        js = self.link.js
        assert js is not None
        config = self.make_config(start_seq)
        config.name = self.name
        info = await js.add_consumer(self.stream, config)
        if self.on_created is not None:
            self.on_created(info)
        return info

    # -- flow ----------------------------------------------------------------------------------------

    def pause(self) -> None:
        self._room = False

    def resume(self) -> None:
        if not self._room:
            self._room = True
            self._kick()

    def _kick(self) -> None:
        if not self._asking and not self._closed and self.outstanding <= self.batch // 2:
            spawn(self._ask(), self._tasks, f"consumer {self.name}: pull")

    async def _ask(self) -> None:
        if self._asking or self._closed or not self._room:
            return
        want = self.batch - self.outstanding
        nc = self.link.nc
        if want <= self.batch // 2 or nc is None or not nc.is_connected:
            return
        self._asking = True
        try:
            request = {"batch": want, "expires": int(self.expires * _NS), "idle_heartbeat": int(self.heartbeat * _NS)}
            subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.name}"
            await nc.publish(subject, json.dumps(request).encode(), reply=self._inbox)
            self.outstanding += want
            self.requests += 1
        except (nats.errors.Error, OSError) as exc:
            logger.debug("consumer %s: pull request failed: %s", self.name, exc)
        finally:
            self._asking = False

    async def _on_msg(self, msg: Msg) -> None:
        self._active = time.monotonic()
        headers = msg.headers
        status = headers.get("Status") if headers else None
        if status:
            await self._on_status(status, headers or {})
            return
        self.outstanding = max(0, self.outstanding - 1)
        try:
            sequence = msg.metadata.sequence.stream
        except (nats.errors.Error, ValueError, IndexError):
            sequence = 0
        if sequence and sequence <= self.last_stream_seq:
            return  # an old request's message, delivered after a new consumer took over
        if sequence:
            self.last_stream_seq = sequence
        self.handle(msg)
        if self._room and self.outstanding <= self.batch // 2:
            await self._ask()

    async def _on_status(self, status: str, headers: dict[str, str]) -> None:
        if status == "100":  # idle heartbeat: the request is alive
            return
        pending = headers.get("Nats-Pending-Messages")
        if pending is not None and pending.isdigit():
            self.outstanding = max(0, self.outstanding - int(pending))
        else:
            self.outstanding = 0
        description = headers.get("Description", "")
        if status == "409" and "deleted" in description.lower():
            logger.warning("consumer %s was deleted; making it again", self.name)
            await self._renew()
            return
        if status not in ("404", "408"):
            logger.debug("consumer %s: status %s %s", self.name, status, description)
        await self._ask()

    async def _watch(self) -> None:
        """Ask again after a reconnect, or when the server has said nothing for three heartbeats."""
        while not self._closed:
            await asyncio.sleep(self.heartbeat)
            if not self.link.up.is_set():
                continue
            silent = time.monotonic() - self._active > 3 * self.heartbeat
            if self._generation != self.link.generation or (silent and self.outstanding > 0):
                self._generation = self.link.generation
                self._active = time.monotonic()
                await self._renew()

    async def _renew(self) -> None:
        """The consumer again if the server lost it (from the next stream sequence), then a request."""
        self.outstanding = 0
        try:
            await self._info()
        except nats.js.errors.NotFoundError:
            try:
                await self._create(self.last_stream_seq + 1 if self.last_stream_seq else None)
                self.recreated += 1
                logger.info("consumer %s made again from stream sequence %d", self.name, self.last_stream_seq + 1)
            except (nats.errors.Error, nats.js.errors.Error, OSError) as exc:
                logger.warning("consumer %s: cannot make it again: %s", self.name, exc)
                return
        except (nats.errors.Error, nats.js.errors.Error, OSError) as exc:
            logger.debug("consumer %s: %s", self.name, exc)
            return
        await self._ask()

    async def ack(self, msg: Msg) -> None:
        """Acknowledge ``msg`` and, with an AckAll consumer, everything before it."""
        with contextlib.suppress(nats.errors.Error, OSError):
            await msg.ack()
