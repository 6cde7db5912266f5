"""The compliance report's series: incidents per week by category and the distribution of
times to triage, over the same incidents as the report's ``detect`` figures.

Kept apart from ``build_report`` and added to its result (``with_series``): the API and the
dashboard both call it, in the report's snapshot, so the charts and the JSON agree.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import asyncpg
import msgspec

from service.db.queries import compliance_series as q
from service.domain.platforms import get_platform
from service.schemas.compliance import ComplianceReport, Series, TriageBucket, WeekCount

__all__ = ["build_series", "with_series"]


def _weeks(since: datetime, until: datetime) -> list[date]:
    """The Mondays of every week ``[since, until)`` touches (UTC)."""
    first = since.date() - timedelta(days=since.weekday())
    last = (until - timedelta(microseconds=1)).date()
    weeks = []
    while first <= last:
        weeks.append(first)
        first += timedelta(days=7)
    return weeks


async def build_series(
    conn: asyncpg.Connection,
    *,
    since: datetime,
    until: datetime,
    platform: str | None,
    seconds: float | None = None,
) -> Series:
    platform_id = None if platform is None else (await get_platform(conn, slug=platform)).id
    window: q.Window = (since, until, platform_id)
    per_week: dict[date, dict[str, int]] = {w: {} for w in _weeks(since, until)}
    rows = await q.select_series(conn, window, seconds=seconds)
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


async def with_series(
    conn: asyncpg.Connection, report: ComplianceReport, *, seconds: float | None = None
) -> ComplianceReport:
    """The report with its ``series``; run it in the report's transaction."""
    series = await build_series(
        conn,
        since=report.period_from,
        until=report.period_to,
        platform=report.overall.platform,
        seconds=seconds,
    )
    return msgspec.structs.replace(report, series=series)
