"""User handlers for both shells (and ``LiveState``), through pyee's public API only (pyee 11 to 16).

pyee keeps the handlers: ``on``, ``once``, ``add_listener``, ``listens_to``, ``remove_listener``,
``remove_all_listeners``, ``listeners`` and ``event_names`` work as pyee documents them. The library
never calls pyee's ``emit`` for its own events: that takes a lock and copies the handler list per call,
and lets an exception out when no ``error`` listener is left (which pyee 11 and 14+ decide
differently). Instead the machinery lives in a :class:`HandlerTable` beside the user's object, not on it
(``dir(ami)`` shows the API), and:

* a shell reads a *snapshot* of the frame handlers (``ami_data``, Asterisk event names and name patterns
  such as ``Queue*``, see patterns.py), rebuilt only when a registration method has run since, so a
  handler added or removed takes effect from the next frame without a lock per frame;
* every handler runs through :meth:`HandlerTable.call` (the hot loop inlines the same ``try``): an
  exception is logged with its traceback, handed to the ``error`` listeners if there are any, and never
  stops the other handlers or the delivery;
* a ``once`` handler is removed (with ``remove_listener``) just before it runs.

Names: an Asterisk event called like one of the library's (``ami_*``) or pyee's own (``error``,
``new_listener``) reaches ``ami_data`` only, so a server cannot fake a login or an error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from time import perf_counter
from typing import Any, Protocol, TypeVar, overload

from .patterns import compile_pattern, is_pattern

logger = logging.getLogger("asterisk_ami")

Handler = Callable[..., Any]
H = TypeVar("H", bound=Callable[..., Any])
_PYEE_EVENTS = frozenset({"error", "new_listener"})
_NAMED_LIMIT = 4096  # event names whose handler list a snapshot keeps (a pattern's matches included)


class Emitter(Protocol):
    """The pyee methods the table reads (``EventEmitter`` and ``AsyncIOEventEmitter`` have them)."""

    def listeners(self, event: str) -> list[Handler]: ...
    def event_names(self) -> set[str]: ...
    def remove_listener(self, event: str, f: Handler) -> None: ...


class Call:
    """A user callback with its arguments (``on_connect``, ``on_raw_data``, an action's callback), run in
    order among frames (a shell may put them between the frames it delivers)."""

    __slots__ = ("args", "fn")

    def __init__(self, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args


class _Once:
    """A ``once`` handler as the snapshot holds it: it removes itself, then runs (at most once)."""

    __slots__ = ("event", "f", "table")

    def __init__(self, table: HandlerTable, event: str, f: Handler) -> None:
        self.table = table
        self.event = event
        self.f = f

    def __call__(self, *args: Any) -> Any:
        if self.table.take_once(self.event, self.f):
            return self.f(*args)
        return None


def handler_name(f: Handler) -> str:
    """How log records name a handler: the user's function, also inside a ``once`` wrapper."""
    f = f.f if isinstance(f, _Once) else f
    return str(getattr(f, "__qualname__", f))


class _Snapshot:
    """The frame handlers at one version: ``ami_data``'s, and per event name ``ami_data``'s then that
    name's then the matching patterns', so a frame needs one dict lookup and one loop."""

    __slots__ = ("named", "on_data", "patterns", "version")

    def __init__(
        self,
        version: int,
        on_data: tuple[Handler, ...],
        named: dict[str, tuple[Handler, ...]],
        patterns: tuple[tuple[Any, tuple[Handler, ...]], ...],
    ) -> None:
        self.version = version
        self.on_data = on_data
        self.named = named
        self.patterns = patterns

    def handlers(self, event: str) -> tuple[Handler, ...]:
        """For an event name not in ``named`` yet (only asked when there are patterns)."""
        found = self.on_data
        for regex, handlers in self.patterns:
            if regex.match(event):
                found = found + handlers
        if len(self.named) < _NAMED_LIMIT:
            self.named[event] = found
        return found


class HandlerTable:
    """The library's side of one emitter's handlers: snapshots, running them safely, timing them."""

    def __init__(self, emitter: Emitter, log: logging.Logger | logging.LoggerAdapter[Any] | None = None) -> None:
        self.emitter = emitter
        self.log = log or logger
        self.version = 0  # bumped by every registration method: the snapshot's key
        self._once_keys: set[tuple[str, Handler]] = set()
        self._once_lock = threading.Lock()
        self._snapshot = _Snapshot(-1, (), {}, ())
        # the handler running now and since when (perf_counter), read by the threaded reader's watch
        self._running: Handler | None = None
        self._running_since = 0.0
        self.slowest: tuple[Handler, float] | None = None  # the slowest handler call so far
        self._slow_floor = 0.0  # a call longer than this goes to _handler_slow()
        #: a call this long or longer goes to ``on_stalled`` (the asyncio shell: it held the loop)
        self.stall_threshold: float | None = None
        #: what to do with a handler's non-None return value (a coroutine, say), set by the shell
        self.on_returned: Callable[[Handler, Any], None] = _ignore
        self.on_stalled: Callable[[Handler, float], None] = _ignore
        #: told after every registration (the asyncio shell: the user's code uses the client)
        self.on_changed: Callable[[], None] = _ignore

    # -- registrations (the emitter's methods tell the table) ---------------------------------------

    def changed(self) -> None:
        self.version += 1
        self.on_changed()

    def add_once(self, event: str, f: Handler) -> None:
        with self._once_lock:
            self._once_keys.add((event, f))

    def forget_once(self, event: str | None, f: Handler | None = None) -> None:
        with self._once_lock:
            if f is not None and event is not None:
                self._once_keys.discard((event, f))
            else:
                self._once_keys = {k for k in self._once_keys if event is not None and k[0] != event}

    def take_once(self, event: str, f: Handler) -> bool:
        with self._once_lock:
            if (event, f) not in self._once_keys:
                return False
            self._once_keys.discard((event, f))
        if f not in self.emitter.listeners(event):
            return False
        self.emitter.remove_listener(event, f)
        return True

    # -- reading them -----------------------------------------------------------------------------

    def handlers_for(self, event: str) -> tuple[Handler, ...]:
        """The handlers of ``event`` in order, ``once`` ones wrapped to remove themselves."""
        listed = self.emitter.listeners(event)
        once = self._once_keys
        if not once:
            return tuple(listed)
        return tuple(_Once(self, event, f) if (event, f) in once else f for f in listed)

    def _build(self, version: int) -> _Snapshot:
        for _ in range(100):
            try:  # another thread may register a handler while this reads pyee's table
                names = [n for n in self.emitter.event_names() if not n.startswith("ami_") and n not in _PYEE_EVENTS]
                on_data = self.handlers_for("ami_data")
                exact = {n: self.handlers_for(n) for n in names if not is_pattern(n)}
                patterns = tuple(
                    (compile_pattern(n), hs) for n in names if is_pattern(n) and (hs := self.handlers_for(n))
                )
                break
            except RuntimeError:
                continue
        else:
            raise RuntimeError("the handler table kept changing while it was read")
        snapshot = _Snapshot(version, on_data, {}, patterns)
        for name, handlers in exact.items():
            if handlers:
                matched = snapshot.handlers(name)  # ami_data's and the patterns' that match the name
                snapshot.named[name] = on_data + handlers + matched[len(on_data) :]
        return snapshot

    # -- running them -----------------------------------------------------------------------------

    def deliver(self, items: list[Any]) -> None:
        """Frames to ``ami_data`` and their event-name handlers, in order (a ``Call`` among them runs in
        its place). The snapshot is read again only when a handler was added or removed, so a frame costs
        no lock and no copy of a handler list (pyee's emit() costs both)."""
        snap = self._snapshot
        failed = self.failed
        returned = self.on_returned
        clock = perf_counter
        t = clock()
        for frame in items:
            if frame.__class__ is Call:
                self.call(frame.fn, frame.args)  # timed there
                t = clock()
                continue
            if snap.version != self.version:
                snap = self._snapshot = self._build(self.version)
                t = clock()
            handlers = snap.on_data
            if snap.named or snap.patterns:
                event = frame.get("event")
                if event.__class__ is str:
                    found = snap.named.get(event)
                    if found is not None:
                        handlers = found
                    elif snap.patterns:
                        handlers = snap.handlers(event)
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

    def call(self, f: Handler, args: tuple[Any, ...]) -> None:
        """Run one handler: what it raises is logged and reported, never passed on."""
        running, since = self._running, self._running_since  # a handler may emit from inside another
        start = perf_counter()
        self._running, self._running_since = f, start
        try:
            result = f(*args)
        except Exception as exc:
            self.failed(f, exc)
            result = None
        finally:
            self._running, self._running_since = running, since
        took = perf_counter() - start
        if took > self._slow_floor:
            self._handler_slow(f, took)
        if result is not None:
            self.on_returned(f, result)

    def emit(self, event: str, *args: Any) -> None:
        """Run every handler of one of the library's events (``ami_login`` ...), each safely."""
        for f in self.handlers_for(event):
            self.call(f, args)

    def failed(self, f: Handler, exc: BaseException) -> None:
        """Log a handler's exception with its traceback; hand it to the ``error`` listeners, if any."""
        self.log.error("handler %s raised", handler_name(f), exc_info=exc)
        for h in self.handlers_for("error"):
            if h is f:
                continue
            try:
                result = h(exc)
            except Exception:
                self.log.exception("an 'error' handler raised")
                continue
            if result is not None:
                self.on_returned(h, result)

    def running(self) -> tuple[Handler | None, float]:
        """The handler running now (None: none) and for how many seconds so far; any thread may ask."""
        f, since = self._running, self._running_since
        return f, (perf_counter() - since if f is not None else 0.0)

    def _handler_slow(self, f: Handler, seconds: float) -> None:
        """A call took longer than ``_slow_floor``: the slowest so far, or one that stalled reading."""
        slowest = self.slowest
        if slowest is None or seconds > slowest[1]:
            self.slowest = slowest = (f, seconds)
        stall = self.stall_threshold
        self._slow_floor = slowest[1] if stall is None else min(slowest[1], stall)
        if stall is not None and seconds >= stall:
            self.on_stalled(f, seconds)


def _ignore(*_: Any) -> None:
    pass


class Registrations:
    """pyee's registration methods, each telling the :class:`HandlerTable` (mixed in before pyee's
    emitter class), plus :meth:`on_pattern`. Handlers keep their types: ``@ami.on("Hangup")`` on a typed
    function leaves it typed."""

    _handlers: HandlerTable

    @overload
    def on(self, event: str) -> Callable[[H], H]: ...
    @overload
    def on(self, event: str, f: H) -> H: ...
    def on(self, event: str, f: H | None = None) -> H | Callable[[H], H]:
        """Add ``f`` for ``event`` (an Asterisk event name, a pattern such as ``'Queue*'``, or one of the
        library's ``ami_*`` events); without ``f``, a decorator."""
        if f is None:
            return self.listens_to(event)
        return self.add_listener(event, f)

    @overload
    def on_pattern(self, pattern: str) -> Callable[[H], H]: ...
    @overload
    def on_pattern(self, pattern: str, f: H) -> H: ...
    def on_pattern(self, pattern: str, f: H | None = None) -> H | Callable[[H], H]:
        """``on()`` for a shell-style pattern of event names (``'Queue*'``, ``'*Bridge*'``), matched in any
        case; every event that matches reaches ``f``, once per frame. (``on()`` with a pattern does the
        same; this says so, and refuses a plain name.)"""
        if not is_pattern(pattern):
            raise ValueError(f"{pattern!r} has no wildcard (*, ? or [...]): use on() for one event name")
        return self.on(pattern, f) if f is not None else self.listens_to(pattern)

    def _name_added(self, event: str) -> None:
        """A handler was added for ``event``: the clients check the name against the catalogue."""

    def add_listener(self, event: str, f: H) -> H:
        self._name_added(event)
        super().add_listener(event, f)  # type: ignore[misc]
        self._handlers.changed()
        return f

    def listens_to(self, event: str) -> Callable[[H], H]:
        def register(f: H) -> H:
            self.add_listener(event, f)
            return f

        return register

    @overload
    def once(self, event: str, f: None = None) -> Callable[[H], H]: ...
    @overload
    def once(self, event: str, f: H) -> H: ...
    @overload
    def once(self, event: str, f: Handler | None = None) -> Handler: ...  # pyee's own signature
    def once(self, event: str, f: H | None = None) -> H | Callable[[H], H]:
        """Like ``on()``, for one call only."""
        if f is None:
            return lambda g: self.once(event, g)
        self._name_added(event)
        self._handlers.add_once(event, f)
        super().once(event, f)  # type: ignore[misc]
        self._handlers.changed()
        return f

    def remove_listener(self, event: str, f: Handler) -> None:
        super().remove_listener(event, f)  # type: ignore[misc]
        self._handlers.forget_once(event, f)
        self._handlers.changed()

    def remove_all_listeners(self, event: str | None = None) -> None:
        super().remove_all_listeners(event)  # type: ignore[misc]
        self._handlers.forget_once(event)
        self._handlers.changed()
