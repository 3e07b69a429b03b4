"""User handlers for both shells, through pyee's public API only (pyee 11 to 16 behave the same here).

pyee keeps the handlers: ``on``, ``once``, ``add_listener``, ``listens_to``, ``remove_listener``,
``remove_all_listeners``, ``listeners`` and ``event_names`` work as pyee documents them. The library
never calls pyee's ``emit`` for its own events: that takes a lock and copies the handler list per call,
and lets an exception out when no ``error`` listener is left (which pyee 11 and 14+ decide
differently). Instead:

* a shell reads a *snapshot* of the frame handlers (``ami_data`` and Asterisk event names), rebuilt only
  when a registration method has run since (they bump ``handlers_version``), so a handler added or
  removed takes effect from the next frame without a lock per frame;
* every handler runs through :meth:`HandlerRegistry.call_handler` (the hot loops inline the same
  ``try``): an exception is logged with its traceback, handed to the ``error`` listeners if there are any,
  and never stops the other handlers or the delivery;
* a ``once`` handler is removed (with ``remove_listener``) just before it runs.

Names: an Asterisk event called like one of the library's (``ami_*``) or pyee's own (``error``,
``new_listener``) reaches ``ami_data`` only, so a server cannot fake a login or an error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from time import perf_counter
from typing import Any, TypeVar

logger = logging.getLogger("asterisk_ami")

Handler = Callable[..., Any]
H = TypeVar("H", bound=Callable[..., Any])
FrameHandlers = tuple[tuple[Handler, ...], dict[str, tuple[Handler, ...]]]
_PYEE_EVENTS = frozenset({"error", "new_listener"})


class Call:
    """A user callback with its arguments (``on_connect``, ``on_raw_data``, an action's callback), run in
    order among frames (a shell may put them between the frames it delivers)."""

    __slots__ = ("args", "fn")

    def __init__(self, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args


class _Once:
    """A ``once`` handler as the snapshot holds it: it removes itself, then runs (at most once)."""

    __slots__ = ("event", "f", "registry")

    def __init__(self, registry: HandlerRegistry, event: str, f: Handler) -> None:
        self.registry = registry
        self.event = event
        self.f = f

    def __call__(self, *args: Any) -> Any:
        if self.registry._take_once(self.event, self.f):
            return self.f(*args)
        return None


def handler_name(f: Handler) -> str:
    """How log records name a handler: the user's function, also inside a ``once`` wrapper."""
    f = f.f if isinstance(f, _Once) else f
    return str(getattr(f, "__qualname__", f))


class HandlerRegistry:
    """Mixed in before pyee's emitter class: ``class AsteriskAmi(HandlerRegistry, EventEmitter)``."""

    # set by each shell: what to do with a handler's non-None return value (a coroutine, say)
    def handler_returned(self, f: Handler, result: Any) -> None:
        pass

    def _init_handlers(self) -> None:
        self.handlers_version = 0  # bumped by every registration method: the snapshot's key
        self._once_keys: set[tuple[str, Handler]] = set()
        self._once_lock = threading.Lock()
        self._snapshot: tuple[int, FrameHandlers] = (-1, ((), {}))
        # the handler running now and since when (perf_counter), read by the threaded reader's watch
        self._running: Handler | None = None
        self._running_since = 0.0
        self._slowest: tuple[Handler, float] | None = None  # the slowest handler call so far
        self._slow_floor = 0.0  # a call longer than this goes to _handler_slow()
        self._stall_threshold: float | None = None  # a call this long is handler_stalled()

    # -- pyee's public registration methods, counted --------------------------------------------------

    def on(self, event: str, f: Handler | None = None) -> Any:
        if f is None:
            return self.listens_to(event)
        return self.add_listener(event, f)

    def add_listener(self, event: str, f: Handler) -> Any:
        result = super().add_listener(event, f)  # type: ignore[misc]
        self.handlers_version += 1
        return result

    def listens_to(self, event: str) -> Callable[[H], H]:
        def register(f: H) -> H:
            self.add_listener(event, f)
            return f

        return register

    def once(self, event: str, f: Handler | None = None) -> Any:
        if f is None:
            return lambda g: self.once(event, g)
        with self._once_lock:
            self._once_keys.add((event, f))
        result = super().once(event, f)  # type: ignore[misc]
        self.handlers_version += 1
        return result

    def remove_listener(self, event: str, f: Handler) -> None:
        super().remove_listener(event, f)  # type: ignore[misc]
        with self._once_lock:
            self._once_keys.discard((event, f))
        self.handlers_version += 1

    def remove_all_listeners(self, event: str | None = None) -> None:
        super().remove_all_listeners(event)  # type: ignore[misc]
        with self._once_lock:
            self._once_keys = {k for k in self._once_keys if event is not None and k[0] != event}
        self.handlers_version += 1

    # -- reading them -----------------------------------------------------------------------------

    def handlers_for(self, event: str) -> tuple[Handler, ...]:
        """The handlers of ``event`` in order, ``once`` ones wrapped to remove themselves."""
        listed: list[Handler] = self.listeners(event)  # type: ignore[attr-defined]
        once = self._once_keys
        if not once:
            return tuple(listed)
        return tuple(_Once(self, event, f) if (event, f) in once else f for f in listed)

    def frame_handlers(self) -> FrameHandlers:
        """``ami_data`` handlers, and handlers by Asterisk event name."""
        for _ in range(100):
            try:  # another thread may register a handler while this reads pyee's table
                names: set[str] = self.event_names()  # type: ignore[attr-defined]
                named = {
                    name: self.handlers_for(name)
                    for name in names
                    if not name.startswith("ami_") and name not in _PYEE_EVENTS
                }
                return self.handlers_for("ami_data"), {k: v for k, v in named.items() if v}
            except RuntimeError:
                continue
        raise RuntimeError("the handler table kept changing while it was read")

    def _take_once(self, event: str, f: Handler) -> bool:
        with self._once_lock:
            if (event, f) not in self._once_keys:
                return False
            self._once_keys.discard((event, f))
        if f not in self.listeners(event):  # type: ignore[attr-defined]
            return False
        self.remove_listener(event, f)
        return True

    # -- running them -----------------------------------------------------------------------------

    def deliver(self, items: list[Any], identifier: str | None) -> None:
        """Frames to ``ami_data`` and their event-name handlers, in order (a ``Call`` among them runs in
        its place). The snapshot of the handlers is read again only when one was added or removed, so a
        frame costs no lock and no copy of a handler list (pyee's emit() costs both)."""
        version, (on_data, named) = self._snapshot
        failed = self.handler_failed
        returned = self.handler_returned
        clock = perf_counter
        t = clock()
        for frame in items:
            if frame.__class__ is Call:
                self.call_handler(frame.fn, frame.args)  # timed there
                t = clock()
                continue
            if version != self.handlers_version:
                version = self.handlers_version
                on_data, named = self.frame_handlers()
                # per event name: the ami_data handlers, then that name's, so a frame needs one loop
                named = {name: on_data + handlers for name, handlers in named.items()}
                self._snapshot = (version, (on_data, named))
                t = clock()
            if identifier is not None:
                frame["identifier"] = identifier
            handlers = on_data
            if named:
                event = frame.get("event")
                if event.__class__ is str:
                    handlers = named.get(event, on_data)
            for f in handlers:
                self._running = f
                self._running_since = t
                try:
                    result = f(frame)
                    if result is not None:
                        returned(f, result)
                except Exception as exc:
                    failed(f, exc)
                now = clock()  # one clock read a call: the end of this one is the start of the next
                if now - t > self._slow_floor:
                    self._handler_slow(f, now - t)
                t = now
        self._running = None

    def call_handler(self, f: Handler, args: tuple[Any, ...]) -> None:
        """Run one handler: what it raises is logged and reported, never passed on."""
        running, since = self._running, self._running_since  # a handler may emit from inside another
        start = perf_counter()
        self._running, self._running_since = f, start
        try:
            result = f(*args)
        except Exception as exc:
            self.handler_failed(f, exc)
            result = None
        finally:
            self._running, self._running_since = running, since
        took = perf_counter() - start
        if took > self._slow_floor:
            self._handler_slow(f, took)
        if result is not None:
            self.handler_returned(f, result)

    def _handler_slow(self, f: Handler, seconds: float) -> None:
        """A call took longer than ``_slow_floor``: the slowest so far, or one that stalled reading."""
        slowest = self._slowest
        if slowest is None or seconds > slowest[1]:
            self._slowest = (f, seconds)
            slowest = self._slowest
        stall = self._stall_threshold
        self._slow_floor = slowest[1] if stall is None else min(slowest[1], stall)
        if stall is not None and seconds >= stall:
            self.handler_stalled(f, seconds)

    def handler_stalled(self, f: Handler, seconds: float) -> None:
        """A handler call took ``_stall_threshold`` or longer (the asyncio shell: it held the loop)."""

    def running_handler(self) -> tuple[Handler | None, float]:
        """The handler running now (None: none) and for how many seconds so far; any thread may ask."""
        f, since = self._running, self._running_since
        return f, (perf_counter() - since if f is not None else 0.0)

    def emit_event(self, event: str, *args: Any) -> None:
        """Run every handler of one of the library's events (``ami_login`` ...), each safely."""
        for f in self.handlers_for(event):
            self.call_handler(f, args)

    def handler_failed(self, f: Handler, exc: BaseException) -> None:
        """Log a handler's exception with its traceback; hand it to the ``error`` listeners, if any."""
        logger.error("handler %s raised", handler_name(f), exc_info=exc)
        for h in self.handlers_for("error"):
            if h is f:
                continue
            try:
                result = h(exc)
            except Exception:
                logger.exception("an 'error' handler raised")
                continue
            if result is not None:
                self.handler_returned(h, result)
