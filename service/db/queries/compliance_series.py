"""SQL for the compliance report's series: incidents per week by category, and how long
triage took, as a distribution.

The incidents counted are the report's (``service.db.queries.compliance``): reported in
``[$1, $2)``, on platform ``$3`` (NULL for all) when the platform reported them or hosts a
hosting they name, merged duplicates left out, each as it stood at ``$2``.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import asyncpg

from service.db.queries.compliance import INCIDENTS_THEN, Window

__all__ = [
    "TRIAGE_BOUNDS",
    "SeriesRows",
    "Window",
    "select_series",
]

# The report's own incidents, each in its state as the ledger held it at ``$2``, so that
# a past period's series do not change either.
_COUNTED = f"""
SELECT i.category, i.reported_at, i.triaged_at
FROM ({INCIDENTS_THEN}) i
WHERE i.status <> 'duplicate'
"""

#: Seconds from report to triage at which the distribution's buckets begin (after the first).
TRIAGE_BOUNDS = (3600, 4 * 3600, 86_400, 3 * 86_400, 7 * 86_400)

# Both series in one pass over the incidents (each read in its state then once): counts
# per week (starting on Monday, 00:00 UTC) and category, and per bucket of time to triage
# (``triage`` true; incidents not triaged fall in no bucket).
SERIES = f"""
WITH i AS ({_COUNTED}),
b AS (
  SELECT date_trunc('week', reported_at AT TIME ZONE 'UTC')::date AS week, category::text,
         CASE WHEN triaged_at IS NOT NULL THEN
           width_bucket(extract(epoch FROM triaged_at - reported_at)::float8, $4::float8[])
         END AS bucket
  FROM i
)
SELECT week, category, bucket, grouping(week, category) <> 0 AS triage, count(*) AS incidents
FROM b GROUP BY GROUPING SETS ((week, category), (bucket))
ORDER BY triage, week, category, bucket
"""


class SeriesRows(NamedTuple):
    #: (week, category, incidents), by week then category.
    per_week: list[tuple[date, str, int]]
    #: Triaged incidents per bucket (1-based, as ``width_bucket`` numbers them).
    triage: dict[int, int]


async def select_series(
    conn: asyncpg.Connection, window: Window, *, seconds: float | None = None
) -> SeriesRows:
    rows = await conn.fetch(SERIES, *window, [float(b) for b in TRIAGE_BOUNDS], timeout=seconds)
    per_week = [(r["week"], r["category"], int(r["incidents"])) for r in rows if not r["triage"]]
    triage = {
        int(r["bucket"]): int(r["incidents"])
        for r in rows
        if r["triage"] and r["bucket"] is not None
    }
    return SeriesRows(per_week=per_week, triage=triage)
