"""One PBX of a relay: its AMI session (the asyncio client, public API only), its epochs and control
messages, and the task that publishes its outbox to JetStream in order.

Nothing here waits on another PBX: each has its own client, outbox, publisher task and action
subscription, so one that is down, slow or refusing the login delays no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

import nats.errors
import nats.js.errors

from ..asyncio import AsteriskAmi
from ..errors import AmiError, AuthenticationError
from ..protocol import Frame
from . import wire
from .action_server import ActionServer
from .link import NatsLink, spawn, wait_or
from .outbox import Message, Outbox

if TYPE_CHECKING:
    from .config import PbxConfig, RelayConfig

logger = logging.getLogger("asterisk_ami.relay")
_STATUS_TIMEOUT = 5.0
_MAX_ACK_TIMEOUT = 60.0


class PbxRelay:
    """Relays one PBX: events and control messages into the stream, actions from ``ami.<pbx>.action``."""

    def __init__(self, pbx: PbxConfig, config: RelayConfig, link: NatsLink) -> None:
        self.pbx = pbx
        self.name = pbx.name
        self.config = config
        self.link = link
        self.outbox = Outbox(
            pbx.name,
            per_frame=config.per_frame,
            batch_frames=config.batch_frames,
            buffer_frames=config.buffer_frames,
            buffer_bytes=config.buffer_bytes,
            max_inflight=config.max_inflight,
            drop=config.on_stall == "drop",
        )
        self.ami = AsteriskAmi(
            **pbx.client_options(),
            reconnect=True,
            reconnect_after=int(config.reconnect_after * 1000),
            reconnect_max=int(config.reconnect_max * 1000),
            connect_timeout=10.0,
            ping_interval=20.0,
        )
        self.ami.on("ami_data", self._on_frame)
        self.ami.on("ami_login", self._on_login)
        self.ami.on("ami_socket_close", self._on_close)
        self.ami.on("ami_socket_error", self._on_error)
        self.actions = ActionServer(self)
        # relay-issued ActionIDs of actions in flight -> the last event number read before their response
        self.requests: dict[str, list[int | None]] = {}
        self.id_prefix = f"relay-{secrets.token_hex(4)}-"
        self.previous: dict[str, Any] | None = None  # the last epoch: epoch, last_seq, asterisk_started
        self.logged_in = False
        self.logins = 0
        self._banner: str | None = None
        self._wake = asyncio.Event()
        self._room = asyncio.Event()  # on_stall='block': set while the outbox has room
        self._room.set()
        self._blocking = config.on_stall == "block"
        self._flush_timer: asyncio.TimerHandle | None = None
        self._resend = False
        self._generation = 0
        self.stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._publisher: asyncio.Task[None] | None = None
        self._last_error: str | None = None
        self._started: str | None = None  # this epoch's Asterisk startup time (CoreStatus)

    def __repr__(self) -> str:
        return f"<PbxRelay {self.name} {self.pbx.url} epoch {self.outbox.epoch} seq {self.outbox.seq}>"

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read where the last epoch ended from the stream, then publish and connect (in tasks)."""
        self.previous = await self._read_previous()
        self._generation = self.link.generation
        self._publisher = spawn(self._publish_loop(), self._tasks, f"relay {self.name}: publisher")
        spawn(self._session_loop(), self._tasks, f"relay {self.name}: AMI session")
        if self.config.on_stall == "block":
            spawn(self._brake(), self._tasks, f"relay {self.name}: back-pressure")

    async def stop(self, timeout: float = 5.0) -> None:
        """Log off Asterisk, publish ``disconnected`` and what is still held (up to ``timeout``), stop."""
        self.stopping = True
        with contextlib.suppress(AmiError, OSError):
            await self.ami.disconnect(timeout=min(timeout, 2.0))
        self.ami.destroy()
        await self.actions.stop()
        self.outbox.close_batch()
        self._kick()
        end = time.monotonic() + timeout
        while not self.outbox.idle and time.monotonic() < end and self.link.connected:
            await asyncio.sleep(0.01)
        if not self.outbox.idle:
            held = self.outbox.frames_held
            logger.warning("PBX %s: stopped with %d frame(s) not acknowledged by NATS", self.name, held)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def _session_loop(self) -> None:
        """Keep the AMI session up; a refused login is tried again after ``login_retry`` seconds (the
        client never retries it by itself, so that a wrong secret does not hammer the server)."""
        while not self.stopping:
            try:
                await self.ami.connect()
            except AuthenticationError:
                logger.error(
                    "PBX %s: login refused for %r at %s; trying again in %g s",
                    self.name,
                    self.pbx.username,
                    self.pbx.url,
                    self.config.login_retry,
                )
            except (AmiError, OSError) as exc:
                logger.warning("PBX %s: cannot connect to %s: %s", self.name, self.pbx.url, exc)
            else:
                await self.ami.wait_closed()
                if self.stopping:
                    return
            if self.stopping:
                return
            await asyncio.sleep(self.config.login_retry)

    # -- the client's handlers ---------------------------------------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        # the kind is the first header's (OriginateResponse has a Response header too)
        first = next(iter(frame), None)
        requests = self.requests
        if first != "event":
            if first == "response" and requests:
                record = requests.get(frame.get("actionid"))  # type: ignore[arg-type]
                if record is not None:
                    record[0] = self.outbox.seq
            return
        if requests:
            # list items answer one requester, as Asterisk sends them only to the session that asked;
            # OriginateResponse is the one broadcast event carrying an ActionID, and stays in the stream
            action_id = frame.get("actionid")
            if action_id.__class__ is str and action_id in requests and frame.get("event") != "OriginateResponse":
                return
        outbox = self.outbox
        dropping = outbox.dropping
        if not outbox.add(frame):
            if outbox.drop_first == outbox.seq:
                logger.warning(
                    "PBX %s: %d frames held that NATS has not acknowledged: dropping frames from "
                    "number %d of epoch %d (consumers see the gap)",
                    self.name, outbox.frames_held, outbox.seq, outbox.epoch,
                )  # fmt: skip
            return
        if dropping:
            self._drops_logged()
        if self._blocking and outbox.full:
            self._room.clear()
        if not outbox.batch:  # this frame closed a batch: the publisher has work
            self._wake.set()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(self.config.batch_delay, self._flush_batch)

    def _flush_batch(self) -> None:
        self._flush_timer = None
        self.outbox.close_batch()
        self._kick()

    def _on_login(self, success: bool, frame: Frame) -> None:
        if not success:
            return
        outbox = self.outbox
        previous = self.previous
        epoch = int(time.time() * 1000)
        if previous is not None and epoch <= previous["epoch"]:
            epoch = previous["epoch"] + 1  # the clock went back, or two logins in one millisecond
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        dropping = outbox.dropping
        message = outbox.new_epoch(epoch)
        if dropping:
            self._drops_logged()
        self.logged_in = True
        self.logins += 1
        self._banner = self.ami.banner
        logger.info("PBX %s: logged in to %s, epoch %d", self.name, self.pbx.url, epoch)
        spawn(self._announce(message, previous), self._tasks, f"relay {self.name}: connected")

    async def _announce(self, message: Message, previous: dict[str, Any] | None) -> None:
        """Fill in the epoch's ``connected`` message: the action subject is served first, so a consumer
        that reads ``connected`` can send actions at once."""
        epoch = message.epoch
        await self.actions.sync()
        started = reloaded = None
        try:
            status = await self.ami.request({"Action": "CoreStatus"}, timeout=_STATUS_TIMEOUT)
        except (AmiError, asyncio.TimeoutError) as exc:
            logger.info("PBX %s: CoreStatus failed (%s): whether Asterisk restarted is unknown", self.name, exc)
        else:
            started = _when(status, "corestartupdate", "corestartuptime")
            reloaded = _when(status, "corereloaddate", "corereloadtime")
        before = previous.get("asterisk_started") if previous is not None else None
        restarted = None if started is None or before is None else started != before
        body = {
            "type": "connected",
            "pbx": self.name,
            "epoch": epoch,
            "previous_epoch": previous["epoch"] if previous is not None else None,
            "previous_last_seq": previous["last_seq"] if previous is not None else None,
            "asterisk_restarted": restarted,
            "asterisk_started": started,
            "asterisk_reloaded": reloaded,
            "banner": self._banner,
            "time": round(time.time(), 3),
            "relay": self.config.relay_id,
        }
        self.outbox.complete_control(message, body)
        self._started = started
        if restarted:
            logger.warning("PBX %s: Asterisk restarted (started %s, before: %s)", self.name, started, before)
        self._kick()

    def _on_close(self, had_error: bool) -> None:
        if not self.logged_in:
            return
        self.logged_in = False
        outbox = self.outbox
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        started = self._started
        body = {
            "type": "disconnected",
            "pbx": self.name,
            "epoch": outbox.epoch,
            "last_seq": outbox.seq,
            "reason": self._last_error or ("error" if had_error else "closed"),
            "dropped": outbox.dropped,
            "asterisk_started": started,
            "time": round(time.time(), 3),
            "relay": self.config.relay_id,
        }
        self._last_error = None
        outbox.add_control("disconnected", body)
        self.previous = {"epoch": outbox.epoch, "last_seq": outbox.seq, "asterisk_started": started}
        logger.warning("PBX %s: AMI session closed (epoch %d ended at %d)", self.name, outbox.epoch, outbox.seq)
        spawn(self.actions.sync(), self._tasks, f"relay {self.name}: actions off")
        self._kick()

    def _on_error(self, exc: BaseException) -> None:
        self._last_error = str(exc) or type(exc).__name__

    def _drops_logged(self) -> None:
        if self.outbox.last_drop is not None:
            first, last, reason = self.outbox.last_drop
            count = last - first + 1
            logger.warning("PBX %s: %d frame(s) dropped (%s), numbers %d-%d", self.name, count, reason, first, last)

    # -- publishing --------------------------------------------------------------------------------

    def _kick(self) -> None:
        self._wake.set()

    async def _publish_loop(self) -> None:
        outbox = self.outbox
        link = self.link
        while True:  # until stop() cancels it, after the last control message went out
            if not link.up.is_set():
                await link.up.wait()
            if self._generation != link.generation or self._resend:
                self._generation = link.generation
                self._requeue()
            message = outbox.next_to_send()
            if message is None:
                self._wake.clear()
                await wait_or(self._wake, self._ack_wait())
                self._check_acks()
                continue
            js = link.js
            assert js is not None
            try:
                future = await js.publish_async(message.subject, message.payload, headers=message.headers)
            except (nats.errors.Error, nats.js.errors.Error, OSError) as exc:
                # not sent (NATS went away meanwhile): it stays first in line
                logger.debug("PBX %s: publish failed: %s", self.name, exc)
                await asyncio.sleep(0.05)
                continue
            outbox.sent(message, time.monotonic(), future)
            future.add_done_callback(functools.partial(self._acked, message))

    def _acked(self, message: Message, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or message.future is not future:
            return  # an attempt given up on (a newer one is in flight)
        exc = future.exception()
        if exc is not None:
            if isinstance(exc, nats.js.errors.NoStreamResponseError):
                spawn(self._restore_stream(), self._tasks, f"relay {self.name}: stream")
            else:
                logger.warning("PBX %s: JetStream refused a message (%s); sending again", self.name, exc)
            self._resend = True
            self._kick()
            return
        outbox = self.outbox
        outbox.acked(message, bool(future.result().duplicate))
        if not outbox.full:
            self._room.set()
            if outbox.dropping and outbox.end_drops() is not None:  # room again: say what was lost now
                self._drops_logged()
        self._kick()

    def _ack_wait(self) -> float | None:
        sent = self.outbox.oldest_sent_at()
        if sent is None:
            return None
        return max(0.0, sent + self._ack_timeout() - time.monotonic())

    def _ack_timeout(self) -> float:
        attempts = next((m.attempts for m in self.outbox.inflight if not m.acked), 1)
        return min(self.config.ack_timeout * 2.0 ** (attempts - 1), _MAX_ACK_TIMEOUT)

    def _check_acks(self) -> None:
        sent = self.outbox.oldest_sent_at()
        if sent is not None and time.monotonic() - sent >= self._ack_timeout():
            logger.warning(
                "PBX %s: no acknowledgement from JetStream within %.1f s; sending again", self.name, self._ack_timeout()
            )
            self._resend = True

    def _requeue(self) -> None:
        """Everything in flight goes out again, in order, with the same message ids (stored once)."""
        self._resend = False
        again = self.outbox.requeue()
        for message in again:
            future, message.future = message.future, None
            if future is not None and not future.done():
                future.cancel()
        if again:
            logger.info("PBX %s: sending %d unacknowledged message(s) again", self.name, len(again))

    async def _restore_stream(self) -> None:
        """JetStream answered "no stream" (a nats-server that lost its store): make the stream again."""
        c = self.config
        try:
            await self.link.ensure_stream(
                c.stream, max_age=c.max_age, max_bytes=c.max_bytes, duplicate_window=c.duplicate_window
            )
        except (AmiError, nats.errors.Error, nats.js.errors.Error) as exc:
            logger.warning("PBX %s: cannot restore the stream %s: %s", self.name, c.stream, exc)
            await asyncio.sleep(1.0)

    async def _brake(self) -> None:
        """``on_stall='block'``: while the outbox is full this stops taking frames from an ``events()``
        stream of the client, which then stops reading Asterisk (the client's own back-pressure)."""
        async with self.ami.events(maxsize=64) as stream:
            async for _ in stream:
                if self.outbox.full:
                    await self._room.wait()

    # -- reading the stream ------------------------------------------------------------------------

    async def _read_previous(self) -> dict[str, Any] | None:
        """Where this PBX's last epoch ended, from the stream (so it survives a relay killed with
        SIGKILL): its epoch, the last number stored, and when that Asterisk had started."""
        js = self.link.js
        assert js is not None
        try:
            last = await js.get_last_msg(self.config.stream, wire.follow_subject(self.name))
        except nats.js.errors.NotFoundError:
            return None
        headers = last.headers or {}
        try:
            epoch = int(headers[wire.H_EPOCH])
            last_seq = int(headers.get(wire.H_SEQ_LAST) or headers[wire.H_SEQ])
        except (KeyError, ValueError):
            logger.warning("PBX %s: the last message in the stream has no epoch/sequence headers", self.name)
            return None
        started = None
        try:
            control = await js.get_last_msg(self.config.stream, wire.control_subject(self.name))
            body = json.loads(control.data or b"{}")
            if isinstance(body, dict):
                started = body.get("asterisk_started")
        except (nats.js.errors.NotFoundError, ValueError):
            pass
        logger.info("PBX %s: the stream ends at epoch %d, number %d", self.name, epoch, last_seq)
        return {"epoch": epoch, "last_seq": last_seq, "asterisk_started": started}

    # -- state -------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"connected": self.logged_in, "logins": self.logins, **self.outbox.stats()}
        stats["actions"] = self.actions.served
        stats["actions_refused"] = self.actions.refused
        return stats


def _when(status: dict[str, Any], date: str, clock: str) -> str | None:
    day, hour = status.get(date), status.get(clock)
    if not isinstance(day, str) or not isinstance(hour, str) or not day:
        return None
    return f"{day} {hour}"
