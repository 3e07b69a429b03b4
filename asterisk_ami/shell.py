"""What the two I/O shells (``asterisk_ami.sync`` with threads, ``asterisk_ami.asyncio`` with an event loop)
share, so that they cannot drift: their options, log, lifecycle, handler table and the properties read
from them (``ShellBase``), how an action's future is settled, and the TLS context of the ``ssl`` option.
Every decision about the client's life is the lifecycle's (``lifecycle.py``); a shell moves bytes."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from .actions import ActionDone
from .backpressure import BlockWatch
from .checking import warn_unknown_event
from .errors import NotConnectedError
from .handlers import Call, HandlerTable, handler_name
from .lifecycle import ClientLifecycle, ClientState
from .logs import ConnectionLog, connection_logger
from .options import AmiOptions
from .patterns import is_pattern
from .typed_handlers import TypedHandlers

LoginActions = Callable[[], Iterable[Mapping[str, object]]]
F = TypeVar("F", bound=Any)  # a concurrent.futures or an asyncio Future


def settle(done: ActionDone) -> Call | None:
    """Settle an action's future (``concurrent.futures`` or ``asyncio``) with what the session decided (a
    future already done, cancelled say, is left alone); returns its callback's call, if one is due."""
    entry, outcome = done.entry, done.outcome
    waiter = entry.waiter
    if waiter is not None and outcome is not None and not waiter.done():
        # the user may cancel it from another thread in between: then it stays cancelled
        with contextlib.suppress(Exception):
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


class ShellBase(TypedHandlers):
    """The part of ``AsteriskAmi`` both shells have: options, log, lifecycle, handlers, state, banner."""

    options: AmiOptions

    def _init_shell(self, options: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> None:
        self.options = AmiOptions.from_args(options, kwargs)
        self._log: ConnectionLog = connection_logger(self.options.label, self.options.logger, self.options.debug)
        self._handlers = HandlerTable(self, self._log)  # type: ignore[arg-type]  # pyee's class is mixed in
        self._core = ClientLifecycle(self.options, self._log)
        self._ssl_context = make_ssl_context(self.options.ssl)
        self._login_providers: list[LoginActions] = []
        self._watch = BlockWatch(self.options.slow_handler_warning)

    def _name_added(self, event: str) -> None:
        # "Hnagup" or "NewExten" would never fire: say so once, naming the right spelling
        if not is_pattern(event):
            warn_unknown_event(event)

    def __repr__(self) -> str:
        o = self.options
        return f"<{type(self).__module__}.AsteriskAmi {o.username}@{o.host}:{o.port} {self._core.state}>"

    @property
    def state(self) -> ClientState:
        """'disconnected', 'connecting', 'connected' (logged in) or 'reconnect_wait' (a ``str`` enum)."""
        return self._core.state

    @property
    def connected(self) -> bool:
        """True while logged in."""
        return self._core.state is ClientState.CONNECTED

    @property
    def banner(self) -> str | None:
        """The server's first line (``'Asterisk Call Manager/11.0.0'``), once it has been read."""
        return self._core.banner

    @property
    def protocol_version(self) -> str | None:
        """The AMI version of the banner (``'11.0.0'``)."""
        return self._core.protocol_version

    def add_login_actions(self, provider: LoginActions) -> None:
        """``provider()`` is called at every login; the actions it returns are written right after the
        login answer, before anything sent while logging in (``LiveState`` asks for its lists this way).
        It runs where the client reads (the reader thread, or the event loop), outside any lock: it may
        call ``send()``, but not wait for a result there."""
        self._login_providers = [*self._login_providers, provider]
        self._core.login_hook = True

    def remove_login_actions(self, provider: LoginActions) -> None:
        """Stop calling ``provider`` at each login."""
        self._login_providers = [p for p in self._login_providers if p is not provider]
        self._core.login_hook = bool(self._login_providers)

    def _run_login_providers(self) -> list[Mapping[str, object]]:
        actions: list[Mapping[str, object]] = []
        for provider in self._login_providers:
            try:
                actions.extend(provider())
            except Exception:
                self._log.exception("a login actions provider raised")
        return actions

    def _base_stats(self, stats: dict[str, Any], now: float) -> dict[str, Any]:
        stats.update(self._watch.stats(now))
        slowest = self._handlers.slowest
        stats["slowest_handler"] = None if slowest is None else handler_name(slowest[0])
        stats["slowest_handler_seconds"] = 0.0 if slowest is None else round(slowest[1], 6)
        return stats

    def _tracked(self, future: F, message: Mapping[str, object], timeout: Any, until_event: str | None) -> F:
        """``action()``'s common part: the action handed over with ``future`` as its waiter (which fails
        at once with no connection), and cancelling the future drops the action's entry."""
        try:
            action_id = self._submit(message, None, future, timeout, until_event)
        except NotConnectedError as exc:
            future.set_exception(exc)
            return future
        future.add_done_callback(lambda f: self._cancelled(f, action_id))
        return future

    def _submit(
        self, message: Mapping[str, object], callback: Any, future: Any, timeout: Any, until_event: str | None
    ) -> str:
        raise NotImplementedError  # each shell's

    def _cancelled(self, future: Any, action_id: str) -> None:
        raise NotImplementedError  # each shell's

    def _server_closed(self, now: float) -> None:
        """The server closed the connection: say so when it was probably for a blocked reader."""
        message = self._watch.server_closed(now)
        if message:
            self._log.warning(message)
