"""Token buckets: how often one key (a resident, a caller on a door, a device) may act."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

MAX_BUCKETS = 100_000
"""Keys remembered at most; full buckets are forgotten first (a full bucket is a default)."""


class TokenBuckets:
    """One token bucket per key: ``burst`` tokens, refilled at ``per_minute`` per minute."""

    def __init__(
        self, per_minute: float, burst: int, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._monotonic = monotonic
        self._buckets: dict[Any, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: Any) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available."""
        now = self._monotonic()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > MAX_BUCKETS:
            self._prune(now)
        return 0.0

    def _prune(self, now: float) -> None:
        full = [
            k for k, (t, at) in self._buckets.items() if t + (now - at) * self.rate >= self.burst
        ]
        for k in full:
            del self._buckets[k]
