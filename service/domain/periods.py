"""Report periods: ``[from, to)`` and the previous period of the same length before it.

Every bound is checked before any arithmetic, so a period the calendar cannot hold is an
``InvalidInput`` (422) naming the parameter, never an ``OverflowError`` (500): a start whose
previous period would begin before year 1, an end too close to year 9999 for its time zone
offset to be taken away, or an offset that pushes either bound outside the calendar in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from service.errors import InvalidInput

__all__ = ["DEFAULT_LENGTH", "Period", "report_period"]

#: The period when a request names neither end: the last 30 days.
DEFAULT_LENGTH = timedelta(days=30)

#: The earliest and latest moments a period may touch, in UTC: a day of margin inside the
#: calendar, so that no offset or rendering of them overflows.
_FIRST = datetime(1, 1, 2, tzinfo=UTC)
_LAST = datetime(9999, 12, 30, tzinfo=UTC)


class Period(msgspec.Struct, frozen=True, kw_only=True):
    since: datetime
    until: datetime
    #: The start of the previous period of the same length, which ends at ``since``.
    previous_from: datetime


def _utc(moment: datetime, key: str) -> datetime:
    if moment.tzinfo is None:
        raise InvalidInput(f"'{key}' must carry a time zone offset (RFC 3339)", key=key)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput(f"'{key}' falls outside the calendar in UTC", key=key) from exc
    if not _FIRST <= moment <= _LAST:
        raise InvalidInput(f"'{key}' must lie between {_FIRST.date()} and {_LAST.date()}", key=key)
    return moment


def report_period(
    since: datetime | None, until: datetime | None, *, now: datetime | None = None
) -> Period:
    """The period ``[since, until)`` in UTC; ``until`` defaults to now and ``since`` to
    ``DEFAULT_LENGTH`` before it."""
    until = _utc(until or now or datetime.now(UTC), "to")
    since = _utc(since, "from") if since is not None else None
    if since is None:
        if until - _FIRST < DEFAULT_LENGTH:
            raise InvalidInput("the default period would begin before the calendar", key="to")
        since = until - DEFAULT_LENGTH
    if since >= until:
        raise InvalidInput("'from' must be before 'to'", key="from")
    length = until - since
    if since - _FIRST < length:
        # The previous period, of the same length, would begin before the calendar does.
        raise InvalidInput("the period is too long for its start", key="from")
    return Period(since=since, until=until, previous_from=since - length)
