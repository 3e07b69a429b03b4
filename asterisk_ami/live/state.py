"""``LiveState(ami)``: the live model attached to a client, threaded or asyncio.

The thin part: it hands every frame of the client to the sans-IO :class:`~asterisk_ami.live.model.LiveModel`,
sends the lists the model asks for at each login (and every ``reconcile_interval`` seconds), and emits
what changed. Its handlers run where the client's run: on the dispatch thread, or on the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from pyee import EventEmitter

from ..handlers import HandlerTable, Registrations
from ..protocol import Frame
from .model import LIVE_EVENTS, Change, LiveModel
from .objects import Bridge, Call, Channel, Queue

logger = logging.getLogger("asterisk_ami")
#: seconds before the first channel list that tells whether call events can arrive (see access.py), and the
#: most between two; each wait doubles until then. Only while Asterisk did not say and no call event came.
CHECK_FIRST, CHECK_MAX = 2.0, 60.0


class LiveState(Registrations, EventEmitter):
    """Channels, calls, bridges, queues and device states of the PBX behind ``ami``, kept current.

    ``LiveState(ami)`` attaches before or after ``connect()``, on ``asterisk_ami.AsteriskAmi`` and on
    ``asterisk_ami.asyncio.AsteriskAmi`` alike. Events (the docs' Reference, "Live state"): ``channel_added``,
    ``channel_changed(channel, changes)``, ``channel_removed``, ``call_started``, ``call_ended``,
    ``bridge_added``, ``bridge_changed(bridge, changes)``, ``bridge_removed``, ``queue_changed``,
    ``queue_removed``, ``device_changed(device, state)`` and ``synced()`` after each bootstrap.
    """

    def __init__(self, ami: Any, *, reconcile_interval: float | None = None, max_channels: int = 20_000) -> None:
        super().__init__()
        self._handlers = HandlerTable(self)
        self._handlers.on_returned = self._handler_returned
        if reconcile_interval is not None and reconcile_interval <= 0:
            raise ValueError("reconcile_interval must be positive (or None: off)")
        self.ami = ami
        self.reconcile_interval = reconcile_interval
        self.model = LiveModel(max_channels=max_channels)
        self._version = -1
        self._closed = threading.Event()
        self._timer: threading.Thread | asyncio.TimerHandle | None = None
        self._check: threading.Event | asyncio.TimerHandle | None = None  # the running check, per connection
        ami.on("ami_data", self._on_frame)
        ami.on("ami_login", self._on_login)
        ami.on("ami_socket_close", self._on_close)
        # the lists go out with every login, right after its answer, before the client has read on
        ami.add_login_actions(self._login_actions)
        if ami.connected:  # attached after connect(): bootstrap now
            for action in self._login_actions():
                self.ami.send(action)

    def __repr__(self) -> str:
        m = self.model
        return f"<LiveState {len(m.view('channels'))} channels, {len(m.view('bridges'))} bridges, synced={m.synced}>"

    # -- reading (any thread) -------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """True once the bootstrap after the current login is complete."""
        return self.model.synced

    @property
    def unavailable(self) -> Mapping[str, str]:
        """The parts not followed at this login, and why: a list the server refused (``'queues'`` -> its
        error message), or a part whose events the account cannot read (``'channels'``, ``'calls'``,
        ``'bridges'``, ``'devices'`` without ``call``; ``'queues'`` without ``agent``)."""
        return dict(self.model.unavailable)

    @property
    def channels(self) -> Mapping[str, Channel]:
        """Channels by uniqueid (read-only, rebuilt only when something changed)."""
        return self.model.view("channels")

    @property
    def calls(self) -> Mapping[str, Call]:
        """Calls by linkedid: the channels that share it."""
        return self.model.view("calls")

    @property
    def bridges(self) -> Mapping[str, Bridge]:
        """Bridges by their uniqueid."""
        return self.model.view("bridges")

    @property
    def queues(self) -> Mapping[str, Queue]:
        """Queues by name, with their members and waiting callers."""
        return self.model.view("queues")

    @property
    def devices(self) -> Mapping[str, str]:
        """Device states by device (``'PJSIP/1002'`` -> ``'NOT_INUSE'``, ``'INUSE'``, ...)."""
        return self.model.view("devices")

    def snapshot(self) -> dict[str, Any]:
        """Everything as JSON-ready data, consistent at one point in the stream."""
        return self.model.snapshot()

    def close(self) -> None:
        """Detach from the client and stop the reconcile timer (which also stops by itself within
        ``reconcile_interval`` once the client is disconnected for good)."""
        self._closed.set()
        self.ami.remove_listener("ami_data", self._on_frame)
        self.ami.remove_listener("ami_login", self._on_login)
        self.ami.remove_listener("ami_socket_close", self._on_close)
        self.ami.remove_login_actions(self._login_actions)
        if isinstance(self._timer, asyncio.TimerHandle):
            self._timer.cancel()
        self._stop_check()

    # -- the client's handlers ---------------------------------------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        if self._version != self._handlers.version:  # build event objects only for events someone listens to
            self._version = self._handlers.version
            self.model.track_changes = bool(self.event_names() & LIVE_EVENTS)
        model = self.model
        changes = model.feed(frame, time.time())
        if changes:
            self._emit_changes(changes)
        if model.outbox:
            self._send_outbox()
        if self._check is None and model.may_want_check and model.wants_check:
            self._start_check()

    def _login_actions(self) -> list[dict[str, str]]:
        # a client's account (a RemoteAmi has none of its own: the relay's account is not known here)
        options = getattr(self.ami, "options", None)
        username = getattr(options, "username", None)
        events = getattr(options, "events", True)
        # no changes yet: the lists are only asked for (and what the account reads)
        self.model.login(time.time(), username=username, events=events)
        return self.model.take_outbox()

    def _on_close(self, had_error: bool) -> None:
        self._stop_check()  # the next login starts one again if it is still needed

    def _on_login(self, success: bool, frame: Frame) -> None:
        if success and self.reconcile_interval is not None and self._timer is None:
            self._start_timer()

    def _emit_changes(self, changes: list[Change]) -> None:
        for name, args in changes:
            self._handlers.emit(name, *args)

    def _send_outbox(self) -> None:
        for action in self.model.take_outbox():
            self.ami.send(action)

    def _handler_returned(self, f: Any, result: Any) -> None:
        """A coroutine handler is scheduled as the asyncio client's are (where one runs)."""
        if not inspect.isawaitable(result):
            return
        try:
            task = asyncio.ensure_future(result)
        except RuntimeError:  # no event loop here: the threaded client's dispatch thread
            if inspect.iscoroutine(result):
                result.close()
            logger.error("LiveState handler %s is a coroutine function: use the asyncio client", f)
            return
        task.add_done_callback(lambda t: self._task_done(f, t))

    def _task_done(self, f: Any, task: asyncio.Future[Any]) -> None:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            self._handlers.failed(f, error)

    # -- drift ---------------------------------------------------------------------------------------

    def _start_timer(self) -> None:
        """At the first login, where the client's handlers run: on the asyncio client's loop, a timer;
        for the threaded client, a thread of its own."""
        interval = self.reconcile_interval
        assert interval is not None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:

            def tick() -> None:
                if self._closed.is_set():
                    return
                self._reconcile()
                self._timer = loop.call_later(interval, tick)

            self._timer = loop.call_later(interval, tick)
            return

        def run() -> None:  # ends with close(), or once the client has stopped for good
            while not self._closed.wait(interval) and self.ami.state != "disconnected":
                self._reconcile()
            self._timer = None

        self._timer = threading.Thread(target=run, name="asterisk-ami-live-reconcile", daemon=True)
        self._timer.start()

    def _start_check(self) -> None:
        """Channel lists now and then (CHECK_FIRST s, doubling up to CHECK_MAX) while the model cannot tell
        whether call events can arrive; where the client's handlers run, as the reconcile timer."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None

        def tick() -> bool:
            if self._closed.is_set() or not self.model.wants_check or not self.ami.connected:
                return False
            self.model.reconcile(time.time(), reason="check")
            self._send_outbox()
            return True

        if loop is not None:
            delays = [CHECK_FIRST]

            def fire() -> None:
                if not tick():
                    self._check = None
                    return
                delays[0] = min(delays[0] * 2, CHECK_MAX)
                self._check = loop.call_later(delays[0], fire)

            self._check = loop.call_later(CHECK_FIRST, fire)
            return
        stop = self._check = threading.Event()

        def run() -> None:  # ends with the connection, close(), or once the model knows
            delay = CHECK_FIRST
            while not stop.wait(delay) and tick():
                delay = min(delay * 2, CHECK_MAX)
            if self._check is stop:
                self._check = None

        threading.Thread(target=run, name="asterisk-ami-live-check", daemon=True).start()

    def _stop_check(self) -> None:
        check, self._check = self._check, None
        if isinstance(check, asyncio.TimerHandle):
            check.cancel()
        elif check is not None:
            check.set()

    def _reconcile(self) -> None:
        if not self.ami.connected:
            return
        self.model.reconcile(time.time())
        self._send_outbox()
