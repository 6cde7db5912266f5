"""Per-process state of the webhook intake: each platform's allowance, its signing secrets
reused for a moment, and the budget for logging refused deliveries.

Each replica keeps its own: a platform's effective allowance is the per-process rate times
the number of replicas behind the load balancer.
"""

from __future__ import annotations

import time
from uuid import UUID

import asyncpg
from litestar.datastructures import State

from service.db.queries import webhook_secrets as secrets_q
from service.settings import Settings

__all__ = ["Buckets", "SigningCache", "delivery_limiter", "log_budget", "signing_cache"]


class Buckets:
    """A token bucket per platform: ``rate`` deliveries a second, bursts up to ``burst``.

    Only verified deliveries take a token, so unsigned junk cannot spend a platform's
    allowance; an empty bucket refuses before any signature work.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = max(rate, 1e-6)
        self.burst = float(max(burst, 1))
        self._tokens: dict[UUID, tuple[float, float]] = {}

    def _level(self, key: UUID, now: float) -> float:
        tokens, last = self._tokens.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def wait(self, key: UUID) -> float:
        """Seconds until a delivery would be allowed (0 when it is now)."""
        level = self._level(key, time.monotonic())
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate

    def take(self, key: UUID) -> None:
        now = time.monotonic()
        self._tokens[key] = (self._level(key, now) - 1.0, now)


class SigningCache:
    """Each platform's id and active secrets, reused for a moment to save a round trip.

    A signature that fails against cached secrets is checked again against fresh ones, so
    a new secret verifies at once; a retired one stops verifying within ``ttl`` seconds
    (at once when retired through this process's API).
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, UUID, list[str]]] = {}

    def cached(self, slug: str) -> tuple[UUID, list[str]] | None:
        entry = self._entries.get(slug)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1], entry[2]

    async def fetch(self, conn: asyncpg.Connection, slug: str) -> tuple[UUID, list[str]] | None:
        found = await secrets_q.select_signing_context(conn, slug=slug)
        if found is None:
            self._entries.pop(slug, None)
        elif self.ttl > 0:
            self._entries[slug] = (time.monotonic() + self.ttl, *found)
        return found

    def forget(self, slug: str) -> None:
        self._entries.pop(slug, None)


def signing_cache(state: State) -> SigningCache:
    cache: SigningCache | None = state.get("webhook_signing")
    if cache is None:
        settings: Settings = state.settings
        cache = SigningCache(settings.webhook_secret_cache_seconds)
        state["webhook_signing"] = cache
    return cache


def delivery_limiter(state: State) -> Buckets:
    limiter: Buckets | None = state.get("webhook_limiter")
    if limiter is None:
        settings: Settings = state.settings
        limiter = Buckets(settings.webhook_rate_per_second, settings.webhook_burst)
        state["webhook_limiter"] = limiter
    return limiter


#: Refusals logged per platform per second (bursts up to ``_LOG_BURST``): unsigned junk
#: costs no allowance, so without this bound a flood of it would fill the log table.
_LOG_RATE = 5.0
_LOG_BURST = 100


def log_budget(state: State) -> Buckets:
    budget: Buckets | None = state.get("webhook_log_budget")
    if budget is None:
        budget = Buckets(_LOG_RATE, _LOG_BURST)
        state["webhook_log_budget"] = budget
    return budget
