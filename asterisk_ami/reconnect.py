"""Reconnect policy: how long to wait before the next connection attempt."""

from __future__ import annotations

import random


class ReconnectPolicy:
    """A fixed delay (``base_ms``), or exponential backoff with full jitter up to ``max_ms``.

    The attempt count resets after a successful login. Bad credentials never reach this policy: the
    client stops reconnecting after a refused login (see ``AsteriskAmi``).
    """

    def __init__(self, base_ms: float, max_ms: float | None = None, rng: random.Random | None = None) -> None:
        self.base_ms = base_ms
        self.max_ms = max_ms
        self.attempt = 0
        self._rng = rng or random.Random()

    def reset(self) -> None:
        """Called after a successful login."""
        self.attempt = 0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt."""
        self.attempt += 1
        if self.max_ms is None:
            return self.base_ms / 1000
        ceiling = min(float(self.max_ms), self.base_ms * 2.0 ** (self.attempt - 1))
        # keep at least the base delay, jitter the rest so many clients do not reconnect in step
        return (self.base_ms + self._rng.random() * max(0.0, ceiling - self.base_ms)) / 1000
