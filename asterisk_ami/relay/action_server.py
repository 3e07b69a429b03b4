"""Actions by request/reply on ``ami.<pbx>.action``, served only while the PBX's AMI session is logged in.

While it is not, nothing is subscribed, so NATS answers a request at once with "no responders" and the
requester fails at once (``NotConnectedError``) instead of waiting or reaching another PBX. Every request
gets an ActionID of the relay's own (two requesters may both use ``1``); the reply carries the
requester's back. Event lists and ``Command`` output are collected as ``request()`` collects them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ..actions import ActionResult
from ..errors import ActionError, AmiError, InvalidMessageError, NotConnectedError
from . import wire
from .errors import ActionNotAllowedError, RelayError
from .link import spawn

if TYPE_CHECKING:
    from .publisher import PbxRelay

logger = logging.getLogger("asterisk_ami.relay")
QUEUE_GROUP = "asterisk-ami-relay"  # two relays of one PBX: one of them answers each request
_MAX_TIMEOUT = 600.0


class ActionServer:
    def __init__(self, relay: PbxRelay) -> None:
        self.relay = relay
        self.subject = wire.action_subject(relay.name)
        self.served = 0
        self.refused = 0
        self._sub: Subscription | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._counter = 0

    async def sync(self) -> None:
        """Subscribe while the AMI session is logged in, unsubscribe while it is not."""
        async with self._lock:
            want = self.relay.logged_in and not self.relay.stopping
            nc = self.relay.link.nc
            if want and self._sub is None and nc is not None:
                try:
                    self._sub = await nc.subscribe(self.subject, queue=QUEUE_GROUP, cb=self._on_request)
                    await nc.flush(timeout=5)  # the server has the interest before `connected` is published
                except (nats.errors.Error, OSError, asyncio.TimeoutError) as exc:
                    logger.warning("PBX %s: cannot serve %s: %s", self.relay.name, self.subject, exc)
            elif not want and self._sub is not None:
                sub, self._sub = self._sub, None
                # drained, not dropped: a request already on its way is still answered (NotConnectedError)
                drain: Callable[[], Awaitable[None]] = sub.drain  # untyped in nats-py
                with contextlib.suppress(nats.errors.Error, OSError, asyncio.TimeoutError):
                    await drain()

    async def stop(self) -> None:
        await self.sync()
        for task in list(self._tasks):
            task.cancel()

    async def _on_request(self, msg: Msg) -> None:
        if not msg.reply:
            return
        if len(self._tasks) >= self.relay.config.max_actions:
            self.refused += 1
            error = RelayError(f"PBX {self.relay.name}: too many actions in flight")
            await self._reply(msg, wire.error_reply(error, None))
            return
        spawn(self._serve(msg), self._tasks, f"relay {self.relay.name}: action")

    async def _serve(self, msg: Msg) -> None:
        relay = self.relay
        action_id: str | None = None
        record: list[int | None] = [None]
        try:
            message, action_id = _parse(msg.data)
            name = str(message["Action"])
            if not relay.pbx.allows(name):
                self.refused += 1
                raise ActionNotAllowedError(f"PBX {relay.name}: the relay does not allow {name}")
            if not relay.ami.connected:
                raise NotConnectedError(f"PBX {relay.name}: its AMI session is not logged in")
            timeout = _timeout(msg.headers, relay.config.action_timeout)
            until = (msg.headers or {}).get(wire.H_UNTIL_EVENT) or None
            self._counter += 1
            own_id = f"{relay.id_prefix}{self._counter}"
            message["ActionID"] = own_id
            relay.requests[own_id] = record
            try:
                if until is None:
                    result: ActionResult = await relay.ami.action(message, timeout)
                else:
                    result = await relay.ami.action(message, timeout, until_event=until)
            finally:
                relay.requests.pop(own_id, None)
            reply = wire.result_reply(result, action_id)
            self.served += 1
        except AmiError as exc:
            if isinstance(exc, ActionError) and not isinstance(exc, ActionNotAllowedError):
                self.served += 1  # answered by Asterisk, with an error
            reply = wire.error_reply(exc, action_id)
        after = record[0] if record[0] is not None else relay.outbox.seq
        headers = {wire.H_PBX: relay.name, wire.H_EPOCH: str(relay.outbox.epoch), wire.H_AFTER_SEQ: str(after)}
        await self._reply(msg, reply, headers)

    async def _reply(self, msg: Msg, reply: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        nc = self.relay.link.nc
        if nc is None:
            return
        try:
            await nc.publish(msg.reply, wire.encode(reply), headers=headers)
        except (nats.errors.Error, OSError) as exc:
            logger.debug("PBX %s: cannot send a reply: %s", self.relay.name, exc)


def _parse(data: bytes) -> tuple[dict[str, Any], str | None]:
    """The request's JSON action -> (the message with ``Action`` and no ActionID, the requester's ActionID)."""
    try:
        value = json.loads(data)
    except ValueError:
        raise InvalidMessageError("the request is not JSON") from None
    if not isinstance(value, Mapping):
        raise InvalidMessageError("the request must be a JSON object (the action's headers)")
    message: dict[str, Any] = {}
    action_id: str | None = None
    for key, item in value.items():
        lower = str(key).lower()
        if lower == "actionid":
            action_id = None if item is None else str(item)
            continue
        if lower == "action":
            if "Action" in message:
                raise InvalidMessageError("the request names its Action twice")
            key = "Action"
        message[key] = item
    if not isinstance(message.get("Action"), str) or not message["Action"]:
        raise InvalidMessageError("the request has no Action")
    return message, action_id


def _timeout(headers: dict[str, str] | None, default: float) -> float:
    value = (headers or {}).get(wire.H_TIMEOUT)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise InvalidMessageError(f"{wire.H_TIMEOUT} is not a number of seconds") from None
    if not 0 < seconds <= _MAX_TIMEOUT:
        raise InvalidMessageError(f"{wire.H_TIMEOUT} must be between 0 and {_MAX_TIMEOUT:.0f} seconds")
    return seconds
