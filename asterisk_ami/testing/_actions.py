"""``FakeSession``'s action handlers (login, Challenge, Events, Filter, Command...), apart from its I/O."""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from ..errors import ProtocolError
from ..filters import FilterSet
from ..protocol import AmiProtocol, Frame
from ._reader import _Message
from ._wire import (
    EVENT_SYSTEM,
    CommandOutput,
    HeaderItems,
    Reply,
    Responder,
    _encode_items,
    _id_items,
    _with_line_end,
    render_reply,
    strings_to_mask,
)

if TYPE_CHECKING:
    from ._server import FakeAsterisk
    from ._session import FakeSession

logger = logging.getLogger("asterisk_ami.testing")  # not __name__: the one name tests and users filter on


class SessionActions:
    """How a session answers each message, mixed into :class:`~asterisk_ami.testing.FakeSession`, which
    owns the socket, the write lock and the thread these run on."""

    # set up by FakeSession
    server: FakeAsterisk
    number: int
    username: str | None
    logged_in: bool
    event_mask: int
    read_mask: int
    filters: FilterSet
    actions: list[Frame]
    _wlock: threading.Lock
    _challenge: str | None
    _protocol: AmiProtocol
    send_raw: Callable[[bytes], bool]
    _send: Callable[[bytes], bool]
    _write_locked: Callable[[bytes | memoryview], bool]
    _sleep: Callable[[float], bool]

    def _respond(self, msg: _Message, response: str, message: str | None) -> None:
        """``astman_send_response_full``."""
        items: HeaderItems = [("Response", response), *_id_items(msg.header("ActionID") or None)]
        if message is not None:
            items.append(("Message", message))
        self._send(_encode_items(items, self.server.encoding))

    def _error(self, msg: _Message, message: str) -> None:
        self._respond(msg, "Error", message)

    def _parse(self, msg: _Message) -> Frame:
        data = b"\r\n".join(msg.lines) + b"\r\n\r\n"
        try:
            frames = self._protocol.receive_data(data)
        except ProtocolError:
            self._protocol = AmiProtocol(self.server.encoding)
            frames = []
        return frames[0] if frames else {"raw": data.decode(self.server.encoding, "replace")}

    def _handle(self, msg: _Message) -> bool:
        """Answer one message; False when the session must close afterwards."""
        srv = self.server
        if msg.hdr_loss:
            self._error(msg, "Too many lines in message or allocation failure")
            return True
        if msg.too_long:
            self._error(msg, "Failed to parse message: line too long")
            return True
        frame = self._parse(msg)
        self.actions.append(frame)
        srv._record(frame)
        action = msg.header("Action", skip_empty=True)
        if not action:
            self._error(msg, "Missing action in request")
            return True
        name = action.lower()
        if not self.logged_in and name not in ("login", "logoff", "challenge"):
            self._error(msg, "Permission denied")
            return True
        if name == "login":
            return self._login(msg)
        if name == "challenge":
            self._challenge_action(msg)
            return True
        found, reply = srv._responder(name)
        if found:
            self._reply(msg, frame, action, reply)
            return True
        if name == "logoff":
            self._respond(msg, "Goodbye", "Thanks for all the fish.")
            return False
        if name == "ping":
            items: HeaderItems = [
                ("Response", "Success"),
                *_id_items(msg.header("ActionID") or None),
                ("Ping", "Pong"),
                ("Timestamp", f"{time.time():.6f}"),
            ]
            self._send(_encode_items(items, srv.encoding))
        elif name == "events":
            self._events_action(msg)
        elif name == "filter":
            self._filter_action(msg)
        elif name == "command":
            self._command_action(msg)
        else:
            self._error(msg, f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands.")
        return True

    def _reply(self, msg: _Message, frame: Frame, action: str, reply: Reply | Responder) -> None:
        srv = self.server
        if callable(reply):
            try:
                reply = reply(frame, cast("FakeSession", self))
            except Exception as exc:
                logger.exception("the responder for %s raised; no answer sent", action)
                srv._responder_failed(exc)
                return
        try:
            data = render_reply(reply, msg.header("ActionID") or None, srv.encoding, srv.line_end)
        except (TypeError, ValueError, UnicodeError) as exc:
            logger.exception("cannot render the reply to %s; no answer sent", action)
            srv._responder_failed(exc)
            return
        if data:
            self.send_raw(data)

    def _login(self, msg: _Message) -> bool:
        srv = self.server
        if self.logged_in:
            self._respond(msg, "Success", "Already authenticated")
            return True
        if self._sleep(srv.login_delay):
            return False
        username = msg.header("Username")
        secret = srv._secret_for(username)
        ok = False
        if secret is not None:
            if msg.header("AuthType").lower() == "md5":
                key = msg.header("Key")
                if key and self._challenge:
                    digest = hashlib.md5((self._challenge + secret).encode(srv.encoding), usedforsecurity=False)
                    ok = key == digest.hexdigest()
            else:
                ok = msg.header("Secret") == secret
        if not ok:
            logger.info("session #%d: authentication as %r failed", self.number, username)
            if self._sleep(srv.auth_fail_delay):
                return False
            self._error(msg, "Authentication failed")
            return False
        mask = strings_to_mask(msg.header("Events"))
        with self._wlock:
            # as manager.c's authenticate(): the session is sent only what its account may read
            self.read_mask = srv._read_mask_for(username)
            self.event_mask = self.read_mask & mask if mask >= 0 else self.read_mask
            self.username = username
            self.logged_in = True
            items: HeaderItems = [
                ("Response", "Success"),
                *_id_items(msg.header("ActionID") or None),
                ("Message", "Authentication accepted"),
            ]
            data = _encode_items(items, srv.encoding)
            if srv.send_fully_booted and self.event_mask & EVENT_SYSTEM:
                uptime = int(time.monotonic() - srv._started_at)
                data += _encode_items(
                    [
                        ("Event", "FullyBooted"),
                        ("Privilege", "system,all"),
                        ("Uptime", uptime),
                        ("LastReload", uptime),
                        ("Status", "Fully Booted"),
                    ]
                )
            # counted before the answer goes out, under the write lock: a client that sees the answer
            # also sees login_count, and what a test sends after wait_for_clients() follows the answer
            srv._logged_in(cast("FakeSession", self))
            self._write_locked(_with_line_end(data, srv.line_end))
        logger.debug("session #%d: logged in as %s", self.number, username)
        return True

    def _challenge_action(self, msg: _Message) -> None:
        if msg.header("AuthType").lower() != "md5":
            self._error(msg, "Must specify AuthType")
            return
        if not self._challenge:
            self._challenge = self.server.challenge or str(random.randrange(2**31))[:9]
        items: HeaderItems = [
            ("Response", "Success"),
            *_id_items(msg.header("ActionID") or None),
            ("Challenge", self._challenge),
        ]
        self._send(_encode_items(items, self.server.encoding))

    def _events_action(self, msg: _Message) -> None:
        mask = strings_to_mask(msg.header("EventMask"))
        if mask < 0:
            self._error(msg, "Invalid event mask")
            return
        items: HeaderItems = [
            ("Response", "Success"),
            *_id_items(msg.header("ActionID") or None),
            ("Events", "On" if mask else "Off"),
        ]
        with self._wlock:  # the new mask and its answer together: no event slips in before the answer
            self.event_mask = self.read_mask & mask  # set_eventmask(): never more than the account reads
            self._write_locked(_with_line_end(_encode_items(items, self.server.encoding), self.server.line_end))

    def _filter_action(self, msg: _Message) -> None:
        if msg.header("Operation").lower() != "add":
            self._error(msg, "Unknown operation")
            return
        with self._wlock:  # the filter and its answer together, as for Events
            problem = self.filters.add(msg.header("MatchCriteria"), msg.header("Filter"))
        if problem:
            self._error(msg, problem)
        else:
            self._respond(msg, "Success", "Success")

    def _command_action(self, msg: _Message) -> None:
        command = msg.header("Command")
        if not command:
            self._error(msg, "No command provided")
            return
        output = self.server._command_output(command)
        if output is None:
            best = " ".join(command.split())
            output = CommandOutput(
                f"No such command '{command}' (type 'core show help {best}' for other possible commands)\n",
                success=False,
            )
        self._send(output.render(msg.header("ActionID") or None, self.server.encoding))
