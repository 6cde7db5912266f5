"""Times a caller supplies (``at``, ``aware_at``, ``occurred_at``, ``started_at``, ...).

A claimed time may be in the past (a step recorded after the fact) but not later than now
plus the allowed clock skew, which absorbs a caller's clock running a little fast, nor earlier
than the moment it follows (a triage before the report, an authority report before the
provider became aware, a completion before the start). Either is InvalidInput naming the
field (422).

The skew is a setting (``REGISTRY_CLOCK_SKEW_SECONDS``); the service sets it for each request
with ``allow_clock_skew``, and ``CLOCK_SKEW`` applies where nothing set it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

from service.errors import InvalidInput

__all__ = ["CLOCK_SKEW", "allow_clock_skew", "check_claimed", "clock_skew"]

#: How far ahead of the registry's clock a caller's may run, unless configured otherwise.
CLOCK_SKEW = timedelta(minutes=5)

#: Set per request by the service's outer layer (``service.middleware``), directly: a
#: context manager there cost a generator on every request.
clock_skew: ContextVar[timedelta] = ContextVar("clock_skew", default=CLOCK_SKEW)


@contextmanager
def allow_clock_skew(skew: timedelta) -> Iterator[None]:
    """Judge claimed times with ``skew`` for the work done inside the block."""
    token = clock_skew.set(skew)
    try:
        yield
    finally:
        clock_skew.reset(token)


def check_claimed(
    at: datetime,
    *,
    key: str,
    now: datetime | None = None,
    follows: datetime | None = None,
    follows_what: str = "",
) -> datetime:
    """``at`` if it is not in the future (beyond the skew) nor before ``follows``."""
    now = now or datetime.now(UTC)
    skew = clock_skew.get()
    if at > now + skew:
        raise InvalidInput(
            f"{key} is in the future: {at.isoformat()} is after now ({now.isoformat()})"
            f" by more than the allowed clock skew of {skew.total_seconds():g} s",
            key=key,
        )
    if follows is not None and at < follows:
        raise InvalidInput(
            f"{key} ({at.isoformat()}) is before {follows_what} ({follows.isoformat()})",
            key=key,
        )
    return at
