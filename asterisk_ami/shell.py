"""What the two I/O shells (``client.py`` with threads, ``asterisk_ami.asyncio`` with an event loop) share,
so that they cannot drift: their options, state and counters (``ShellBase``), which library event each
session event is, how an action's future is settled, the TLS context of the ``ssl`` option, and the
``debug`` option's log handler."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .actions import ActionDone
from .blocking import BlockWatch
from .errors import NotConnectedError
from .handlers import Call, HandlerRegistry, handler_name
from .messages import ActionIdGenerator
from .options import AmiOptions
from .reconnect import ReconnectPolicy
from .session import (
    AmiSession,
    ClientState,
    Closed,
    Event,
    Failed,
    FilterRejected,
    LoggedIn,
    LoginRefused,
    ServerClosed,
    TimedOut,
    prepare_action,
)

logger = logging.getLogger("asterisk_ami")

Emits = tuple[tuple[str, tuple[Any, ...]], ...]
LoginActions = Callable[[], Iterable[Mapping[str, object]]]


def library_events(event: Event) -> Emits:
    """The ``ami_*`` events (name, arguments) a session event stands for; () for frames and actions."""
    cls = event.__class__
    if cls is LoggedIn:
        return (("ami_login", (True, event.frame)),)  # type: ignore[union-attr]
    if cls is LoginRefused:
        return (("ami_login", (False, event.frame)), ("ami_socket_error", (event.error,)))  # type: ignore[union-attr]
    if cls is TimedOut:
        return (("ami_socket_timeout", ()),)
    if cls is Failed or cls is FilterRejected:  # a refused filter leaves the connection up
        return (("ami_socket_error", (event.error,)),)  # type: ignore[union-attr]
    if cls is ServerClosed:
        return (("ami_socket_end", ()),)
    if cls is Closed:
        return (("ami_socket_close", (event.had_error,)),)  # type: ignore[union-attr]
    return ()


def settle(done: ActionDone) -> Call | None:
    """Settle an action's future (``concurrent.futures`` or ``asyncio``) with what the session decided (a
    future already done, cancelled say, is left alone); returns its callback's call, if one is due."""
    entry, outcome = done.entry, done.outcome
    waiter = entry.waiter
    if waiter is not None and outcome is not None and not waiter.done():
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)
    if done.response is not None and entry.callback is not None:
        return Call(entry.callback, (done.response,))
    return None


def make_ssl_context(value: bool | ssl.SSLContext) -> ssl.SSLContext | None:
    """The ``ssl`` option: your context, the system trust store (True), or None (plain TCP)."""
    if isinstance(value, ssl.SSLContext):
        return value
    return ssl.create_default_context() if value else None


def enable_debug_logging() -> None:
    """The ``debug`` option: the protocol at DEBUG on stderr through the ``asterisk_ami`` logger."""
    if not any(getattr(h, "_asterisk_ami_debug", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s asterisk_ami %(levelname)s %(message)s"))
        handler._asterisk_ami_debug = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


class ShellBase(HandlerRegistry):
    """The part of ``AsteriskAmi`` both shells have: options, state, banner, counters, the policy."""

    def _init_shell(self, options: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> None:
        self._init_handlers()
        self.options = AmiOptions.from_args(options, kwargs)
        if self.options.debug:
            enable_debug_logging()
        self.banner: str | None = None
        self.protocol_version: str | None = None
        self._ids = ActionIdGenerator()
        self._state = ClientState.DISCONNECTED
        self._policy = ReconnectPolicy(self.options.reconnect_after, self.options.reconnect_max)
        self._ssl_context = make_ssl_context(self.options.ssl)
        self._counts = {"frames": 0, "bytes": 0, "logins": 0, "reconnects": 0}
        self._login_providers: list[LoginActions] = []
        self._watch = BlockWatch(self.options.slow_handler_warning)

    def __repr__(self) -> str:
        o = self.options
        return f"<{type(self).__module__}.AsteriskAmi {o.username}@{o.host}:{o.port} {self._state}>"

    @property
    def state(self) -> ClientState:
        """'disconnected', 'connecting', 'connected' (logged in) or 'reconnect_wait' (a ``str`` enum)."""
        return self._state

    @property
    def connected(self) -> bool:
        """True while logged in."""
        return self._state is ClientState.CONNECTED

    def add_login_actions(self, provider: LoginActions) -> None:
        """``provider()`` is called at every login; the actions it returns are written right after the
        login answer, before anything sent while logging in (``LiveState`` asks for its lists this way).
        It runs where the client reads (the reader thread, or the event loop): keep it quick."""
        self._login_providers = [*self._login_providers, provider]

    def remove_login_actions(self, provider: LoginActions) -> None:
        self._login_providers = [p for p in self._login_providers if p is not provider]

    def _login_actions(self) -> list[Mapping[str, object]]:
        actions: list[Mapping[str, object]] = []
        for provider in self._login_providers:
            try:
                actions.extend(provider())
            except Exception:
                logger.exception("a login actions provider raised")
        return actions

    def _new_session(self, now: float) -> AmiSession:
        return AmiSession(self.options, now, self._ids, self._login_actions)

    def _session_stats(self, session: AmiSession | None, now: float) -> dict[str, Any]:
        """The counters, with what the current session has counted so far."""
        stats: dict[str, Any] = dict(self._counts)
        if session is not None:
            stats["frames"] += session.frames_received
            stats["bytes"] += session.bytes_received
        stats["pending_actions"] = 0 if session is None else session.pending_actions
        stats["reconnect_attempt"] = self._policy.attempt
        stats.update(self._watch.stats(now))
        slowest = self._slowest
        stats["slowest_handler"] = None if slowest is None else handler_name(slowest[0])
        stats["slowest_handler_seconds"] = 0.0 if slowest is None else round(slowest[1], 6)
        return stats

    def _server_closed(self, now: float) -> None:
        """The server closed the connection: say so when it was probably for a blocked reader."""
        message = self._watch.server_closed(now)
        if message:
            logger.warning(message)

    def _session_over(self, session: AmiSession) -> None:
        self._counts["frames"] += session.frames_received
        self._counts["bytes"] += session.bytes_received

    def _note_login(self, session: AmiSession | None) -> None:
        """A login was accepted: count it, reset the backoff, keep the first banner."""
        self._counts["logins"] += 1
        self._policy.reset()
        if session is not None and self.banner is None and session.banner is not None:
            self.banner, self.protocol_version = session.banner, session.protocol_version
            logger.debug("banner: %s", session.banner)

    def _emit_soon(self, event: str, *args: Any) -> None:
        raise NotImplementedError  # each shell emits where its handlers run

    def _unwritable(self, message: Mapping[str, object], future: Any) -> str:
        """send()/action() with no connection: the message is still checked (bad ones raise), then
        ``ami_socket_unwritable``, and the future fails with NotConnectedError."""
        _, action_id, _ = prepare_action(message, self._ids, self.options.ami_encoding)
        logger.debug("send with no connection: %s", action_id)
        self._emit_soon("ami_socket_unwritable")
        if future is not None:
            future.set_exception(NotConnectedError("not connected to Asterisk"))
        return action_id
