"""One AMI connection's life, sans-IO: login, the pre-login queue, correlation, keepalive, deadlines, logoff.

A shell (``client.py`` with threads, ``asterisk_ami.asyncio`` with one event loop) owns the socket and the
clock. It feeds what it reads to :meth:`AmiSession.receive_data` (and :meth:`~AmiSession.receive_eof`),
writes what :meth:`~AmiSession.data_to_send` returns, calls :meth:`~AmiSession.handle_timeout` at
:meth:`~AmiSession.next_deadline`, closes the transport when :attr:`~AmiSession.close_expected` turns
True, reports the close with :meth:`~AmiSession.connection_lost`, and acts on
:meth:`~AmiSession.events_received`. Nothing here blocks, sleeps, or reads a clock: ``now`` is passed in
(any monotonic clock, the same for every call).

The states and every transition (``_TRANSITIONS`` below is the table the code enforces)::

    CHALLENGE_SENT --Challenge answered-------> LOGIN_SENT       (auth='md5')
    LOGIN_SENT     --Login accepted-----------> OPEN
    OPEN           --logoff()-----------------> LOGGING_OFF
    any but CLOSED --refused, timed out, protocol error, EOF, logoff deadline, connection_lost()--> CLOSED

Rules that live here and nowhere else:

* The session writes ``Login`` (or ``Challenge`` then an MD5 ``Login``) as soon as it is made; the login
  must be answered within ``connect_timeout`` of ``now`` at creation, or :class:`TimedOut`.
* Right after the login answer come the ``event_filters`` (``Action: Filter``), then the shell's login
  actions (both written at every login), then the actions sent before the login was answered, in
  order. A filter Asterisk refuses is :class:`FilterRejected`; the session stays open.
* A refused login (or challenge) is *fatal*: :class:`Closed` says so and a shell must not reconnect.
* Keepalive: after ``ping_interval`` seconds without a byte from the server a ``Ping`` is written; no byte
  within ``ping_timeout`` after it is :class:`TimedOut`.
* Action timeouts and the Logoff deadline are deadlines like the others.
* The connection closing fails every action in flight with :class:`ConnectionLostError`.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from .actions import ActionDone, ActionResult, ActionTracker, PendingAction, ResponseCallback
from .errors import (
    ActionError,
    ActionTimeoutError,
    AmiError,
    AuthenticationError,
    ConnectionLostError,
    ConnectTimeoutError,
    EventFilterError,
    InvalidMessageError,
    NotConnectedError,
    ProtocolError,
)
from .filters import filter_message
from .messages import ActionIdGenerator, encode_message, find_action_id, login_message, md5_login_message
from .options import AmiOptions
from .protocol import AmiProtocol, Frame, frame_kind

logger = logging.getLogger("asterisk_ami")

_SECRET_KEYS = frozenset({"secret", "key", "password"})


def redact(message: Mapping[str, object]) -> dict[str, object]:
    """A copy of ``message`` safe to log: secrets replaced by ``***``."""
    return {k: "***" if k.lower() in _SECRET_KEYS else v for k, v in message.items()}


class SessionState(enum.Enum):
    CHALLENGE_SENT = "challenge_sent"
    LOGIN_SENT = "login_sent"
    OPEN = "open"
    LOGGING_OFF = "logging_off"
    CLOSED = "closed"


_S = SessionState
_TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    _S.CHALLENGE_SENT: frozenset({_S.LOGIN_SENT, _S.CLOSED}),
    _S.LOGIN_SENT: frozenset({_S.OPEN, _S.CLOSED}),
    _S.OPEN: frozenset({_S.LOGGING_OFF, _S.CLOSED}),
    _S.LOGGING_OFF: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
}
_LOGGING_IN = frozenset({_S.CHALLENGE_SENT, _S.LOGIN_SENT})


class ClientState(str, enum.Enum):  # not enum.StrEnum: that is Python 3.11+
    """What ``ami.state`` says, on both shells; a ``str``, so ``ami.state == 'connected'`` holds."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"  # logged in
    RECONNECT_WAIT = "reconnect_wait"

    def __str__(self) -> str:
        return self.value


# -- what a session reports -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FramesReceived:
    """Frames from the server, in order (the login answer included): for ``ami_data`` and event names."""

    frames: list[Frame]


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """The login was accepted (``ami_login(True, frame)``); queued actions are in data_to_send()."""

    frame: Frame


@dataclass(frozen=True, slots=True)
class LoginRefused:
    """The login or the MD5 challenge was refused (``ami_login(False, frame)``, then ``error``)."""

    frame: Frame
    error: AuthenticationError


@dataclass(frozen=True, slots=True)
class TimedOut:
    """No login answer within ``connect_timeout``, or no answer to a keepalive Ping (``ami_socket_timeout``)."""

    error: ConnectTimeoutError


@dataclass(frozen=True, slots=True)
class Failed:
    """The connection failed: a ``ProtocolError``, a login that cannot be written, or a socket error
    (``ami_socket_error(error)``)."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class FilterRejected:
    """Asterisk refused (or did not answer) a filter of ``event_filters``: ``ami_socket_error(error)``;
    the connection stays up."""

    error: EventFilterError


@dataclass(frozen=True, slots=True)
class ServerClosed:
    """The server closed the connection (``ami_socket_end``)."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is over (``ami_socket_close(had_error)``); always the last event of a session.

    ``fatal``: the login was refused or cannot be written; a shell must not reconnect by itself."""

    had_error: bool
    fatal: bool


Event: TypeAlias = (
    FramesReceived | LoggedIn | LoginRefused | ActionDone | TimedOut | Failed | FilterRejected | ServerClosed | Closed
)


class _FilterWaiter:
    """The waiter of a filter's action: its answer is the session's business, not a future's."""

    __slots__ = ("expression",)

    def __init__(self, expression: str) -> None:
        self.expression = expression


def prepare_action(
    message: Mapping[str, object], ids: ActionIdGenerator, encoding: str
) -> tuple[dict[str, object], str, bytes]:
    """Check and encode one action: (the message with its ActionID, the ActionID, its bytes).

    An ActionID is generated when the message has none. Raises ``TypeError`` for a non-mapping and an
    ``InvalidMessageError`` for a message that could inject headers or that Asterisk would reject."""
    if not isinstance(message, Mapping):
        raise TypeError(f"an action must be a mapping of header names to values, not {type(message).__name__}")
    msg = dict(message)
    key, action_id = find_action_id(msg)
    if not action_id:
        action_id = ids()
        msg[key or "ActionID"] = action_id
    return msg, action_id, encode_message(msg, encoding)


def _action_name(msg: Mapping[str, object]) -> str:
    return next((str(v) for k, v in msg.items() if k.lower() == "action"), "action")


class AmiSession:
    """The protocol state of one connection, from the first byte to the close. Not thread-safe."""

    def __init__(
        self,
        options: AmiOptions,
        now: float,
        ids: ActionIdGenerator | None = None,
        login_actions: Callable[[], Iterable[Mapping[str, object]]] | None = None,
    ) -> None:
        self.options = options
        self.ids = ids or ActionIdGenerator()
        self._login_actions = login_actions
        self.state = _S.LOGIN_SENT
        self.frames_received = 0
        self.bytes_received = 0
        self._protocol = AmiProtocol(options.ami_encoding, options.max_frame_bytes)
        self._tracker = ActionTracker()
        self._out: list[bytes] = []
        self._events: list[Event] = []
        self._prelogin: list[bytes] = []
        self._login_id = self.ids()
        self._challenge_id: str | None = None
        self._login_deadline = now + options.connect_timeout
        self._last_rx = now
        self._ping_deadline: float | None = None  # a keepalive Ping is out, unanswered
        self._logoff_deadline: float | None = None
        self._close_expected = False
        self._had_error = False
        self._fatal = False
        self._lost = False
        try:
            if options.auth == "md5":
                self.state = _S.CHALLENGE_SENT
                self._challenge_id = self._login_id + "c"
                self._write({"Action": "Challenge", "AuthType": "MD5", "ActionID": self._challenge_id})
            else:
                self._write(login_message(options.username, options.password, options.events, self._login_id))
        except InvalidMessageError as exc:
            self._cannot_log_in(exc)

    def __repr__(self) -> str:
        return f"<AmiSession {self.state.name} pending={len(self._tracker)}>"

    # -- what the shell reads ------------------------------------------------------------------------

    @property
    def banner(self) -> str | None:
        return self._protocol.banner

    @property
    def protocol_version(self) -> str | None:
        return self._protocol.protocol_version

    @property
    def logged_in(self) -> bool:
        return self.state is _S.OPEN or self.state is _S.LOGGING_OFF

    @property
    def close_expected(self) -> bool:
        """True once the session is over: the shell closes the transport, then calls connection_lost()."""
        return self._close_expected

    @property
    def pending_actions(self) -> int:
        return len(self._tracker)

    def data_to_send(self) -> bytes:
        """The bytes to write now, in order (empty when there are none)."""
        if not self._out:
            return b""
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out = []
        return data

    def has_data_to_send(self) -> bool:
        return bool(self._out)

    def events_received(self) -> list[Event]:
        """What happened since the last call, in order."""
        events = self._events
        self._events = []
        return events

    def next_deadline(self) -> float | None:
        """When handle_timeout() must be called next (None: no deadline). It may be called earlier."""
        if self.state is _S.CLOSED:
            return None
        deadlines = [d for d in (self._tracker.next_deadline(), self._logoff_deadline) if d is not None]
        if self.state in _LOGGING_IN:
            deadlines.append(self._login_deadline)
        elif self.state is _S.OPEN and self.options.ping_interval:
            deadlines.append(self._ping_deadline or self._last_rx + self.options.ping_interval)
        return min(deadlines) if deadlines else None

    # -- what the shell feeds ------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes read from the server."""
        if self.state is _S.CLOSED:
            return
        self._last_rx = now
        self._ping_deadline = None  # any byte proves the link alive
        self.bytes_received += len(data)
        try:
            frames = self._protocol.receive_data(data)
        except ProtocolError as exc:
            logger.error("protocol error: %s", exc)
            self._fail(exc)
            return
        if not frames:
            return
        self.frames_received += len(frames)
        if self.state in _LOGGING_IN:
            frames = self._login_frames(frames, now)
            if not frames:
                return
        if not len(self._tracker):
            self._events.append(FramesReceived(frames))
            return
        batch: list[Frame] = []
        feed = self._tracker.feed
        for frame in frames:
            batch.append(frame)
            done = feed(frame)
            if done is not None:
                self._events.append(FramesReceived(batch))
                self._action_done(done)
                batch = []
        if batch:
            self._events.append(FramesReceived(batch))

    def receive_eof(self) -> None:
        """The server closed its side (not after the shell's own close)."""
        if self.state is _S.CLOSED:
            return
        pending = self._protocol.pending_bytes
        if pending:
            logger.warning("connection closed inside a frame; %d bytes dropped", pending)
        self._events.append(ServerClosed())
        self._close()

    def connection_lost(self, error: BaseException | None = None) -> None:
        """The transport is closed (``error``: the socket error that closed it). Ends the session."""
        if self._lost:
            return
        self._lost = True
        if isinstance(error, TimeoutError):  # TCP connect or TLS handshake took too long
            o = self.options
            self._time_out(f"no connection to {o.host}:{o.port} within {o.connect_timeout} s ({error})")
        elif error is not None:
            logger.warning("socket error: %s", error)
            self._events.append(Failed(error))
            self._had_error = True
        self._prelogin.clear()
        for entry in self._tracker.drain():
            if entry.waiter.__class__ is _FilterWaiter:
                continue  # the next login writes it again
            lost = ConnectionLostError("connection to Asterisk closed before the result arrived")
            self._events.append(ActionDone(entry, None, lost))
        self._set_state(_S.CLOSED)
        self._close_expected = True
        self._events.append(Closed(self._had_error, self._fatal))

    def handle_timeout(self, now: float) -> None:
        """Act on every deadline at or before ``now``."""
        state = self.state
        if state is _S.CLOSED:
            return
        o = self.options
        if state in _LOGGING_IN and now >= self._login_deadline:
            self._time_out(f"no login answer from {o.host}:{o.port} within {o.connect_timeout} s")
            return
        if self._logoff_deadline is not None and now >= self._logoff_deadline:
            logger.debug("no Goodbye within logoff_timeout: closing")
            self._close()
            return
        deadline = self._tracker.next_deadline()
        if deadline is not None and now >= deadline:
            for entry in self._tracker.expire(now):
                timeout = ActionTimeoutError(f"{entry.name} ({entry.action_id}): no result in time")
                self._action_done(ActionDone(entry, None, timeout))
        if state is _S.OPEN and o.ping_interval:
            if self._ping_deadline is not None:
                if now >= self._ping_deadline:
                    self._time_out(f"no answer to keepalive Ping within {o.ping_timeout} s")
            elif now - self._last_rx >= o.ping_interval:
                self._ping_deadline = now + o.ping_timeout
                self._write({"Action": "Ping", "ActionID": self.ids()})

    # -- what the user asks for (through the shell) --------------------------------------------------

    def send(
        self,
        message: Mapping[str, object],
        now: float,
        *,
        callback: ResponseCallback | None = None,
        waiter: object = None,
        timeout: float | None = None,
        until_event: str | None = None,
    ) -> str:
        """Write one action (or queue it until the login is answered); returns its ActionID.

        With a ``callback`` or a ``waiter`` the action is tracked: an :class:`ActionDone` reports its
        response and outcome (``timeout`` seconds at most; with ``until_event``, the outcome comes with
        the event of that name carrying the ActionID, see actions.py). Raises ``NotConnectedError`` once closed, a
        ``ValueError`` when the same ActionID is already waiting, and see :func:`prepare_action`."""
        msg, action_id, data = prepare_action(message, self.ids, self.options.ami_encoding)
        state = self.state
        if state is _S.CLOSED:
            raise NotConnectedError("not connected to Asterisk")
        if callback is not None or waiter is not None:
            if action_id in self._tracker:
                raise ValueError(f"ActionID {action_id!r} is already waiting for a result")
            deadline = None if timeout is None else now + timeout
            self._tracker.add(PendingAction(action_id, _action_name(msg), waiter, callback, deadline, until_event))
        if state in _LOGGING_IN:
            self._prelogin.append(data)
        else:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("send %s", redact(msg))
            self._out.append(data)
        return action_id

    def cancel(self, action_id: str) -> bool:
        """Stop tracking an action (its waiter was cancelled); a late answer is then dropped."""
        return self._tracker.remove(action_id) is not None

    def logoff(self, now: float) -> None:
        """Log off: Asterisk answers Goodbye and closes; after ``logoff_timeout`` the session closes anyway.
        Before the login is answered there is nothing to log off from: the session closes at once."""
        if self.state is _S.OPEN:
            self._write({"Action": "Logoff", "ActionID": self.ids()})
            self._set_state(_S.LOGGING_OFF)
            self._logoff_deadline = now + self.options.logoff_timeout
        elif self.state in _LOGGING_IN:
            self._close()

    # -- internals -------------------------------------------------------------------------------------

    def _set_state(self, state: SessionState) -> None:
        if state is not self.state and state not in _TRANSITIONS[self.state]:
            raise AssertionError(f"no transition {self.state.name} -> {state.name}")
        self.state = state

    def _write(self, message: Mapping[str, object]) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("send %s", redact(message))
        self._out.append(encode_message(message, self.options.ami_encoding))

    def _close(self) -> None:
        if self.state is not _S.CLOSED:
            self._set_state(_S.CLOSED)
        self._close_expected = True

    def _fail(self, exc: AmiError) -> None:
        self._events.append(Failed(exc))
        self._had_error = True
        self._close()

    def _time_out(self, message: str) -> None:
        logger.warning("timed out: %s", message)
        self._events.append(TimedOut(ConnectTimeoutError(message)))
        self._close()

    def _cannot_log_in(self, exc: InvalidMessageError) -> None:
        # options are checked up front, so only a bug gets here: report it and stop, as a refused
        # login does, rather than retry forever
        logger.error("cannot log in: %s", exc)
        self._fatal = True
        self._fail(exc)

    def _login_frames(self, frames: list[Frame], now: float) -> list[Frame]:
        """Look for the challenge and login answers; returns the frames after the login answer."""
        o = self.options
        for i, frame in enumerate(frames):
            if frame_kind(frame) != "response":
                continue
            action_id = frame.get("actionid")
            success = str(frame.get("response")).lower() == "success"
            if self._challenge_id is not None and action_id == self._challenge_id:
                challenge = frame.get("challenge")
                if not isinstance(challenge, str) or not success:
                    self._refused(frames[: i + 1], frame, "MD5 challenge refused")
                    return []
                self._set_state(_S.LOGIN_SENT)
                try:
                    self._write(md5_login_message(o.username, challenge, o.password, o.events, self._login_id))
                except InvalidMessageError as exc:
                    self._events.append(FramesReceived(frames[: i + 1]))
                    self._cannot_log_in(exc)
                    return []
            elif action_id == self._login_id:
                if not success:
                    self._refused(frames[: i + 1], frame, str(frame.get("message") or "login refused"))
                    return []
                self._set_state(_S.OPEN)
                self._logged_in_actions(now)
                self._out.extend(self._prelogin)
                self._prelogin = []
                logger.info("logged in to %s:%s as %s", o.host, o.port, o.username)
                self._events.append(FramesReceived(frames[: i + 1]))
                self._events.append(LoggedIn(frame))
                return frames[i + 1 :]
        self._events.append(FramesReceived(frames))
        return []

    def _logged_in_actions(self, now: float) -> None:
        """What is written right after the login answer, before the actions queued meanwhile: the event
        filters, then the shell's login actions (a live state's lists, ...)."""
        for expression in self.options.event_filters:  # checked with the options: they can be written
            waiter = _FilterWaiter(expression)
            self.send(filter_message(expression), now, waiter=waiter, timeout=self.options.connect_timeout)
        for message in self._login_actions() if self._login_actions is not None else ():
            try:
                self.send(message, now)  # the session is open: written at once, after the filters
            except (TypeError, ValueError) as exc:  # InvalidMessageError, a repeated ActionID
                logger.error("a login action cannot be written: %s", exc)

    def _action_done(self, done: ActionDone) -> None:
        """An action is over: reported, unless it is one of the session's own filters."""
        waiter = done.entry.waiter
        if waiter.__class__ is not _FilterWaiter:
            self._events.append(done)
            return
        expression = waiter.expression
        outcome = done.outcome
        if isinstance(outcome, ActionError):
            frame = outcome.frame
            message = frame.get("message") if frame else None
            reason = message if isinstance(message, str) and message else "Response: Error"
        elif isinstance(outcome, BaseException):
            reason, frame = f"no answer within {self.options.connect_timeout} s", None
        else:
            logger.debug("event filter %r added", expression)
            return
        logger.error("Asterisk refused the event filter %r: %s (its events are not filtered)", expression, reason)
        error = EventFilterError(f"Asterisk refused the event filter {expression!r}: {reason}", expression, frame)
        self._events.append(FilterRejected(error))

    def _refused(self, frames: list[Frame], frame: Frame, message: str) -> None:
        logger.error("login as %s refused: %s", self.options.username, message)
        self._events.append(FramesReceived(frames))
        self._events.append(LoginRefused(frame, AuthenticationError(message, frame)))
        self._had_error = self._fatal = True
        self._close()


__all__ = [
    "ActionDone",
    "ActionResult",
    "AmiSession",
    "ClientState",
    "Closed",
    "Event",
    "Failed",
    "FramesReceived",
    "LoggedIn",
    "LoginRefused",
    "ServerClosed",
    "SessionState",
    "TimedOut",
    "prepare_action",
    "redact",
]
