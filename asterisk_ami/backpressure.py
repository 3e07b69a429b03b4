"""Seeing trouble before Asterisk drops a slow client, sans-IO: the rules of the ``slow_handler_warning``.

Asterisk closes a session whose socket stays unwritable past its ``writetimeout`` (manager.conf, 100 ms
by default): the client loses the events in between and has to reconnect. A client's socket becomes
unwritable for Asterisk when the client stops reading, and it stops reading when its handlers do not
keep up: the threaded client's reader waits for room in the dispatch queue, the asyncio client pauses
reading while an ``events()`` stream is full or while a plain handler holds the event loop.

:class:`BlockWatch` turns those waits into one WARNING per *episode* (from the moment reading stops to
the moment it goes on) once it lasts ``threshold`` seconds, naming the handler that was slowest and
``writetimeout``; a close by the server during an episode, or right after one, is logged as probably
that. It counts what ``stats`` reports (the slowest handler call is timed where handlers run:
handlers.py). No clock: ``now`` is passed in (seconds, any monotonic base).
"""

from __future__ import annotations

import logging

logger = logging.getLogger("asterisk_ami")

#: a close by the server this long after an episode that crossed the threshold is still "probably that"
AFTERMATH = 2.0
WRITETIMEOUT_HINT = (
    "Asterisk closes a client that does not read within its writetimeout (manager.conf, 100 ms by default),"
    " and the events in between are lost"
)


class BlockWatch:
    """Episodes of a reader kept from reading by slow handlers. Not thread-safe: one caller at a time."""

    def __init__(self, threshold: float | None) -> None:
        self.threshold = threshold  # None: counted, never warned about
        self.blocked_seconds = 0.0  # in every episode so far
        self.episodes = 0
        self.warnings = 0
        self._since: float | None = None  # the current episode's start
        self._warned = False  # in the current episode
        self._close_said = False  # server_closed() spoke of the current episode
        self._episode_slowest: tuple[str, float] | None = None
        # the last episode with a warning: when it ended, how long it lasted, its slowest handler
        self._last_warned: tuple[float, float, tuple[str, float] | None] | None = None

    @property
    def blocked(self) -> bool:
        return self._since is not None

    def block(self, now: float) -> None:
        """Reading stopped (queue or stream full)."""
        if self._since is None:
            self._since = now
            self._warned = False
            self._close_said = False
            self._episode_slowest = None
            self.episodes += 1

    def episode_seconds(self, now: float) -> float:
        """How long the current episode has lasted (0: none). Any thread may ask."""
        since = self._since
        return 0.0 if since is None else now - since

    def next_check(self, now: float) -> float | None:
        """When to call :meth:`check` next (None: no warning is due in this episode)."""
        if self._since is None or self._warned or self.threshold is None:
            return None
        return max(now, self._since + self.threshold)

    def check(
        self, now: float, running: str | None = None, running_for: float = 0.0, verb: str = "has been"
    ) -> str | None:
        """Still blocked at ``now``, ``running`` (a handler name) busy for ``running_for`` seconds: the
        warning to log, once per episode, when the episode has lasted ``threshold``."""
        if self._since is None or self._warned or self.threshold is None:
            return None
        if running is not None:
            self._note_episode(running, running_for)
        blocked = now - self._since
        if blocked < self.threshold:
            return None
        self._warned = True
        self.warnings += 1
        return self._message(blocked, verb)

    def unblock(self, now: float) -> None:
        """Reading goes on: the episode is over."""
        since = self._since
        if since is None:
            return
        self._since = None  # first: stats() read from another thread never counts the episode twice
        self.blocked_seconds += now - since
        if self._warned and not self._close_said:
            self._last_warned = (now, now - since, self._episode_slowest)

    def stalled(self, now: float, seconds: float, handler: str) -> str | None:
        """An episode seen only once over: one handler call held the reader (and an asyncio loop) for
        ``seconds`` until ``now``. Returns the warning when that reached the threshold."""
        if self._since is not None:  # inside an episode already being watched
            self._note_episode(handler, seconds)
            return None
        self.block(now - seconds)
        self._note_episode(handler, seconds)
        message = self.check(now, verb="was")
        self.unblock(now)
        return message

    def server_closed(self, now: float) -> str | None:
        """The server closed the connection: the log line when it probably was for a blocked reader (in an
        episode past the threshold, or within ``AFTERMATH`` seconds of one that was warned about)."""
        if self._since is not None and self.threshold is not None and now - self._since >= self.threshold:
            if self._close_said:
                return None
            self._close_said = True
            blocked, slowest = now - self._since, self._episode_slowest
        elif self._last_warned is not None and now - self._last_warned[0] <= AFTERMATH:
            _, blocked, slowest = self._last_warned
        else:
            return None
        self._last_warned = None
        by = f" ({slowest[0]} was the slowest)" if slowest else ""
        return (
            f"Asterisk closed the connection, probably because this client had stopped reading for"
            f" {blocked * 1000:.0f} ms while its handlers were busy{by}: {WRITETIMEOUT_HINT}. Make handlers"
            " quicker or hand their work to another thread or task"
        )

    def stats(self, now: float) -> dict[str, object]:
        """The counters; any thread may ask (only the watching thread changes them)."""
        current = self.episode_seconds(now)
        return {
            "blocked_seconds": round(self.blocked_seconds + current, 6),
            "blocked_episodes": self.episodes,
            "slow_handler_warnings": self.warnings,
        }

    def _note_episode(self, handler: str, seconds: float) -> None:
        if self._episode_slowest is None or seconds >= self._episode_slowest[1]:
            self._episode_slowest = (handler, seconds)

    def _message(self, blocked: float, verb: str) -> str:
        slowest = ""
        if self._episode_slowest is not None:
            name, seconds = self._episode_slowest
            slowest = f"; slowest handler: {name} (busy {seconds * 1000:.0f} ms)"
        return (
            f"the reader {verb} blocked for {blocked * 1000:.0f} ms by handlers that do not keep up"
            f" (slow_handler_warning={self.threshold} s){slowest}. {WRITETIMEOUT_HINT}"
        )
