"""SQL for the compliance report's series: incidents per week by category, and how long
triage took, as a distribution.

The series are computed in the report's incidents read (``service.db.queries.compliance``,
``INCIDENTS``), over the rows it already holds in their state at the period's end: the
whole report's incidents of the period itself, merged duplicates left out. Reading the
same incidents a second time, each with its own ledger lookup, cost the dashboard a
statement and as long again as the lookups.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import asyncpg

__all__ = ["SERIES", "SERIES_COLUMNS", "TRIAGE_BOUNDS", "SeriesRows", "series_rows"]

#: Seconds from report to triage at which the distribution's buckets begin (after the first).
TRIAGE_BOUNDS = (3600, 4 * 3600, 86_400, 3 * 86_400, 7 * 86_400)

# CTEs over ``m`` (one row per incident, scope and period: ``scope`` NULL is the whole
# report's, ``period_to`` $3 the period's own): counts per week (starting on Monday, 00:00
# UTC) and category, and per bucket of time to triage (bounds $6; incidents not triaged
# fall in no bucket), then both as arrays in one row.
SERIES = """
counted AS (
  SELECT reported_at, triaged_at, category
  FROM m WHERE scope IS NULL AND period_to = $3 AND status <> 'duplicate'
), weekly AS (
  SELECT date_trunc('week', reported_at AT TIME ZONE 'UTC')::date AS week, category::text,
         count(*) AS n
  FROM counted GROUP BY 1, 2
), triage AS (
  SELECT width_bucket(extract(epoch FROM triaged_at - reported_at)::float8, $6::float8[])
           AS bucket,
         count(*) AS n
  FROM counted WHERE triaged_at IS NOT NULL GROUP BY 1
), series AS (
  SELECT (SELECT array_agg(week ORDER BY week, category) FROM weekly) AS series_weeks,
         (SELECT array_agg(category ORDER BY week, category) FROM weekly) AS series_categories,
         (SELECT array_agg(n ORDER BY week, category) FROM weekly) AS series_counts,
         (SELECT array_agg(bucket ORDER BY bucket) FROM triage) AS triage_buckets,
         (SELECT array_agg(n ORDER BY bucket) FROM triage) AS triage_counts
)"""

#: The columns ``SERIES`` adds to the incidents' rows (from ``series``).
SERIES_COLUMNS = (
    "series.series_weeks, series.series_categories, series.series_counts, "
    "series.triage_buckets, series.triage_counts"
)


class SeriesRows(NamedTuple):
    #: (week, category, incidents), by week then category.
    per_week: list[tuple[date, str, int]]
    #: Triaged incidents per bucket (1-based, as ``width_bucket`` numbers them).
    triage: dict[int, int]


def series_rows(row: asyncpg.Record | None) -> SeriesRows:
    """The series carried by an incidents row (none: no incident in the period)."""
    if row is None:
        return SeriesRows(per_week=[], triage={})
    weeks = row["series_weeks"] or []
    per_week = list(
        zip(
            weeks, row["series_categories"] or [], map(int, row["series_counts"] or []), strict=True
        )
    )
    triage = dict(
        zip(row["triage_buckets"] or [], map(int, row["triage_counts"] or []), strict=True)
    )
    return SeriesRows(per_week=per_week, triage=triage)
