"""SQL for the compliance report's series: incidents per week by category, and how long
triage took, as a distribution.

The incidents counted are the report's (``service.db.queries.compliance``): reported in
``[$1, $2)``, on platform ``$3`` (NULL for all) when the platform reported them or hosts a
hosting they name, merged duplicates left out, each as it stood at ``$2``.
"""

from __future__ import annotations

import asyncpg

from service.db.queries.compliance import INCIDENTS_THEN, Window

__all__ = [
    "TRIAGE_BOUNDS",
    "Window",
    "select_incidents_per_week",
    "select_triage_histogram",
]

# The report's own incidents, each in its state as the ledger held it at ``$2``, so that
# a past period's series do not change either.
_COUNTED = f"""
SELECT i.category, i.reported_at, i.triaged_at
FROM ({INCIDENTS_THEN}) i
WHERE i.status <> 'duplicate'
"""

# Weeks start on Monday, 00:00 UTC.
INCIDENTS_PER_WEEK = f"""
WITH i AS ({_COUNTED})
SELECT date_trunc('week', reported_at AT TIME ZONE 'UTC')::date AS week, category::text,
       count(*) AS incidents
FROM i GROUP BY 1, 2 ORDER BY 1, 2
"""

#: Seconds from report to triage at which the distribution's buckets begin (after the first).
TRIAGE_BOUNDS = (3600, 4 * 3600, 86_400, 3 * 86_400, 7 * 86_400)

TRIAGE_HISTOGRAM = f"""
WITH i AS ({_COUNTED})
SELECT width_bucket(extract(epoch FROM triaged_at - reported_at)::float8, $4::float8[])
         AS bucket,
       count(*) AS incidents
FROM i WHERE triaged_at IS NOT NULL GROUP BY 1 ORDER BY 1
"""


async def select_incidents_per_week(
    conn: asyncpg.Connection, window: Window
) -> list[asyncpg.Record]:
    return list(await conn.fetch(INCIDENTS_PER_WEEK, *window))


async def select_triage_histogram(conn: asyncpg.Connection, window: Window) -> dict[int, int]:
    rows = await conn.fetch(TRIAGE_HISTOGRAM, *window, [float(b) for b in TRIAGE_BOUNDS])
    return {int(r["bucket"]): int(r["incidents"]) for r in rows}
