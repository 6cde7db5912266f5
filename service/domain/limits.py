"""The one token-bucket limiter: a platform's webhook allowance, the budget for logging its
refused deliveries, and each address's allowance on the public report channel.

Kept in this process's memory: with several replicas, a key's effective allowance is the
per-process rate times the number of replicas behind the load balancer.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["TokenBucket"]


class TokenBucket:
    """A bucket per key: ``rate`` tokens a second, holding at most ``burst``.

    ``wait`` only looks and ``take`` spends, for callers that decide between the two (the
    webhook intake spends a token only once a delivery is verified, so unsigned junk cannot
    spend a platform's allowance); ``spend`` does both at once. At most ``max_keys`` buckets
    are kept; the least recently used is dropped first (a dropped key starts again with a
    full bucket, which errs towards letting requests in).
    """

    def __init__(self, *, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = max(rate, 1e-6)
        self.burst = float(max(burst, 1))
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    @classmethod
    def per_window(cls, *, limit: int, window: float, max_keys: int = 100_000) -> TokenBucket:
        """``limit`` requests per ``window`` seconds, refilled evenly over the window."""
        return cls(rate=limit / window, burst=limit, max_keys=max_keys)

    def _level(self, key: Hashable, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def _store(self, key: Hashable, tokens: float, now: float) -> None:
        self._buckets.pop(key, None)
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def wait(self, key: Hashable, now: float | None = None) -> float:
        """Seconds until ``key`` may go (0 when it may now); spends nothing."""
        level = self._level(key, time.monotonic() if now is None else now)
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate

    def take(self, key: Hashable, now: float | None = None) -> None:
        """Spend a token, whatever the level (concurrent callers may leave it in debt)."""
        now = time.monotonic() if now is None else now
        self._store(key, self._level(key, now) - 1.0, now)

    def spend(self, key: Hashable, now: float | None = None) -> float:
        """Spend a token if there is one: 0 when spent, else the seconds until one is."""
        now = time.monotonic() if now is None else now
        level = self._level(key, now)
        wait = 0.0
        if level >= 1.0:
            level -= 1.0
        else:
            wait = (1.0 - level) / self.rate
        self._store(key, level, now)
        return wait
