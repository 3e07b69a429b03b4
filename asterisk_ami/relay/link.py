"""The NATS connection of a relay or a consumer: connect (and keep trying), reconnect, the stream.

nats-py is used through its public API; its own error output goes to the ``asterisk_ami.relay`` logger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from .config import redact_url
from .errors import RelayError
from .wire import stream_subjects

logger = logging.getLogger("asterisk_ami.relay")
MIN_SERVER = (2, 10)  # the oldest nats-server the relay and RemoteAmi work with (tested: 2.10.26, 2.15.1)


def connect_options(
    servers: Sequence[str],
    *,
    name: str,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    creds: str | None = None,
    cafile: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` (secrets included: for nats-py only)."""
    options: dict[str, Any] = {"servers": list(servers), "name": name}
    if user is not None:
        options["user"] = user
    if password is not None:
        options["password"] = password
    if token is not None:
        options["token"] = token
    if creds is not None:
        options["user_credentials"] = creds
    if cafile is not None or any(urlsplit(s).scheme == "tls" for s in servers):
        options["tls"] = ssl.create_default_context(cafile=cafile)
    return options


class NatsLink:
    """One NATS connection that reconnects by itself (forever); ``up`` is set while connected and
    ``generation`` grows at every reconnect (what was in flight then may be lost: publishers resend)."""

    def __init__(self, options: Mapping[str, Any], *, on_reconnect: Callable[[], None] | None = None) -> None:
        self.options = dict(options)
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.up = asyncio.Event()
        self.generation = 0
        self.disconnects = 0
        self._on_reconnect = on_reconnect
        self._closing = False
        self._failed: asyncio.Future[BaseException] | None = None  # connect(retry=False): the first failure
        self._said = 0.0  # when a failed first connection was last logged

    def __repr__(self) -> str:
        servers = ", ".join(redact_url(s) for s in self.options.get("servers", []))
        return f"<NatsLink {servers} {'up' if self.up.is_set() else 'down'}>"

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def connect(self, *, retry: bool = True, max_pending: int = 4000) -> None:
        """Connect. nats-py keeps trying by itself (every second, forever: the same client then reconnects
        for good); with ``retry`` this waits for it, saying why every attempt fails (at most every 30 s),
        without it the first failure raises ``RelayError``."""
        servers = ", ".join(redact_url(s) for s in self.options.get("servers", []))
        loop = asyncio.get_running_loop()
        self._failed = None if retry else loop.create_future()
        self._said = 0.0
        connecting = asyncio.ensure_future(
            nats.connect(
                **self.options,
                error_cb=self._error,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
                closed_cb=self._closed,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                connect_timeout=2,
                ping_interval=5,
                max_outstanding_pings=3,
                allow_reconnect=True,
            )
        )
        failed = self._failed
        if failed is not None:
            waiting: set[asyncio.Future[Any]] = {connecting, failed}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not connecting.done():
                connecting.cancel()
                with contextlib.suppress(BaseException):
                    await connecting
                reason = _describe(failed.result())
                raise RelayError(f"cannot connect to NATS at {servers}: {reason}")
        self.nc = await connecting
        self._failed = None
        version = self.nc.connected_server_version
        try:
            too_old = (version.major, version.minor) < MIN_SERVER
        except ValueError:  # not a release number (a development build): let it try
            too_old = False
        if too_old:
            self._closing = True
            await self.nc.close()
            found = f"{version.major}.{version.minor}.{version.patch}"
            needed = f"{MIN_SERVER[0]}.{MIN_SERVER[1]}"
            raise RelayError(
                f"nats-server {found} at {servers} is too old: the relay needs {needed} or later "
                "(consumer filters and last-message lookups by wildcard)"
            )
        self.js = self.nc.jetstream(publish_async_max_pending=max_pending)
        self.up.set()
        logger.info("connected to NATS at %s", servers)

    async def close(self) -> None:
        self._closing = True
        nc, self.nc = self.nc, None
        self.up.clear()
        if nc is not None and not nc.is_closed:
            try:
                await asyncio.wait_for(nc.drain(), 5)
            except (asyncio.TimeoutError, nats.errors.Error, OSError):
                await nc.close()

    async def _error(self, exc: Exception) -> None:
        if self._closing:
            return
        if self.nc is None:  # still connecting for the first time
            failed = self._failed
            if failed is not None:
                if not failed.done():
                    failed.set_result(exc)
                return
            now = time.monotonic()
            if now - self._said >= 30:
                self._said = now
                servers = ", ".join(redact_url(s) for s in self.options.get("servers", []))
                logger.warning("cannot connect to NATS at %s (%s); trying again", servers, _describe(exc))
            return
        logger.debug("NATS: %s", _describe(exc))

    async def _disconnected(self) -> None:
        self.up.clear()
        self.disconnects += 1
        if not self._closing:
            logger.warning("disconnected from NATS; reconnecting")

    async def _reconnected(self) -> None:
        self.generation += 1
        self.up.set()
        logger.info("reconnected to NATS")
        if self._on_reconnect is not None:
            self._on_reconnect()

    async def _closed(self) -> None:
        self.up.clear()

    # -- the stream --------------------------------------------------------------------------------

    async def ensure_stream(
        self, name: str, *, max_age: float, max_bytes: int, duplicate_window: float
    ) -> api.StreamInfo:
        """Create the stream (file storage, the event and control subjects only), or bring an existing
        one's limits to these."""
        js = self.js
        assert js is not None
        config = api.StreamConfig(
            name=name,
            subjects=stream_subjects(),
            storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.OLD,
            max_age=max_age or None,
            max_bytes=max_bytes or -1,
            duplicate_window=duplicate_window,
            allow_direct=True,
        )
        try:
            info = await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            try:
                info = await js.add_stream(config)
            except nats.js.errors.APIError as exc:
                raise RelayError(f"cannot create the stream {name!r}: {exc.description}") from None
            logger.info("created the stream %s (%s)", name, ", ".join(config.subjects or []))
            return info
        current = info.config
        wanted = (sorted(config.subjects or []), config.max_age or 0, config.max_bytes, config.duplicate_window)
        have = (sorted(current.subjects or []), current.max_age or 0, current.max_bytes, current.duplicate_window)
        if wanted != have:
            try:
                info = await js.update_stream(config)
            except nats.js.errors.APIError as exc:
                raise RelayError(f"cannot update the stream {name!r}: {exc.description}") from None
            logger.info("updated the stream %s to this relay's limits", name)
        return info


async def wait_or(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for ``event`` up to ``timeout`` seconds (None: forever); True when it is set.

    Not ``asyncio.wait_for``: before Python 3.12 it can swallow a cancellation that comes as the event is
    set, and a task that loops on it then never ends."""
    if event.is_set():
        return True
    if timeout is None:
        await event.wait()
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return bool(done)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text or type(exc).__name__


def spawn(coro: Awaitable[Any], tasks: set[asyncio.Task[Any]], name: str) -> asyncio.Task[Any]:
    """A task kept in ``tasks`` until it ends; what it raises is logged, never lost."""
    task = asyncio.ensure_future(coro)
    task.set_name(name)
    tasks.add(task)
    task.add_done_callback(lambda t: _task_done(t, tasks))
    return task


def _task_done(task: asyncio.Task[Any], tasks: set[asyncio.Task[Any]]) -> None:
    tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("task %s failed", task.get_name(), exc_info=task.exception())
