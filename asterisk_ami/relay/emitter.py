"""The handlers of a ``RemoteAmi``, through pyee's public API (as the clients keep theirs).

Frames go to ``ami_data`` and to the handlers of their event name from a snapshot that is rebuilt only
after a handler was added or removed, so a frame costs no lock and no list copy (pyee's ``emit`` costs
both). A handler that raises is logged and handed to ``error`` listeners, and never stops delivery; a
coroutine handler runs as a task. An Asterisk event named like one of the library's (``ami_*``) or
pyee's (``error``, ``new_listener``) reaches ``ami_data`` only.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from pyee.asyncio import AsyncIOEventEmitter

logger = logging.getLogger("asterisk_ami.relay")
Handler = Callable[..., Any]
H = TypeVar("H", bound=Callable[..., Any])
_RESERVED = frozenset({"error", "new_listener"})


class Emitter(AsyncIOEventEmitter):
    def __init__(self) -> None:
        super().__init__()
        self._version = 0
        self._seen = -1
        self._on_data: tuple[Handler, ...] = ()
        self._named: dict[str, tuple[Handler, ...]] = {}
        self._once: dict[tuple[str, Handler], Handler] = {}  # (event, f) -> the wrapper pyee holds
        self._handler_tasks: set[asyncio.Future[Any]] = set()

    # -- registration (pyee's public methods, counted) ---------------------------------------------

    def on(self, event: str, f: Handler | None = None) -> Any:
        if f is None:
            return self.listens_to(event)
        return self.add_listener(event, f)

    def listens_to(self, event: str) -> Callable[[H], H]:
        def register(f: H) -> H:
            self.add_listener(event, f)
            return f

        return register

    def add_listener(self, event: str, f: H) -> H:
        super().add_listener(event, f)
        self._version += 1
        return f

    def once(self, event: str, f: Handler | None = None) -> Any:
        if f is None:
            return lambda g: self.once(event, g)
        key = (event, f)

        def wrapper(*args: Any) -> Any:
            if self._once.pop(key, None) is None:
                return None
            super(Emitter, self).remove_listener(event, wrapper)
            self._version += 1
            return f(*args)

        self._once[key] = wrapper
        return self.add_listener(event, wrapper)

    def remove_listener(self, event: str, f: Handler) -> None:
        wrapper = self._once.pop((event, f), None)
        super().remove_listener(event, wrapper if wrapper is not None else f)
        self._version += 1

    def remove_all_listeners(self, event: str | None = None) -> None:
        super().remove_all_listeners(event)
        self._once = {k: v for k, v in self._once.items() if event is not None and k[0] != event}
        self._version += 1

    # -- delivery ----------------------------------------------------------------------------------

    def _refresh(self) -> None:
        self._seen = self._version
        on_data = tuple(self.listeners("ami_data"))
        named = {}
        for name in self.event_names():
            if name.startswith("ami_") or name in _RESERVED:
                continue
            handlers = tuple(self.listeners(name))
            if handlers:
                named[name] = on_data + handlers  # one loop per frame: ami_data's, then the name's
        self._on_data, self._named = on_data, named

    def deliver(self, frames: list[dict[str, Any]]) -> None:
        """Frames to ``ami_data`` and their event-name handlers, in order."""
        for frame in frames:
            if self._seen != self._version:
                self._refresh()
            handlers = self._on_data
            named = self._named
            if named:
                event = frame.get("event")
                if event.__class__ is str:
                    handlers = named.get(event, handlers)
            for f in handlers:
                try:
                    result = f(frame)
                    if result is not None:
                        self.handler_returned(f, result)
                except Exception as exc:
                    self.handler_failed(f, exc)

    def emit_event(self, event: str, *args: Any) -> None:
        """Run every handler of one of the library's events (``ami_gap``, ``ami_login``...), each safely."""
        for f in self.listeners(event):
            try:
                result = f(*args)
                if result is not None:
                    self.handler_returned(f, result)
            except Exception as exc:
                self.handler_failed(f, exc)

    def handler_returned(self, f: Handler, result: Any) -> None:
        """A handler's coroutine runs as a task (``LiveState`` hands its own handlers' results here too)."""
        if not inspect.isawaitable(result):
            return
        task = asyncio.ensure_future(result)
        self._handler_tasks.add(task)
        task.add_done_callback(lambda t: self._task_done(f, t))

    def _task_done(self, f: Handler, task: asyncio.Future[Any]) -> None:
        self._handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.handler_failed(f, task.exception())  # type: ignore[arg-type]

    def handler_failed(self, f: Handler, exc: BaseException) -> None:
        logger.error("handler %s raised", getattr(f, "__qualname__", f), exc_info=exc)
        for h in self.listeners("error"):
            if h is f:
                continue
            try:
                result = h(exc)
                if result is not None:
                    self.handler_returned(h, result)
            except Exception:
                logger.exception("an 'error' handler raised")
