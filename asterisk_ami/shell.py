"""What the two I/O shells (``client.py`` with threads, ``asterisk_ami.asyncio`` with an event loop) share,
so that they cannot drift: which library event each session event is, how an action's future is
settled, the TLS context of the ``ssl`` option, and the ``debug`` option's log handler."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from .actions import ActionDone
from .session import Closed, Event, Failed, LoggedIn, LoginRefused, ServerClosed, TimedOut

logger = logging.getLogger("asterisk_ami")

Emits = tuple[tuple[str, tuple[Any, ...]], ...]


def library_events(event: Event) -> Emits:
    """The ``ami_*`` events (name, arguments) a session event stands for; () for frames and actions."""
    cls = event.__class__
    if cls is LoggedIn:
        return (("ami_login", (True, event.frame)),)  # type: ignore[union-attr]
    if cls is LoginRefused:
        return (("ami_login", (False, event.frame)), ("ami_socket_error", (event.error,)))  # type: ignore[union-attr]
    if cls is TimedOut:
        return (("ami_socket_timeout", ()),)
    if cls is Failed:
        return (("ami_socket_error", (event.error,)),)  # type: ignore[union-attr]
    if cls is ServerClosed:
        return (("ami_socket_end", ()),)
    if cls is Closed:
        return (("ami_socket_close", (event.had_error,)),)  # type: ignore[union-attr]
    return ()


def resolve(waiter: Any, done: ActionDone) -> None:
    """Settle an action's future (``concurrent.futures`` or ``asyncio``) with what the session decided;
    a future already done (cancelled, say) is left alone."""
    outcome = done.outcome
    if outcome is None or waiter.done():
        return
    if isinstance(outcome, BaseException):
        waiter.set_exception(outcome)
    else:
        waiter.set_result(outcome)


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
