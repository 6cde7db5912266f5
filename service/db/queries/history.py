"""SQL for reading the ``events`` ledger with filters, both ways, by keyset on ``seq``.

Each statement names only the filters a request gives, so every combination is its own
prepared statement and its plan fits it: a single statement with ``$n IS NULL OR ...`` for
each optional filter would get a generic plan that cannot tell which apply, and could scan
a whole model's history or the whole ledger. The texts come from a fixed set of fragments,
never from input; values are always bound parameters.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from uuid import UUID

import asyncpg

from service.db.queries.ledger_tree import SERVED_EVENT_COLUMNS

__all__ = ["model_exists", "select_download_counts", "select_events", "select_model_history"]

#: Each optional filter: its column and how it compares with its value.
_EVENT_FILTERS: dict[str, tuple[str, str, str]] = {
    "subject_id": ("subject_id", "=", "uuid"),
    "model_id": ("model_id", "=", "uuid"),
    "platform_id": ("platform_id", "=", "uuid"),
    "stage": ("stage", "=", "text"),
    "kind": ("kind", "=", "text"),
    "hidden_subject_type": ("subject_type", "<>", "text"),
    "since": ("occurred_at", ">=", "timestamptz"),
    "until": ("occurred_at", "<", "timestamptz"),
}


def _conditions(
    filters: dict[str, object], *, alias: str = "", first: int = 1
) -> tuple[str, list[object]]:
    """``AND``-ed conditions for the filters given (not None), numbered from ``$first``."""
    sql, values = "", []
    for name, value in filters.items():
        if value is None:
            continue
        column, op, type_ = _EVENT_FILTERS[name]
        values.append(value)
        sql += f" AND {alias}{column} {op} ${first + len(values) - 1}::{type_}"
    return sql, values


@lru_cache(maxsize=256)
def _events_sql(conditions: str, *, newest: bool) -> str:
    """The ledger's events after the cursor ($1), a page ($2) of them, then ``conditions``
    with their values from $3."""
    direction, bound, start = ("DESC", "<", "9223372036854775807") if newest else ("", ">", "0")
    return f"""
SELECT {SERVED_EVENT_COLUMNS} FROM events
WHERE seq {bound} coalesce($1::bigint, {start}){conditions}
ORDER BY seq {direction}
LIMIT $2
"""


_E_COLUMNS = ", ".join(f"e.{c.strip()}" for c in SERVED_EVENT_COLUMNS.split(","))

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


@lru_cache(maxsize=64)
def _history(*, newest: bool, conditions: str = "") -> str:
    """One bounded index scan per model of the lineage picks the page's seqs, merged and cut
    to the page; only then are the page's rows read in full, so the cost stays proportional
    to the page size however long each model's history is. Each model's events are those
    naming it in ``events.model_id`` (index events_model) and those listing it among several
    (``event_models``); an event reached through two models of the lineage appears once,
    under the closest relation.

    Parameters: the model ($1), whether to include its lineage ($2), the cursor ($3), the
    page size ($4), then the values of ``conditions`` (on ``e.``) from $5.
    """
    direction, bound = ("DESC", "<") if newest else ("", ">")
    start = "9223372036854775807" if newest else "0"
    join = "JOIN events e ON e.seq = x.seq" if conditions else ""
    return f"""
{_LINEAGE},
  page (seq, relation) AS (
    SELECT seq, relation FROM (
      SELECT DISTINCT ON (x.seq) x.seq, m.relation
      FROM lineage m
      CROSS JOIN LATERAL (
        (SELECT e.seq FROM events e
         WHERE e.model_id = m.model_id{conditions}
           AND e.seq {bound} coalesce($3::bigint, {start})
         ORDER BY e.seq {direction}
         LIMIT $4)
        UNION ALL
        (SELECT x.seq FROM event_models x {join}
         WHERE x.model_id = m.model_id{conditions}
           AND x.seq {bound} coalesce($3::bigint, {start})
         ORDER BY x.seq {direction}
         LIMIT $4)
      ) x
      ORDER BY x.seq {direction}, m.rank
    ) one_each
    ORDER BY seq {direction}
    LIMIT $4
  )
SELECT {_E_COLUMNS}, page.relation
FROM page JOIN events e ON e.seq = page.seq
ORDER BY e.seq {direction}
"""


#: The first page an auditor sees: no filters.
HISTORY_NEWEST_ALL = _history(newest=True)

MODEL_EXISTS = "SELECT EXISTS (SELECT 1 FROM models WHERE id = $1)"


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
    hidden_subject_type: str | None = None,
) -> list[asyncpg.Record]:
    conditions, values = _conditions(
        {
            "subject_id": subject_id,
            "model_id": model_id,
            "platform_id": platform_id,
            "stage": stage,
            "kind": kind,
            "hidden_subject_type": hidden_subject_type,
            "since": since,
            "until": until,
        },
        first=3,
    )
    sql = _events_sql(conditions, newest=newest_first)
    return list(await conn.fetch(sql, cursor, limit, *values))


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
    hidden_subject_type: str | None = None,
) -> list[asyncpg.Record]:
    conditions, values = _conditions(
        {
            "platform_id": platform_id,
            "stage": stage,
            "kind": kind,
            "hidden_subject_type": hidden_subject_type,
            "since": since,
            "until": until,
        },
        alias="e.",
        first=5,
    )
    sql = _history(newest=newest_first, conditions=conditions)
    return list(await conn.fetch(sql, model_id, include_lineage, cursor, limit, *values))


# A model's hostings' download counts as each hosting event left them: only the figure is
# read out of the payload, never the whole payload. Two statements, so each plan fits.
_DOWNLOADS = """
SELECT occurred_at, subject_id,
       COALESCE(payload #>> '{changes,downloads,to}', payload #>> '{state,downloads}')
         AS downloads
FROM events
WHERE model_id = $1 AND subject_type = 'hosting' {platform}
  AND (payload #> '{changes,downloads}' IS NOT NULL OR payload #> '{state,downloads}' IS NOT NULL)
ORDER BY seq
LIMIT $2
"""
SELECT_DOWNLOADS = _DOWNLOADS.replace("{platform}", "")
SELECT_DOWNLOADS_OF_PLATFORM = _DOWNLOADS.replace("{platform}", "AND platform_id = $3")


async def select_download_counts(
    conn: asyncpg.Connection, *, model_id: UUID, platform_id: UUID | None, limit: int
) -> list[asyncpg.Record]:
    if platform_id is None:
        return list(await conn.fetch(SELECT_DOWNLOADS, model_id, limit))
    return list(await conn.fetch(SELECT_DOWNLOADS_OF_PLATFORM, model_id, limit, platform_id))
