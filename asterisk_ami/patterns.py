"""Event names and event-name patterns, for ``on()``, ``events()`` and the CLI's ``--event``.

A name with a shell-style wildcard (``*``, ``?``, ``[...]``) is a pattern: ``Queue*`` matches
``QueueMemberStatus`` and ``QueueCallerJoin``, in any case, as panoramisk's ``register_event('Peer*')``
does. A name without one is exact: ``Hangup`` matches ``Hangup`` only (Asterisk's own spelling). No event
name Asterisk sends contains a wildcard character, so the two cannot be confused.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

_WILDCARDS = frozenset("*?[")
#: names a matcher remembers the answer for; a server sending more distinct names only costs a regex run
_CACHE_LIMIT = 4096


def is_pattern(name: str) -> bool:
    """True when ``name`` has a wildcard and so is a pattern, not an event name."""
    return not _WILDCARDS.isdisjoint(name)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regex of one shell-style pattern, matched case-insensitively against a whole event name."""
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


class EventMatcher:
    """Exact names and patterns: :meth:`matches` tells whether an event name is wanted. No names: every event."""

    __slots__ = ("_cache", "exact", "globs", "patterns")

    def __init__(self, names: Iterable[str]) -> None:
        names = list(names)
        for name in names:
            if not isinstance(name, str) or not name:
                raise TypeError(f"event names are non-empty strings, not {name!r}")
        self.exact = frozenset(n for n in names if not is_pattern(n))
        self.globs = tuple(n for n in dict.fromkeys(names) if is_pattern(n))
        self.patterns = tuple(compile_pattern(n) for n in self.globs)
        self._cache: dict[str, bool] = {}

    @property
    def everything(self) -> bool:
        return not self.exact and not self.patterns

    def matches(self, event: str) -> bool:
        if event in self.exact or (not self.exact and not self.patterns):
            return True
        if not self.patterns:
            return False
        hit = self._cache.get(event)
        if hit is None:
            hit = any(p.match(event) for p in self.patterns)
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[event] = hit
        return hit

    def describe(self) -> str:
        """The names and patterns, for reprs and log lines."""
        texts = [*sorted(self.exact), *self.globs]
        return ", ".join(repr(t) for t in texts) if texts else "every event"
