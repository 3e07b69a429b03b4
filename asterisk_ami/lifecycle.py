"""The client's life above one connection, sans-IO: written once, for both shells.

``ClientLifecycle`` owns what ``AsteriskAmi`` is between ``connect()`` and the end: the client state, one
:class:`~asterisk_ami.session.AmiSession` per connection, the reconnect policy and its delay, what a
refused login means, ``action_timeout``, the bounded wait of ``disconnect()``, the frames held for a
caller of connect-and-wait, keepalive while reading is held back, a write that does not complete, and
the counters. A shell (``asterisk_ami.sync``, ``asterisk_ami.asyncio``) moves bytes and runs one timer at
:meth:`~ClientLifecycle.next_deadline`; it acts on :meth:`~ClientLifecycle.events_received` in order:
:class:`OpenTransport` (connect now), :class:`LoginActionsWanted` (run the providers, outside any lock,
answer with :meth:`~ClientLifecycle.login_actions`), frames and settled actions (run handlers),
:class:`ConnectResult` (settle connect waiters) and :class:`Stopped`. Nothing here blocks or reads a
clock: ``now`` is passed in.

The states and their transitions::

    DISCONNECTED   --start()------------------------------------------------> CONNECTING
    CONNECTING     --login accepted---------------------------------------> CONNECTED
    CONNECTING, CONNECTED --connection closed, reconnect on, not fatal, not stopping--> RECONNECT_WAIT
    RECONNECT_WAIT --the policy's delay is over-------------------------------> CONNECTING
    any            --stopped: disconnect(), destroy(), a refused login, a close without reconnect--> DISCONNECTED

Rules:

* A refused login is never retried, whatever ``reconnect`` says; it is logged once.
* ``disconnect()`` while logging in waits (at most its timeout) for the login, writes what was queued,
  then logs off; what could not be written fails with the reason. ``destroy()`` closes at once.
* An action sent with no connection (before ``connect()``, while waiting to reconnect, after the end)
  raises ``NotConnectedError``, with the error that ended the last connection as its cause.
* Failed reconnect attempts are logged as a WARNING for the first, then at most one a minute (with the
  count), the rest at DEBUG.
* After a connect-and-wait returns, the frames that followed the login answer are held until the caller
  next uses the client (:meth:`~ClientLifecycle.release`) or ``HOLD_SECONDS`` have passed, so a
  subscription made right after it misses none; the shell does not read meanwhile.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping

from .actions import ActionDone, ResponseCallback
from .checking import ActionChecker
from .errors import NotConnectedError, WriteBufferFullError, WriteTimeoutError
from .messages import ActionIdGenerator
from .options import AmiOptions, check_timeout
from .reconnect import ReconnectPolicy
from .session import AmiSession, Log, prepare_action
from .session_events import (
    Closed,
    ConnectResult,
    Event,
    FilterRejected,
    FramesReceived,
    LoggedIn,
    LoginRefused,
    OpenTransport,
    Stopped,
)

#: how long frames after the login wait for the caller of a connect-and-wait to use the client
HOLD_SECONDS = 0.25
#: how much longer than its timeout a shell's disconnect() waits for the lifecycle's own deadline to act
DISCONNECT_GRACE = 0.5
#: while a caller waits for the login, reads are parsed this much at a time (the rest waits as bytes)
_LOGIN_SLICE = 4096
#: failed reconnect attempts after the first are logged as a WARNING at most this often
RETRY_LOG_SECONDS = 60.0


class ClientState(str, enum.Enum):  # not enum.StrEnum: that is Python 3.11+
    """What ``ami.state`` says, on both shells; a ``str``, so ``ami.state == 'connected'`` holds."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"  # logged in
    RECONNECT_WAIT = "reconnect_wait"

    def __str__(self) -> str:
        return self.value


_C = ClientState
_HELD = (FramesReceived, ActionDone, FilterRejected)  # what reaches handlers and futures


class ClientLifecycle:
    """One client's connections, one after another. Not thread-safe: the threaded shell locks it."""

    def __init__(self, options: AmiOptions, log: Log, *, policy: ReconnectPolicy | None = None) -> None:
        self.options = options
        self.log = log
        self.ids = ActionIdGenerator()
        self.policy = policy or ReconnectPolicy(options.reconnect_after, options.reconnect_max)
        self.state = _C.DISCONNECTED
        self.session: AmiSession | None = None
        self.banner: str | None = None
        self.protocol_version: str | None = None
        #: the error that ended the last connection or stopped the client (a NotConnectedError's cause)
        self.last_error: BaseException | None = None
        self.login_hook = False  # the shell has login-actions providers
        self.checker = ActionChecker(options.catalogue, options.strict_actions)
        self.counts = {"frames": 0, "bytes": 0, "logins": 0, "reconnects": 0}
        self._events: list[Event] = []
        self._stopping = False  # disconnect() or destroy(): no reconnect
        self._started = False  # start() was called once
        self._session_logged_in = False  # the current session logged in
        self._stop_deadline: float | None = None  # disconnect() waiting for the login
        self._reconnect_at: float | None = None
        self._result_owed = False  # a ConnectResult is due for this start()
        self._waiters = 0  # callers blocked in a connect-and-wait
        self._held: list[Event] | None = None  # frames after the login answer, for the waiter's caller
        self._held_bytes: list[bytes] = []  # and what was read after them, not parsed yet
        self._hold_deadline: float | None = None
        self._reading_paused = False
        self._write_deadline: float | None = None
        self._failures = 0  # attempts that failed since the last login
        self._failures_logged = 0
        self._last_failure_log: float | None = None

    def __repr__(self) -> str:
        return f"<ClientLifecycle {self.state}>"

    # -- what the shell reads ------------------------------------------------------------------------

    def events_received(self) -> list[Event]:
        events = self._events
        self._events = []
        return events

    def next_deadline(self) -> float | None:
        deadlines = [self._reconnect_at, self._stop_deadline, self._hold_deadline, self._write_deadline]
        if self.session is not None:
            deadlines.append(self.session.next_deadline())
        known = [d for d in deadlines if d is not None]
        return min(known) if known else None

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    @property
    def has_data_to_send(self) -> bool:
        return self.session is not None and self.session.has_data_to_send()

    def data_to_send(self) -> bytes:
        return b"" if self.session is None else self.session.data_to_send()

    @property
    def close_expected(self) -> bool:
        """The shell closes its transport, then reports it with connection_lost()."""
        return self.session is not None and self.session.close_expected

    @property
    def queued_bytes(self) -> int:
        return 0 if self.session is None else self.session.queued_bytes

    @property
    def holding(self) -> bool:
        """Frames are held for a connect-and-wait's caller: the shell stops reading meanwhile (what
        Asterisk sends waits in the kernel's buffers, not as parsed frames in memory)."""
        return self._held is not None

    # -- what the shell feeds ------------------------------------------------------------------------

    def start(self, now: float) -> bool:
        """``connect()``: False (and a warning) when the client is already started."""
        if self.state is not _C.DISCONNECTED:
            self.log.warning("connect() ignored: this client is already connecting or connected")
            return False
        self._stopping = False
        self._started = True
        self._stop_deadline = None
        self.last_error = None
        self._result_owed = True
        self._failures = self._failures_logged = 0
        self.policy.reset()
        self._open(now)
        return True

    def wait_for_login(self, on: bool) -> None:
        """A caller starts (``on``) or stops waiting for the login: while one waits, what follows the login
        answer is held for it (see :meth:`connect_returned`)."""
        self._waiters += 1 if on else -1

    def connect_returned(self, now: float) -> None:
        """The caller of a connect-and-wait has its answer: the held frames go at :meth:`release`, or at
        the latest ``HOLD_SECONDS`` from now."""
        if self._held is not None and self._hold_deadline is None:
            self._hold_deadline = now + HOLD_SECONDS

    def release(self, now: float) -> None:
        """The caller uses the client: what was held is delivered now, in order, then the bytes read
        after it are parsed."""
        held, self._held = self._held, None
        self._hold_deadline = None
        if held:
            self._events[:0] = held  # before anything newer
        rest, self._held_bytes = self._held_bytes, []
        if rest and self.session is not None:
            self.session.receive_data(b"".join(rest), now)
            self._take(now)

    def receive_data(self, data: bytes, now: float) -> None:
        session = self.session
        if session is None:
            return
        if self._held is not None:  # the shell stops reading while holding: at most what it had read
            self._held_bytes.append(data)
            return
        if self._waiters and not session.logged_in and len(data) > _LOGIN_SLICE:
            # a caller waits for the login: parse up to its answer, keep the rest as bytes (a read can
            # bring thousands of frames; a thousand clients logging in at once would hold them all)
            for start in range(0, len(data), _LOGIN_SLICE):
                session.receive_data(data[start : start + _LOGIN_SLICE], now)
                self._take(now)
                if self._held is not None or self.session is not session:
                    rest = data[start + _LOGIN_SLICE :]
                    if rest and self._held is not None:
                        self._held_bytes.append(rest)
                    return
            return
        session.receive_data(data, now)
        self._take(now)

    def receive_eof(self, now: float) -> None:
        if self.session is not None:
            self.release(now)  # what came before the end is parsed first
            self.session.receive_eof()
            self._take(now)

    def connection_lost(self, error: BaseException | None, now: float) -> None:
        """The transport is closed, or could not be opened (``error``)."""
        if self.session is not None:
            self.release(now)
            self.session.connection_lost(error)
            self._write_deadline = None
            self._take(now)

    def handle_timeout(self, now: float) -> None:
        if self._reconnect_at is not None and now >= self._reconnect_at:
            self._reconnect_at = None
            self.counts["reconnects"] += 1
            self._open(now)
        if self._hold_deadline is not None and now >= self._hold_deadline:
            self.release(now)
        session = self.session
        if session is not None:
            if self._stop_deadline is not None and now >= self._stop_deadline:
                self._stop_deadline = None
                session.abort(f"disconnect() gave up waiting for the login after {self._stop_timeout} s")
            if self._write_deadline is not None and now >= self._write_deadline:
                self._write_deadline = None
                session.fail(self.write_timeout_error())
            session.handle_timeout(now)
            self._take(now)

    def set_reading(self, paused: bool, now: float) -> None:
        """The shell stopped (or resumed) reading for its consumers: keepalive waits meanwhile."""
        if paused == self._reading_paused:
            return
        self._reading_paused = paused
        if self.session is not None:
            if paused:
                self.session.pause_keepalive()
            else:
                self.session.resume_keepalive(now)

    def set_writing_blocked(self, blocked: bool, now: float) -> None:
        """The transport cannot take more bytes (asyncio's pause_writing), or can again: a write that stays
        blocked for ``write_timeout`` kills the connection."""
        if not blocked:
            self._write_deadline = None
        elif self._write_deadline is None and self.session is not None:
            self._write_deadline = now + self.options.write_timeout

    def write_failed(self, error: BaseException, now: float) -> None:
        """A write could not complete (the threaded shell's own write timeout, or an OSError)."""
        if self.session is not None:
            if isinstance(error, WriteTimeoutError | OSError):
                self.session.fail(error)
            self._take(now)

    def login_actions(self, actions: Iterable[Mapping[str, object]], now: float) -> None:
        if self.session is not None:
            self.session.login_actions(actions, now)
            self._take(now)

    # -- what the user asks for (through the shell) ----------------------------------------------------

    def send(
        self,
        message: Mapping[str, object],
        now: float,
        *,
        callback: ResponseCallback | None = None,
        waiter: object = None,
        timeout: object = None,
        until_event: str | None = None,
        backlog: int = 0,
    ) -> str:
        """Hand one action to the session; returns its ActionID. ``timeout`` is checked here (None: the
        ``action_timeout`` option for a waited-for action). ``backlog``: bytes the shell's transport still
        holds. Raises ``NotConnectedError`` with no connection, ``WriteBufferFullError`` when
        ``max_write_bytes`` already wait, and what :func:`~asterisk_ami.session.prepare_action` raises."""
        seconds = check_timeout(timeout)
        if seconds is None and waiter is not None:
            seconds = self.options.action_timeout
        session = self.session
        # the catalogue's check: per action, never per frame; strict refuses before anything is queued
        banner = session.banner if session is not None and session.banner else self.banner
        problems = self.checker.check(message, banner) if self.checker.enabled else []
        if session is None or self._stopping:
            prepare_action(message, self.ids, self.options.ami_encoding)  # a bad message says so first
            raise self.not_connected()
        if not self.has_room(backlog):
            prepare_action(message, self.ids, self.options.ami_encoding)
            raise WriteBufferFullError(
                f"{session.queued_bytes + backlog} bytes of actions already wait to be written"
                f" (max_write_bytes={self.options.max_write_bytes}): Asterisk is not reading, or the login is not"
                " answered yet; nothing was queued. Wait for room (asyncio: await ami.drain()), or use action()"
                " or request(), which wait by themselves"
            )
        action_id = session.send(
            message, now, callback=callback, waiter=waiter, timeout=seconds, until_event=until_event
        )
        if problems:  # only about what was sent: a refused message said why already
            self.checker.warn(problems, message, banner)
        self._take(now)
        return action_id

    def has_room(self, backlog: int = 0) -> bool:
        """Fewer than ``max_write_bytes`` wait to be written (``backlog``: what the transport holds)."""
        return self.queued_bytes + backlog < self.options.max_write_bytes

    def not_connected(self) -> NotConnectedError:
        """The error of an action with no connection to go to: why, and the last connection's end as its cause."""
        if self.state is _C.RECONNECT_WAIT and not self._stopping:
            where = "waiting to reconnect"
        elif self._stopping:
            where = "disconnect() or destroy() was called"
        elif self._started:
            where = "the client has stopped"
        else:
            where = "connect() was not called"
        if self.last_error is not None:
            where += f" (the last connection ended: {self.last_error})"
        error = NotConnectedError(f"not connected to Asterisk: {where}")
        error.__cause__ = self.last_error
        return error

    def cancel(self, action_id: str) -> bool:
        return self.session is not None and self.session.cancel(action_id)

    def disconnect(self, now: float, timeout: float | None) -> None:
        """Log off and stop: a login in progress is waited for at most ``timeout`` seconds."""
        self._stopping = True
        self.release(now)
        session = self.session
        if session is None:
            self._stop(None)
            return
        if not session.logged_in and timeout is not None:
            self._stop_timeout = timeout
            self._stop_deadline = now + timeout
        session.logoff(now)
        self._take(now)

    def destroy(self, now: float) -> None:
        """Stop now: close without Logoff."""
        self._stopping = True
        self.release(now)
        if self.session is None:
            self._stop(None)
            return
        self.session.abort("destroy() closed the connection")
        self._take(now)

    def stats(self) -> dict[str, int]:
        """The counters, with what the current session has counted so far."""
        stats = dict(self.counts)
        session = self.session
        if session is not None:
            stats["frames"] += session.frames_received
            stats["bytes"] += session.bytes_received
        stats["pending_actions"] = 0 if session is None else session.pending_actions
        stats["reconnect_attempt"] = self.policy.attempt
        return stats

    # -- internals -------------------------------------------------------------------------------------

    _stop_timeout: float = 0.0

    def _open(self, now: float) -> None:
        self.state = _C.CONNECTING
        self._session_logged_in = False
        self.session = AmiSession(self.options, now, self.ids, login_hook=self.login_hook, log=self.log)
        if self._reading_paused:
            self.session.pause_keepalive()
        self._events.append(OpenTransport())

    def _unhold(self) -> None:
        """The connection is over: what was held is delivered; bytes not parsed yet cannot be any more."""
        held, self._held = self._held, None
        self._hold_deadline = None
        if held:
            self._events[:0] = held
        self._held_bytes = []

    def write_timeout_error(self) -> WriteTimeoutError:
        """What a write that could not complete within ``write_timeout`` fails with."""
        return WriteTimeoutError(
            f"Asterisk took no bytes for {self.options.write_timeout} s (write_timeout): it is not reading"
        )

    def _take(self, now: float) -> None:
        """Move the session's events into the client's, acting on those that change the client."""
        session = self.session
        if session is None:
            return
        out = self._events
        for event in session.events_received():
            if isinstance(event, LoggedIn):
                self._session_logged_in = True
                self._logged_in(session)
                out.append(event)
                if self._result_owed or self._waiters:
                    self._result_owed = False
                    out.append(ConnectResult(None))
                    if self._waiters:
                        self._held = []
                continue
            if isinstance(event, LoginRefused):
                again = " (not reconnecting: fix the credentials and call connect() again)"
                self.log.error(
                    "login as %s refused: %s%s",
                    self.options.username,
                    event.error,
                    again if self.options.reconnect else "",
                )
            elif isinstance(event, Closed):
                self._unhold()
                out.append(event)
                self._closed(session, event, now)
                return
            if self._held is not None and isinstance(event, _HELD):
                self._held.append(event)
                continue
            out.append(event)

    def _logged_in(self, session: AmiSession) -> None:
        self.state = _C.CONNECTED
        self.counts["logins"] += 1
        self.policy.reset()
        self._stop_deadline = None
        if self._failures_logged < self._failures and self._failures > 1:
            self.log.warning("connected after %d failed attempts", self._failures)
        self._failures = self._failures_logged = 0
        self._last_failure_log = None
        if self.banner is None and session.banner is not None:
            self.banner, self.protocol_version = session.banner, session.protocol_version
            self.log.debug("banner: %s", session.banner)

    def _closed(self, session: AmiSession, event: Closed, now: float) -> None:
        self.counts["frames"] += session.frames_received
        self.counts["bytes"] += session.bytes_received
        self.session = None
        self._stop_deadline = None
        self._write_deadline = None
        if event.error is not None:
            self.last_error = event.error
        never_logged_in = not self._session_logged_in
        if self._stopping or event.fatal or not self.options.reconnect:
            if event.error is not None and not event.fatal and not self._stopping:
                self.log.warning("connection ended: %s", event.error)
            self._stop(event.error)
            return
        self._failures += 1 if never_logged_in else 0
        loud = self._log_failure(event.error, never_logged_in, now)
        delay = self.policy.next_delay()
        self.state = _C.RECONNECT_WAIT
        self._reconnect_at = now + delay
        self.log.log(
            logging.INFO if loud else logging.DEBUG, "reconnecting in %.3f s (attempt %d)", delay, self.policy.attempt
        )

    def _log_failure(self, error: BaseException | None, attempt_failed: bool, now: float) -> bool:
        """One WARNING for the first failed attempt and at most one a minute after it; the rest at DEBUG.
        Returns True when it warned."""
        what = f"connection ended: {error}" if error is not None else "connection closed by Asterisk"
        if not attempt_failed:
            self.log.warning("%s; reconnecting", what)
            return True
        last = self._last_failure_log
        if last is None or now - last >= RETRY_LOG_SECONDS:
            since = self._failures - self._failures_logged
            count = f" ({since} failed attempts since the last warning)" if last is not None else ""
            self.log.warning(
                "cannot connect: %s%s; retrying (until it works, at most one warning a minute)", error, count
            )
            self._last_failure_log = now
            self._failures_logged = self._failures
            return True
        self.log.debug("cannot connect (attempt %d): %s", self._failures, error)
        return False

    def _stop(self, error: BaseException | None) -> None:
        self.state = _C.DISCONNECTED
        self._reconnect_at = None
        self._stop_deadline = None
        self._unhold()
        if self._result_owed or self._waiters:
            self._result_owed = False
            stopped = NotConnectedError("the client was stopped before it logged in")
            self._events.append(ConnectResult(error if error is not None else stopped))
        self._events.append(Stopped(error))
