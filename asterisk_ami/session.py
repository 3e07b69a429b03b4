"""One AMI connection's life, sans-IO: login, the pre-login queue, correlation, keepalive, deadlines, logoff.

The client lifecycle (``lifecycle.py``) makes one session per connection and feeds it what the shell reads
(:meth:`AmiSession.receive_data`, :meth:`~AmiSession.receive_eof`, :meth:`~AmiSession.connection_lost`);
the shell writes what :meth:`~AmiSession.data_to_send` returns and closes the transport once
:attr:`~AmiSession.close_expected` turns True. Nothing here blocks, sleeps, or reads a clock: ``now`` is
passed in (any monotonic clock, the same for every call).

The states and every transition (``_TRANSITIONS`` below is the table the code enforces)::

    CHALLENGE_SENT --Challenge answered-------> LOGIN_SENT       (auth='md5')
    LOGIN_SENT     --Login accepted-----------> OPEN
    OPEN           --logoff()-----------------> LOGGING_OFF
    any but CLOSED --refused, timed out, failed, EOF, abort(), logoff deadline, connection_lost()--> CLOSED

Rules that live here and nowhere else:

* The session writes ``Login`` (or ``Challenge`` then an MD5 ``Login``) as soon as it is made; the login
  must be answered within ``connect_timeout`` of ``now`` at creation, or :class:`TimedOut`.
* Right after the login answer come the ``event_filters`` (``Action: Filter``), then the login actions
  (with ``login_hook``, the session reports :class:`LoginActionsWanted` and waits for
  :meth:`~AmiSession.login_actions`), then the actions sent before, in order. A filter Asterisk refuses is
  :class:`FilterRejected`; the session stays open.
* ``logoff()`` before the login is answered waits for it, writes what was queued, then ``Logoff``.
* A refused login (or challenge) is *fatal*: :class:`Closed` says so and nobody reconnects by itself.
* Keepalive: after ``ping_interval`` seconds without a byte from the server a ``Ping`` is written; no byte
  within ``ping_timeout`` after it is :class:`TimedOut`. While the shell holds reading back
  (:meth:`~AmiSession.pause_keepalive`) the server's silence proves nothing, so no Ping is due.
* Action timeouts and the Logoff deadline are deadlines like the others.
* The end fails every action still waiting with the error that ended the connection: a refused login's
  ``AuthenticationError``; ``NotConnectedError`` for an action never written; ``ConnectionLostError`` for
  one written; the cause chained. Fire-and-forget actions never written are counted in one WARNING.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping

from .actions import ActionDone, ActionResult, ActionTracker, PendingAction, ResponseCallback
from .errors import (
    ActionError,
    ActionNotSentError,
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
from .session_events import (
    Closed,
    Failed,
    FilterRejected,
    FramesReceived,
    LoggedIn,
    LoginActionsWanted,
    LoginRefused,
    ServerClosed,
    SessionEvent,
    TimedOut,
)

logger = logging.getLogger("asterisk_ami")
Log = logging.Logger | logging.LoggerAdapter  # type: ignore[type-arg]

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


def action_name(msg: Mapping[str, object]) -> str:
    """The ``Action:`` header's value (any case of the key), for messages and logs."""
    return next((str(v) for k, v in msg.items() if isinstance(k, str) and k.lower() == "action"), "action")


class AmiSession:
    """The protocol state of one connection, from the first byte to the close. Not thread-safe."""

    def __init__(
        self,
        options: AmiOptions,
        now: float,
        ids: ActionIdGenerator | None = None,
        *,
        login_hook: bool = False,
        log: Log | None = None,
    ) -> None:
        self.options = options
        self.ids = ids or ActionIdGenerator()
        self.log: Log = log or logger
        self.state = _S.LOGIN_SENT
        self.frames_received = 0
        self.bytes_received = 0
        self._login_hook = login_hook
        self._hook_pending = False  # LoginActionsWanted reported, login_actions() not called yet
        self._protocol = AmiProtocol(options.ami_encoding, options.max_frame_bytes)
        self._tracker = ActionTracker()
        self._out: list[bytes] = []
        self._events: list[SessionEvent] = []
        # what waits for the login (or for the login actions): bytes, and the tracked action if any
        self._queued: list[tuple[bytes, PendingAction | None]] = []
        self._queued_bytes = 0
        self._login_id = self.ids()
        self._challenge_id: str | None = None
        self._login_deadline = now + options.connect_timeout
        self._last_rx = now
        self._ping_deadline: float | None = None  # a keepalive Ping is out, unanswered
        self._keepalive_paused = False
        self._logoff_deadline: float | None = None
        self._logoff_wanted = False  # logoff() came before the login answer
        self._close_expected = False
        self._had_error = False
        self._fatal = False
        self._lost = False
        self._error: BaseException | None = None  # what ended the session
        self._reason: str | None = None  # and in words, for the errors of the actions it fails
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

    @property
    def queued_bytes(self) -> int:
        """Bytes of actions waiting for the login (or the login actions), not yet in data_to_send()."""
        return self._queued_bytes

    def data_to_send(self) -> bytes:
        """The bytes to write now, in order (empty when there are none)."""
        if not self._out:
            return b""
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out = []
        return data

    def has_data_to_send(self) -> bool:
        return bool(self._out)

    def events_received(self) -> list[SessionEvent]:
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
        elif self._keepalive_due():
            deadlines.append(self._ping_deadline or self._last_rx + (self.options.ping_interval or 0.0))
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
            self.log.error("protocol error: %s", exc)
            self.fail(exc)
            return
        if not frames:
            return
        self.frames_received += len(frames)
        identifier = self.options.identifier
        if identifier is not None:  # before anything sees them: results and responses carry it too
            for frame in frames:
                frame["identifier"] = identifier
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
            self.log.warning("connection closed inside a frame; %d bytes dropped", pending)
        self._events.append(ServerClosed())
        self._end(None, "Asterisk closed the connection")
        self._close()

    def connection_lost(self, error: BaseException | None = None) -> None:
        """The transport is closed (``error``: the socket error that closed it). Ends the session."""
        if self._lost:
            return
        self._lost = True
        if isinstance(error, TimeoutError) and self.state in _LOGGING_IN:  # TCP connect or TLS took too long
            o = self.options
            self._time_out(f"no connection to {o.host}:{o.port} within {o.connect_timeout} s ({error})")
        elif error is not None and self.state is not _S.CLOSED:
            self._events.append(Failed(error))
            self._had_error = True
            self._end(error, str(error) or type(error).__name__)
        self._end(None, "the connection closed")
        unsent = sum(1 for _, entry in self._queued if entry is None)
        self._queued.clear()
        self._queued_bytes = 0
        for entry in self._tracker.drain():
            if entry.waiter.__class__ is _FilterWaiter:
                continue  # the next login writes it again
            self._events.append(ActionDone(entry, None, self._waiter_error(entry)))
        if unsent:
            self.log.warning("%d action(s) given to send() were never written: %s", unsent, self._reason)
        self._set_state(_S.CLOSED)
        self._close_expected = True
        self._events.append(Closed(self._had_error, self._fatal, self._error))

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
            self.log.debug("no Goodbye within logoff_timeout: closing")
            self._end(None, "disconnect() logged off")
            self._close()
            return
        deadline = self._tracker.next_deadline()
        if deadline is not None and now >= deadline:
            for entry in self._tracker.expire(now):
                timeout = ActionTimeoutError(f"{entry.name} ({entry.action_id}): no result in time")
                self._action_done(ActionDone(entry, None, timeout))
        if self._keepalive_due():
            if self._ping_deadline is not None:
                if now >= self._ping_deadline:
                    self._time_out(f"no answer to keepalive Ping within {o.ping_timeout} s")
            elif now - self._last_rx >= (o.ping_interval or 0.0):
                self._ping_deadline = now + o.ping_timeout
                self._write({"Action": "Ping", "ActionID": self.ids()})

    def pause_keepalive(self) -> None:
        """The shell stopped reading (its consumers are full): no byte can prove the link alive meanwhile."""
        self._keepalive_paused = True
        self._ping_deadline = None

    def resume_keepalive(self, now: float) -> None:
        """Reading goes on: the keepalive counts the server's silence from ``now``."""
        self._keepalive_paused = False
        self._last_rx = now

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
        the event of that name carrying the ActionID, see actions.py). Raises ``NotConnectedError`` once
        closed or logging off, a ``ValueError`` when the same ActionID is already waiting, and see
        :func:`prepare_action`."""
        msg, action_id, data = prepare_action(message, self.ids, self.options.ami_encoding)
        state = self.state
        if state is _S.CLOSED or state is _S.LOGGING_OFF or self._logoff_wanted:
            raise NotConnectedError(f"not connected to Asterisk: {self._reason or 'logging off'}")
        entry = None
        if callback is not None or waiter is not None:
            if action_id in self._tracker:
                raise ValueError(f"ActionID {action_id!r} is already waiting for a result")
            deadline = None if timeout is None else now + timeout
            entry = PendingAction(action_id, action_name(msg), waiter, callback, deadline, until_event)
            self._tracker.add(entry)
        if state in _LOGGING_IN or self._hook_pending:
            self._queued.append((data, entry))
            self._queued_bytes += len(data)
        else:
            if self.log.isEnabledFor(logging.DEBUG):
                self.log.debug("send %s", redact(msg))
            self._out.append(data)
            if entry is not None:
                entry.written = True
        return action_id

    def login_actions(self, actions: Iterable[Mapping[str, object]], now: float) -> None:
        """The answer to :class:`LoginActionsWanted`: written now, before the actions queued meanwhile."""
        if not self._hook_pending:
            return  # the session ended meanwhile
        self._hook_pending = False
        for message in actions:
            try:
                self.send(message, now)
            except (TypeError, ValueError) as exc:  # InvalidMessageError, a repeated ActionID
                self.log.error("a login action cannot be written: %s", exc)
        self._write_queued()
        if self._logoff_wanted:
            self._logoff_now(now)

    def cancel(self, action_id: str) -> bool:
        """Stop tracking an action (its waiter was cancelled); a late answer is then dropped."""
        return self._tracker.remove(action_id) is not None

    def logoff(self, now: float) -> None:
        """Log off: Asterisk answers Goodbye and closes; after ``logoff_timeout`` the session closes anyway.
        Before the login is answered, the logoff waits for it (and for what was queued to be written)."""
        if self.state is _S.OPEN and not self._hook_pending:
            self._logoff_now(now)
        elif self.state in _LOGGING_IN or self._hook_pending:
            self._logoff_wanted = True

    def abort(self, reason: str) -> None:
        """End the session now, without Logoff (``destroy()``, or a logoff that could not wait longer)."""
        if self.state is not _S.CLOSED:
            self._end(None, reason)
            self._close()

    def fail(self, error: AmiError | OSError) -> None:
        """End the session with ``error`` (a protocol error, a write that could not complete)."""
        if self.state is not _S.CLOSED:
            self._events.append(Failed(error))
            self._had_error = True
            self._end(error, str(error))
            self._close()

    # -- internals -------------------------------------------------------------------------------------

    def _keepalive_due(self) -> bool:
        return self.state is _S.OPEN and bool(self.options.ping_interval) and not self._keepalive_paused

    def _set_state(self, state: SessionState) -> None:
        if state is not self.state and state not in _TRANSITIONS[self.state]:
            raise AssertionError(f"no transition {self.state.name} -> {state.name}")
        self.state = state

    def _write(self, message: Mapping[str, object]) -> None:
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("send %s", redact(message))
        self._out.append(encode_message(message, self.options.ami_encoding))

    def _write_queued(self) -> None:
        for data, entry in self._queued:
            self._out.append(data)
            if entry is not None:
                entry.written = True
        self._queued = []
        self._queued_bytes = 0

    def _logoff_now(self, now: float) -> None:
        self._logoff_wanted = False
        self._write({"Action": "Logoff", "ActionID": self.ids()})
        self._set_state(_S.LOGGING_OFF)
        self._logoff_deadline = now + self.options.logoff_timeout
        self._end(None, "disconnect() logged off")

    def _end(self, error: BaseException | None, reason: str) -> None:
        """Remember what ended the session (the first reason given wins)."""
        if self._reason is None:
            self._error, self._reason = error, reason

    def _waiter_error(self, entry: PendingAction) -> AmiError:
        """What a waiter still waiting at the end fails with: a new exception per waiter, the cause chained."""
        cause = self._error
        if isinstance(cause, AuthenticationError):
            return AuthenticationError(str(cause), cause.frame)
        error: AmiError
        if entry.written:
            error = ConnectionLostError(
                f"{entry.name} ({entry.action_id}): the connection closed before its result arrived: {self._reason}"
            )
        else:
            error = ActionNotSentError(f"{entry.name} ({entry.action_id}) was never written: {self._reason}")
        error.__cause__ = cause
        return error

    def _close(self) -> None:
        if self.state is not _S.CLOSED:
            self._set_state(_S.CLOSED)
        self._close_expected = True

    def _time_out(self, message: str) -> None:
        error = ConnectTimeoutError(message)
        self._events.append(TimedOut(error))
        self._end(error, message)
        self._close()

    def _cannot_log_in(self, exc: InvalidMessageError) -> None:
        # options are checked up front, so only a bug gets here: report it and stop, as a refused
        # login does, rather than retry forever
        self.log.error("cannot log in: %s", exc)
        self._fatal = True
        self.fail(exc)

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
                self._logged_in(frames[: i + 1], frame, now)
                return frames[i + 1 :]
        self._events.append(FramesReceived(frames))
        return []

    def _logged_in(self, frames: list[Frame], frame: Frame, now: float) -> None:
        self._set_state(_S.OPEN)
        self.log.info("logged in as %s", self.options.username)
        self._events.append(FramesReceived(frames))
        self._events.append(LoggedIn(frame))
        if self._logoff_wanted:  # disconnect() while logging in: what was queued, then Logoff
            self._write_queued()
            self._logoff_now(now)
            return
        for expression in self.options.event_filters:  # checked with the options: they can be written
            waiter = _FilterWaiter(expression)
            self.send(filter_message(expression), now, waiter=waiter, timeout=self.options.connect_timeout)
        if self._login_hook:
            self._hook_pending = True
            self._events.append(LoginActionsWanted())
        else:
            self._write_queued()

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
            self.log.debug("event filter %r added", expression)
            return
        self.log.error("Asterisk refused the event filter %r: %s (its events are not filtered)", expression, reason)
        error = EventFilterError(f"Asterisk refused the event filter {expression!r}: {reason}", expression, frame)
        self._events.append(FilterRejected(error))

    def _refused(self, frames: list[Frame], frame: Frame, message: str) -> None:
        error = AuthenticationError(message, frame)
        self._events.append(FramesReceived(frames))
        self._events.append(LoginRefused(frame, error))
        self._had_error = self._fatal = True
        self._end(error, f"login refused: {message}")
        self._close()


__all__ = [
    "ActionDone",
    "ActionResult",
    "AmiSession",
    "SessionState",
    "action_name",
    "prepare_action",
    "redact",
]
