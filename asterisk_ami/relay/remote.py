"""``RemoteAmi``: the client's event and action API on the bus, for one PBX or all of them.

::

    async with RemoteAmi("nats://127.0.0.1:4222", pbx="london") as ami:
        ami.on("Hangup", lambda frame: print(frame["identifier"], frame["channel"]))
        ami.on("ami_gap", lambda gap: print("lost", gap))
        result = await ami.request({"Action": "CoreShowChannels"})

Frames are the client's dicts, ``identifier`` set to the PBX's name. Duplicates (by PBX, epoch and
sequence number) are dropped and losses reported with ``ami_gap`` (``sequence.py`` has the rules). A
``LiveState`` can sit on it: it asks for its lists at the start and again after every gap, and the
answers reach ``ami_data`` at the point of the stream where the relay read them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api

from ..actions import ActionResult, ResponseCallback
from ..errors import ActionTimeoutError, AmiError, InvalidMessageError, NotConnectedError, UsageError
from ..messages import ActionIdGenerator, find_action_id
from ..originate import EVENT as ORIGINATE_EVENT
from ..originate import OriginateResult, originate_message, result_timeout
from ..protocol import Frame
from . import wire
from .config import DEFAULT_DUPLICATE_WINDOW, DEFAULT_MAX_AGE, DEFAULT_MAX_BYTES, PBX_NAME
from .emitter import Emitter
from .link import NatsLink, connect_options, spawn
from .puller import Puller
from .sequence import Gap, Tracker
from .streams import RemoteStream

logger = logging.getLogger("asterisk_ami.relay")
LoginActions = Callable[[], Sequence[Mapping[str, object]]]
_REPLY_MARGIN = 2.0  # seconds a requester waits past the action's own timeout for the relay's reply
_MAX_HELD = 1000  # messages held for one PBX while numbers are missing, at most


class _Item:
    """One message of the stream, its numbers read from its headers."""

    __slots__ = ("control", "epoch", "first", "last", "msg", "pbx")

    def __init__(self, pbx: str, epoch: int, first: int, last: int, control: dict[str, Any] | None, msg: Msg):
        self.pbx = pbx
        self.epoch = epoch
        self.first = first
        self.last = last
        self.control = control
        self.msg = msg

    def key(self) -> tuple[int, int, int]:
        # a control message names the last number before it: it goes after the frames up to there
        return (self.epoch, self.first, 0 if self.control is None else 1)


class _Hold:
    __slots__ = ("items", "timer")

    def __init__(self, items: list[_Item], timer: asyncio.TimerHandle) -> None:
        self.items = items
        self.timer = timer


class RemoteAmi(Emitter):
    """Events and actions of ``pbx`` (``"*"``: every PBX) through a relay's JetStream stream.

    ``replay=True`` starts from the oldest stored message (a consumer that was down catches up);
    otherwise from new messages. ``durable=NAME`` keeps the position on the server: the next
    ``RemoteAmi`` with that name goes on after the last frame this one handed to its handlers (one
    process per name at a time). ``nats_options`` go to ``nats.connect`` (``user``, ``password``,
    ``token``, ``user_credentials``, ``tls``...).

    Events: ``ami_data`` and each event name (frames), ``ami_gap(gap)`` (a :class:`Gap`),
    ``ami_login(True, control)`` (the PBX's relay session logged in: a new epoch, or at the start when it
    is), ``ami_control(control)`` (every control message: ``connected``, ``disconnected``),
    ``ami_socket_unwritable`` (``send()`` to a PBX no relay serves), ``error``.
    """

    def __init__(
        self,
        url: str | Sequence[str] = "nats://127.0.0.1:4222",
        *,
        pbx: str,
        replay: bool = False,
        durable: str | None = None,
        stream: str = "AMI",
        max_queued_frames: int = 2000,
        action_timeout: float = 10.0,
        batch: int = 256,
        reorder_window: float = 1.0,
        nats_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if pbx != "*" and not PBX_NAME.match(pbx):
            raise ValueError(f"pbx {pbx!r}: a PBX name (letters, digits, '_', '-') or '*' for every PBX")
        if durable is not None and not PBX_NAME.match(durable):
            raise ValueError(f"durable {durable!r}: use letters, digits, '_' or '-'")
        servers = [url] if isinstance(url, str) else list(url)
        options = connect_options(servers, name=f"asterisk-ami consumer {pbx}")
        options.update(nats_options or {})
        self.link = NatsLink(options)
        self.pbx = pbx
        self.replay = replay
        self.durable = durable
        self.stream = stream
        self.max_queued_frames = max_queued_frames
        self.action_timeout = action_timeout
        self.reorder_window = reorder_window
        self.tracker = Tracker()
        self._holds: dict[str, _Hold] = {}
        self.state = "disconnected"
        self._batch = batch
        self._puller: Puller | None = None
        self._markers = 0
        self._markers_done = asyncio.Event()
        self._providers: list[LoginActions] = []
        self._streams: list[RemoteStream] = []
        self._held: dict[str, list[tuple[int, int, list[Frame]]]] = {}
        self._ids = ActionIdGenerator("remote-" + secrets.token_hex(4))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._resume_seq: int | None = None  # a durable made again after its acknowledged floor
        self._to_ack: Msg | None = None
        self._unacked = 0
        self._counts = {"messages": 0, "frames": 0, "bytes": 0, "bad_messages": 0}

    def __repr__(self) -> str:
        return f"<RemoteAmi pbx={self.pbx} stream={self.stream} {self.state}>"

    async def __aenter__(self) -> RemoteAmi:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.disconnect()

    # -- state ---------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the PBX's relay session is logged in (with ``"*"``: any PBX's), as its control
        messages last said."""
        positions = self.tracker.positions
        if self.pbx != "*":
            pos = positions.get(self.pbx)
            return pos is not None and bool(pos.connected)
        return any(p.connected for p in positions.values())

    @property
    def pbxes(self) -> dict[str, dict[str, Any]]:
        """Per PBX seen: its epoch, the last number delivered, whether it is connected, its last control."""
        return {
            name: {"epoch": p.epoch, "seq": p.seq, "connected": p.connected, "control": p.control}
            for name, p in self.tracker.positions.items()
        }

    @property
    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = dict(self._counts)
        stats["gaps"] = self.tracker.gaps
        stats["duplicates"] = self.tracker.duplicates
        stats["queued_frames"] = sum(len(s) for s in self._streams)
        stats["held_replies"] = sum(len(v) for v in self._held.values())
        puller = self._puller
        stats["pull_requests"] = puller.requests if puller is not None else 0
        stats["consumer_recreated"] = puller.recreated if puller is not None else 0
        return stats

    # -- connecting ------------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect to NATS, make (or resume) the consumer, and read where every PBX is; returns once the
        consumer is ready. A NATS server that cannot be reached raises ``RelayError``."""
        if self.state != "disconnected":
            logger.warning("connect() ignored: this RemoteAmi is already %s", self.state)
            return
        self.state = "connecting"
        try:
            await self._connect()
        except BaseException:
            self.state = "disconnected"
            if self._puller is not None:
                await self._puller.close()
            await self.link.close()
            raise

    async def _connect(self) -> None:
        await self.link.connect(retry=False)
        js = self.link.js
        assert js is not None
        try:
            await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            # started before any relay: the stream with the default limits (a relay sets its own)
            await self.link.ensure_stream(
                self.stream,
                max_age=DEFAULT_MAX_AGE,
                max_bytes=DEFAULT_MAX_BYTES,
                duplicate_window=DEFAULT_DUPLICATE_WINDOW,
            )
        name = self.durable or f"remote-{secrets.token_hex(8)}"
        create = True
        if self.durable is not None:
            create = await self._resume_durable(name)
        else:
            self._markers_done.clear()
        self._puller = Puller(
            self.link,
            self.stream,
            name,
            self._consumer_config,
            self._on_msg,
            batch=self._batch,
            on_created=self._created,
        )
        await self._puller.start(create=create)
        if create is False:
            self._markers_done.set()
        await asyncio.wait_for(self._markers_done.wait(), 30)
        self.state = "connected"
        if self.durable is not None:
            spawn(self._acker(), self._tasks, "consumer: acks")
        for pbx, pos in list(self.tracker.positions.items()):
            if pos.connected and (self.pbx == "*" or pbx == self.pbx):
                self.emit_event("ami_login", True, pos.control)
                self._resync(pbx)

    async def _resume_durable(self, name: str) -> bool:
        """A durable that exists goes on after its acknowledged floor; False: bind to it as it is."""
        js = self.link.js
        assert js is not None
        try:
            info = await js.consumer_info(self.stream, name)
        except nats.js.errors.NotFoundError:
            return True
        floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
        delivered = info.delivered.stream_seq if info.delivered is not None else 0
        if delivered == floor and delivered > 0:
            await self._mark_from(floor)
            return False
        # delivered but not acknowledged by the process that died: made again just after the floor, so
        # they come first and in order (redelivered after ack_wait they would come late, as duplicates)
        await js.delete_consumer(self.stream, name)
        if floor > 0:
            await self._mark_from(floor)
            self._resume_seq = floor + 1
        return True

    async def _mark_from(self, seq: int) -> None:
        """The position of the last acknowledged message, so that an epoch that changed meanwhile is a gap."""
        js = self.link.js
        assert js is not None
        try:
            msg = await js.get_msg(self.stream, seq)
        except (nats.js.errors.NotFoundError, nats.js.errors.APIError):
            return
        headers = msg.headers or {}
        try:
            epoch, last = int(headers[wire.H_EPOCH]), int(headers.get(wire.H_SEQ_LAST) or headers[wire.H_SEQ])
        except (KeyError, ValueError):
            return
        self.tracker.mark(headers.get(wire.H_PBX) or wire.pbx_of(msg.subject or "..."), epoch, last)

    def _consumer_config(self, start_seq: int | None) -> api.ConsumerConfig:
        if start_seq is None and self._resume_seq is not None:
            start_seq, self._resume_seq = self._resume_seq, None
        if start_seq is not None:
            policy = api.DeliverPolicy.BY_START_SEQUENCE
        elif self.replay:
            policy = api.DeliverPolicy.ALL
        else:  # the last message of each subject first: where each PBX is, and whether it is connected
            policy = api.DeliverPolicy.LAST_PER_SUBJECT
        durable = self.durable is not None
        return api.ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=policy,
            opt_start_seq=start_seq,
            filter_subject=wire.follow_subject(self.pbx),
            ack_policy=api.AckPolicy.ALL if durable else api.AckPolicy.NONE,
            max_ack_pending=self._batch * 8 if durable else None,
            inactive_threshold=None if durable else 300.0,
            mem_storage=None if durable else True,
        )

    def _created(self, info: api.ConsumerInfo) -> None:
        if info.config.deliver_policy == api.DeliverPolicy.LAST_PER_SUBJECT:
            self._markers = info.num_pending or 0
        if self._markers == 0:
            self._markers_done.set()

    async def disconnect(self) -> None:
        """Stop consuming (a durable acknowledges what its handlers had), end every stream, close NATS."""
        for pbx in list(self._holds):
            self._expire(pbx)
        self.state = "disconnected"
        await self._ack_now()
        if self._puller is not None:
            await self._puller.close()
        for task in list(self._tasks):
            task.cancel()
        for stream in list(self._streams):
            stream.close()
        await self.link.close()

    close = disconnect

    # -- the stream ------------------------------------------------------------------------------------

    def _on_msg(self, msg: Msg) -> None:
        headers = msg.headers or {}
        subject = msg.subject
        try:
            pbx = headers.get(wire.H_PBX) or wire.pbx_of(subject)
            epoch = int(headers[wire.H_EPOCH])
            first = int(headers[wire.H_SEQ])
            last = int(headers.get(wire.H_SEQ_LAST) or first)
        except (KeyError, ValueError, IndexError):
            self._bad(subject, "no epoch/sequence headers")
            return
        counts = self._counts
        counts["messages"] += 1
        counts["bytes"] += len(msg.data)
        control = self._control_body(msg) if wire.is_control(subject) else None
        if control is None and wire.is_control(subject):
            return
        if self._markers:
            self._markers -= 1
            self.tracker.mark(pbx, epoch, first if control is not None else last, control)
            if self._markers == 0:
                self._markers_done.set()
            return
        item = _Item(pbx, epoch, first, last, control, msg)
        if pbx in self._holds:
            self._holds[pbx].items.append(item)
            self._drain(pbx)
        elif self.tracker.hole(pbx, epoch, first, control):
            # numbers are missing: a publish retried after a NATS reconnect may be stored after later
            # ones, so wait a moment for them before calling them lost
            timer = asyncio.get_running_loop().call_later(self.reorder_window, self._expire, pbx)
            self._holds[pbx] = _Hold([item], timer)
        else:
            self._process(item)

    def _drain(self, pbx: str) -> None:
        """Process what is held for ``pbx`` as far as nothing is missing before it."""
        hold = self._holds[pbx]
        items = hold.items
        items.sort(key=_Item.key)
        while items and not self.tracker.hole(pbx, items[0].epoch, items[0].first, items[0].control):
            self._process(items.pop(0))
        if not items:
            hold.timer.cancel()
            del self._holds[pbx]
        elif len(items) > _MAX_HELD:
            self._expire(pbx)

    def _expire(self, pbx: str) -> None:
        """The missing numbers did not come: what is held goes on, the loss reported as a gap."""
        hold = self._holds.pop(pbx, None)
        if hold is None:
            return
        hold.timer.cancel()
        for item in sorted(hold.items, key=_Item.key):
            self._process(item)

    def _process(self, item: _Item) -> None:
        tracker = self.tracker
        pbx, control = item.pbx, item.control
        if control is not None:
            new, gap = tracker.control(pbx, item.epoch, item.first, control)
            if gap is not None:
                self.emit_event("ami_gap", gap)
            if new:
                self.emit_event("ami_control", control)
                kind = control.get("type")
                if self.state == "connected" and (kind == "connected" or (gap is not None and kind == "dropped")):
                    if kind == "connected":
                        self.emit_event("ami_login", True, control)
                    self._resync(pbx)
            self._release(pbx)
            self._processed(item.msg)
            return
        first, last = item.first, item.last
        skip, gap = tracker.events(pbx, item.epoch, first, last)
        count = last - first + 1
        if skip >= count:
            self._processed(item.msg)
            return
        try:
            data = json.loads(item.msg.data)
        except ValueError:
            self._bad(item.msg.subject, "not JSON")
            return
        frames: list[Frame] = data if data.__class__ is list else [data]
        if len(frames) != count:
            self._bad(item.msg.subject, f"{len(frames)} frames for numbers {first}-{last}")
        if skip:
            frames = frames[skip:]
        for frame in frames:
            frame["identifier"] = pbx
        if gap is not None:
            self.emit_event("ami_gap", gap)
        self._counts["frames"] += len(frames)
        self.deliver(frames)
        streams = self._streams
        if streams:
            for frame in frames:
                event = frame.get("event")
                for stream in streams:
                    if stream.names is None or event in stream.names:
                        stream.push(frame)
        if gap is not None and self.state == "connected":
            self._resync(pbx)
        if self._held:
            self._release(pbx)
        self._processed(item.msg)

    def _control_body(self, msg: Msg) -> dict[str, Any] | None:
        try:
            body = json.loads(msg.data)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._bad(msg.subject, "control message is not a JSON object")
            return None
        return body

    def _bad(self, subject: str, why: str) -> None:
        self._counts["bad_messages"] += 1
        if self._counts["bad_messages"] <= 10:
            logger.warning("a message on %s is not in the relay's format (%s): skipped", subject, why)

    def _processed(self, msg: Msg) -> None:
        if self.durable is not None:  # AckAll: acknowledging this acknowledges what came before it
            self._to_ack = msg
            self._unacked += 1
            if self._unacked >= self._batch // 2:
                spawn(self._ack_now(), self._tasks, "consumer: ack")

    async def _acker(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            await self._ack_now()

    async def _ack_now(self) -> None:
        if self._holds:  # messages before the last processed one still wait: not acknowledged yet
            return
        msg, self._to_ack = self._to_ack, None
        self._unacked = 0
        if msg is not None and self._puller is not None:
            await self._puller.ack(msg)

    # -- events() ----------------------------------------------------------------------------------

    def events(self, *names: str, maxsize: int | None = None) -> RemoteStream:
        """Event frames (every one, or those named) as an async iterator, bounded by ``maxsize``
        (default ``max_queued_frames``); also an async context manager that ends it."""
        stream = RemoteStream(names, maxsize or self.max_queued_frames, self._stream_changed)
        self._streams.append(stream)
        return stream

    def _stream_changed(self, stream: RemoteStream) -> None:
        if stream.closed and stream in self._streams:
            self._streams.remove(stream)
        puller = self._puller
        if puller is None:
            return
        if any(s.full for s in self._streams):
            puller.pause()
        else:
            puller.resume()

    # -- actions ---------------------------------------------------------------------------------------

    def _target(self, pbx: str | None) -> str:
        target = pbx or self.pbx
        if target == "*":
            raise UsageError("this RemoteAmi follows every PBX: name the one to act on (pbx=...)")
        return target

    async def request(
        self,
        message: Mapping[str, object],
        timeout: float | None = 10,
        *,
        pbx: str | None = None,
        until_event: str | None = None,
    ) -> ActionResult:
        """Send an action to the PBX through its relay and wait for its ``ActionResult`` (event lists and
        ``Command`` output collected), with the ActionID you gave. A PBX that no relay serves now (its AMI
        session is down, or no relay runs) fails at once with ``NotConnectedError``; the relay's refusals
        and Asterisk's errors raise as the client's do (``ActionError``, ``ActionNotAllowedError``, ...)."""
        result, error, _ = await self._call(self._target(pbx), message, timeout, until_event)
        if error is not None:
            raise error
        assert result is not None
        return result

    async def _call(
        self, pbx: str, message: Mapping[str, object], timeout: float | None, until_event: str | None
    ) -> tuple[ActionResult | None, AmiError | None, tuple[int, int]]:
        """(the result, None, where the relay read it) or (the result or None, the error, where)."""
        nc = self.link.nc
        if nc is None or not nc.is_connected:
            return None, NotConnectedError("not connected to NATS"), (0, 0)
        seconds = self.action_timeout if timeout is None else timeout
        headers = {wire.H_TIMEOUT: f"{seconds:g}"}
        if until_event is not None:
            headers[wire.H_UNTIL_EVENT] = until_event
        try:
            payload = wire.encode(dict(message))
        except (TypeError, ValueError):
            return None, InvalidMessageError("the action's values must be text, numbers or lists of them"), (0, 0)
        wait = seconds + _REPLY_MARGIN
        try:
            reply = await nc.request(wire.action_subject(pbx), payload, timeout=wait, headers=headers)
        except nats.errors.NoRespondersError:
            return None, NotConnectedError(f"PBX {pbx}: no relay serves it now (its AMI session is down)"), (0, 0)
        except nats.errors.TimeoutError:
            return None, ActionTimeoutError(f"PBX {pbx}: no answer from the relay within {wait:g} s"), (0, 0)
        result, error = wire.decode_reply(reply.data)
        rh = reply.headers or {}
        try:
            where = (int(rh.get(wire.H_EPOCH, "0")), int(rh.get(wire.H_AFTER_SEQ, "0")))
        except ValueError:
            where = (0, 0)
        return result, error, where

    def action(
        self, message: Mapping[str, object], timeout: float | None = None, *, pbx: str | None = None
    ) -> asyncio.Future[ActionResult]:
        """``request()`` as an ``asyncio.Future`` (the client's ``action()``)."""
        return asyncio.ensure_future(self.request(message, timeout, pbx=pbx))

    async def originate(self, channel: str, *, pbx: str | None = None, **options: Any) -> OriginateResult:
        """``Originate`` with ``Async: true`` through the relay, answered once its ``OriginateResponse`` is
        in (the client's ``originate()`` options)."""
        message = originate_message(channel, **options)
        result = await self.request(
            message, result_timeout(options.get("timeout")), pbx=pbx, until_event=ORIGINATE_EVENT
        )
        return OriginateResult.from_result(result)

    def send(
        self, message: Mapping[str, object], callback: ResponseCallback | None = None, *, pbx: str | None = None
    ) -> str:
        """Send an action and return its ActionID at once (generated when absent). Its answer comes back as
        frames through ``ami_data`` (response, list events, closing event), at the point of the stream where
        the relay read it; ``callback(response)`` runs when the answer is in."""
        target = self._target(pbx)
        _, action_id = find_action_id(message)
        if action_id is None:
            action_id = self._ids()
            message = {**message, "ActionID": action_id}
        spawn(self._send(target, message, callback), self._tasks, f"send to {target}")
        return action_id

    async def _send(self, pbx: str, message: Mapping[str, object], callback: ResponseCallback | None) -> None:
        result, error, (epoch, after) = await self._call(pbx, message, None, None)
        if isinstance(error, NotConnectedError):
            self.emit_event("ami_socket_unwritable")
            return
        if result is None:  # an answer with no frames: a timeout, a refusal by the relay
            logger.debug("send() to %s: %s", pbx, error)
            return
        frames = wire.reply_frames(result)
        for frame in frames:
            frame["identifier"] = pbx
        if callback is not None:
            try:
                returned = callback(dict(frames[0]))
                if returned is not None:
                    self.handler_returned(callback, returned)
            except Exception as exc:
                self.handler_failed(callback, exc)
        self._held.setdefault(pbx, []).append((epoch, after, frames))
        self._release(pbx)

    def _release(self, pbx: str) -> None:
        """Answers to ``send()`` whose place in the stream has been reached go to ``ami_data`` now."""
        held = self._held.get(pbx)
        if not held:
            return
        keep = []
        for epoch, after, frames in sorted(held, key=lambda h: (h[0], h[1])):
            reached = self.tracker.reached(pbx, epoch, after)
            if reached:
                self.deliver(frames)
            elif reached is not None:
                keep.append((epoch, after, frames))
            # None: the consumer is past that epoch, the answer is stale (a resync follows the gap)
        if keep:
            self._held[pbx] = keep
        else:
            del self._held[pbx]

    # -- login actions (what LiveState uses) -------------------------------------------------------------

    def add_login_actions(self, provider: LoginActions) -> None:
        """``provider()`` is asked for actions at the start (when the PBX is connected), at every new epoch
        and after every gap; they are sent to the PBX and answered through ``ami_data``."""
        self._providers.append(provider)

    def remove_login_actions(self, provider: LoginActions) -> None:
        if provider in self._providers:
            self._providers.remove(provider)

    def _resync(self, pbx: str) -> None:
        for provider in list(self._providers):
            try:
                actions = list(provider())
            except Exception:
                logger.exception("a login-actions provider raised")
                continue
            for action in actions:
                self.send(action, pbx=pbx)


__all__ = ["Gap", "RemoteAmi"]
