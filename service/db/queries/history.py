"""SQL for reading the ``events`` ledger with filters, both ways, by keyset on ``seq``.

Cursor bounds are written ``seq < coalesce($n, max)`` rather than ``$n IS NULL OR ...`` so
that even a generic plan keeps them as index conditions. The optional filters are
``$n IS NULL OR column = $n``: a generic plan cannot tell which apply and may scan a whole
model's history or the whole ledger, so filtered reads ask for a plan made for their actual
values (``SET LOCAL``, which lasts until the request's transaction ends).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from service.db.queries.ledger_tree import EVENT_COLUMNS

__all__ = ["model_exists", "select_events", "select_model_history"]

_FILTERS = """
  ($1::uuid IS NULL OR subject_id = $1)
  AND ($2::uuid IS NULL OR model_id = $2)
  AND ($3::uuid IS NULL OR platform_id = $3)
  AND ($4::text IS NULL OR stage = $4)
  AND ($5::text IS NULL OR kind = $5)
  AND ($6::timestamptz IS NULL OR occurred_at >= $6)
  AND ($7::timestamptz IS NULL OR occurred_at < $7)
"""

EVENTS_OLDEST = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE {_FILTERS} AND seq > coalesce($8::bigint, 0)
ORDER BY seq
LIMIT $9
"""

EVENTS_NEWEST = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE {_FILTERS} AND seq < coalesce($8::bigint, 9223372036854775807)
ORDER BY seq DESC
LIMIT $9
"""

_HISTORY_FILTERS = """
  AND ($3::uuid IS NULL OR e.platform_id = $3)
  AND ($4::text IS NULL OR e.stage = $4)
  AND ($5::text IS NULL OR e.kind = $5)
  AND ($6::timestamptz IS NULL OR e.occurred_at >= $6)
  AND ($7::timestamptz IS NULL OR e.occurred_at < $7)
"""

_E_COLUMNS = ", ".join(f"e.{c.strip()}" for c in EVENT_COLUMNS.split(","))

#: The model itself ($1), and with $2 its ancestors and descendants, each with its relation.
_LINEAGE = """
WITH RECURSIVE
  up (id, depth) AS (
    SELECT base_model_id, 1 FROM models WHERE id = $1 AND base_model_id IS NOT NULL AND $2::boolean
    UNION ALL
    SELECT m.base_model_id, up.depth + 1 FROM up JOIN models m ON m.id = up.id
    WHERE m.base_model_id IS NOT NULL AND up.depth < 64
  ),
  down (id, depth) AS (
    SELECT id, 1 FROM models WHERE base_model_id = $1 AND $2::boolean
    UNION ALL
    SELECT m.id, down.depth + 1 FROM down JOIN models m ON m.base_model_id = down.id
    WHERE down.depth < 64
  ),
  lineage (model_id, relation, rank) AS (
    SELECT id, 'self', 0 FROM models WHERE id = $1
    UNION ALL SELECT id, 'ancestor', 1 FROM up
    UNION ALL SELECT id, 'descendant', 2 FROM down
  )"""


def _history(*, newest: bool, filtered: bool) -> str:
    """One bounded index scan per model of the lineage picks the page's seqs, merged and cut
    to the page; only then are the page's rows read in full, so the cost stays proportional
    to the page size however long each model's history is. Each model's events are those
    naming it in ``events.model_id`` (index events_model) and those listing it among several
    (``event_models``); an event reached through two models of the lineage appears once,
    under the closest relation.

    The unfiltered form is separate: with the ``$n IS NULL OR`` filters in it, a generic
    plan guesses one matching row and reads each model's whole history through a bitmap.
    """
    direction, bound = ("DESC", "<") if newest else ("", ">")
    start = "9223372036854775807" if newest else "0"
    filters = _HISTORY_FILTERS if filtered else ""
    join = "JOIN events e ON e.seq = x.seq" if filtered else ""
    # Without filters the statement takes only $1, $2, the cursor ($3) and the limit ($4).
    cursor, limit = ("$8", "$9") if filtered else ("$3", "$4")
    return f"""
{_LINEAGE},
  page (seq, relation) AS (
    SELECT seq, relation FROM (
      SELECT DISTINCT ON (x.seq) x.seq, m.relation
      FROM lineage m
      CROSS JOIN LATERAL (
        (SELECT e.seq FROM events e
         WHERE e.model_id = m.model_id {filters}
           AND e.seq {bound} coalesce({cursor}::bigint, {start})
         ORDER BY e.seq {direction}
         LIMIT {limit})
        UNION ALL
        (SELECT x.seq FROM event_models x {join}
         WHERE x.model_id = m.model_id {filters}
           AND x.seq {bound} coalesce({cursor}::bigint, {start})
         ORDER BY x.seq {direction}
         LIMIT {limit})
      ) x
      ORDER BY x.seq {direction}, m.rank
    ) one_each
    ORDER BY seq {direction}
    LIMIT {limit}
  )
SELECT {_E_COLUMNS}, page.relation
FROM page JOIN events e ON e.seq = page.seq
ORDER BY e.seq {direction}
"""


HISTORY_NEWEST = _history(newest=True, filtered=True)
HISTORY_OLDEST = _history(newest=False, filtered=True)
#: The first page an auditor sees: no filters.
HISTORY_NEWEST_ALL = _history(newest=True, filtered=False)
HISTORY_OLDEST_ALL = _history(newest=False, filtered=False)

MODEL_EXISTS = "SELECT EXISTS (SELECT 1 FROM models WHERE id = $1)"

CUSTOM_PLANS = "SET LOCAL plan_cache_mode = force_custom_plan"


async def select_events(
    conn: asyncpg.Connection,
    *,
    subject_id: UUID | None,
    model_id: UUID | None,
    platform_id: UUID | None,
    stage: str | None,
    kind: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: int | None,
    newest_first: bool,
    limit: int,
) -> list[asyncpg.Record]:
    sql = EVENTS_NEWEST if newest_first else EVENTS_OLDEST
    await conn.execute(CUSTOM_PLANS)
    return list(
        await conn.fetch(
            sql, subject_id, model_id, platform_id, stage, kind, since, until, cursor, limit
        )
    )


async def model_exists(conn: asyncpg.Connection, *, model_id: UUID) -> bool:
    return bool(await conn.fetchval(MODEL_EXISTS, model_id))


async def select_model_history(
    conn: asyncpg.Connection,
    *,
    model_id: UUID,
    include_lineage: bool,
    platform_id: UUID | None,
    stage: str | None,
    kind: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: int | None,
    newest_first: bool,
    limit: int,
) -> list[asyncpg.Record]:
    if platform_id is None and stage is None and kind is None and since is None and until is None:
        sql = HISTORY_NEWEST_ALL if newest_first else HISTORY_OLDEST_ALL
        return list(await conn.fetch(sql, model_id, include_lineage, cursor, limit))
    sql = HISTORY_NEWEST if newest_first else HISTORY_OLDEST
    await conn.execute(CUSTOM_PLANS)
    return list(
        await conn.fetch(
            sql, model_id, include_lineage, platform_id, stage, kind, since, until, cursor, limit
        )
    )
