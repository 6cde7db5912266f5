"""Times a caller supplies (``at``, ``aware_at``, ``occurred_at``, ``started_at``, ...).

A claimed time may be in the past (a step recorded after the fact) but not later than now
plus ``CLOCK_SKEW``, which absorbs a caller's clock running a little fast, nor earlier
than the moment it follows (a triage before the report, an authority report before the
provider became aware, a completion before the start). Either is InvalidInput naming the
field (422).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.errors import InvalidInput

__all__ = ["CLOCK_SKEW", "check_claimed"]

#: How far ahead of the registry's clock a caller's may run.
CLOCK_SKEW = timedelta(minutes=5)


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
    if at > now + CLOCK_SKEW:
        raise InvalidInput(
            f"{key} is in the future: {at.isoformat()} is after now ({now.isoformat()})"
            f" by more than the allowed clock skew of {int(CLOCK_SKEW.total_seconds())} s",
            key=key,
        )
    if follows is not None and at < follows:
        raise InvalidInput(
            f"{key} ({at.isoformat()}) is before {follows_what} ({follows.isoformat()})",
            key=key,
        )
    return at
