"""The compliance report's series: incidents per week by category and the distribution of
times to triage, over the same incidents as the report's ``detect`` figures.

Counted in the report's own incidents read (``service.db.queries.compliance_series``) and
added to its result when asked (``build_report(..., series=True)``): the API, snapshots and
the dashboard all ask, so the charts and the JSON agree.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from service.db.queries import compliance_series as q
from service.schemas.compliance import Series, TriageBucket, WeekCount

__all__ = ["series_from"]


def _weeks(since: datetime, until: datetime) -> list[date]:
    """The Mondays of every week ``[since, until)`` touches (UTC)."""
    first = since.date() - timedelta(days=since.weekday())
    last = (until - timedelta(microseconds=1)).date()
    weeks = []
    while first <= last:
        weeks.append(first)
        first += timedelta(days=7)
    return weeks


def series_from(rows: q.SeriesRows, *, since: datetime, until: datetime) -> Series:
    """The series of the period ``[since, until)`` from its counts, every week included."""
    per_week: dict[date, dict[str, int]] = {w: {} for w in _weeks(since, until)}
    for week, category, incidents in rows.per_week:
        per_week.setdefault(week, {})[category] = incidents
    counts = rows.triage
    bounds = [0, *q.TRIAGE_BOUNDS]
    return Series(
        incidents_per_week=[
            WeekCount(week=w, by_category=dict(sorted(c.items())))
            for w, c in sorted(per_week.items())
        ],
        time_to_triage=[
            TriageBucket(
                from_seconds=low,
                to_seconds=bounds[i + 1] if i + 1 < len(bounds) else None,
                incidents=counts.get(i, 0),
            )
            for i, low in enumerate(bounds)
        ],
    )
