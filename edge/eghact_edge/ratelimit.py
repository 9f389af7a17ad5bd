"""Per-client token buckets (429 + Retry-After when empty).

A client is its address. Buckets refill continuously at ``rate`` tokens a second up to
``burst``; the table is bounded: idle buckets (full again) are dropped when it grows, so a
spray of addresses costs memory only while they are active. The clock is injectable.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_MAX_CLIENTS = 100_000


class RateLimiter:
    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}   # client -> [tokens, last refill]

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, client: str, cost: float = 1.0) -> float:
        """0.0 when allowed; else the seconds until ``cost`` tokens will be there."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= _MAX_CLIENTS:
                self._sweep(now)
            bucket = self._buckets[client] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= cost:
            bucket[0] = tokens - cost
            return 0.0
        bucket[0] = tokens
        return (cost - tokens) / self.rate

    def _sweep(self, now: float) -> None:
        full = [c for c, (tokens, last) in self._buckets.items() if tokens + (now - last) * self.rate >= self.burst]
        for client in full:
            del self._buckets[client]
        if len(self._buckets) >= _MAX_CLIENTS:
            self._buckets.clear()
