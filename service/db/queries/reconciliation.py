"""SQL for reconciling records with the ledger: batches of rows, their newest states, and
what was found (``record_divergences``) and how far a pass got (``reconciliation_progress``).

A batch's rows come from the export's own query for the dataset (so the background pass
reads exactly what an export would hold), rendered with ``row_to_json`` and narrowed by a
keyset on the record id, which PostgreSQL pushes into the query's index scan.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from service.db.queries.exports import query_for

__all__ = [
    "RECONCILE_LOCK_KEY",
    "clear_divergences",
    "count_divergent_records",
    "insert_divergences",
    "select_batch",
    "select_divergences",
    "select_latest_states",
    "select_progress",
    "try_reconcile_lock",
    "update_progress",
]

#: An arbitrary constant naming the reconciler's advisory lock ("reconc" as ASCII).
RECONCILE_LOCK_KEY = 0x7265636F6E63

_NO_FILTERS = (None, None, None, None, None, None)


#: dataset -> the table holding its records.
TABLES = {
    "models": "models",
    "hostings": "hostings",
    "incidents": "incidents",
    "audits": "audits",
    "decisions": "decommissions",
}


def _ids_query(dataset: str) -> str:
    return (
        f"SELECT id FROM {TABLES[dataset]} WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    )


def _batch_query(dataset: str) -> str:
    # The ids first, then the export's query for them alone: its joins then touch a batch,
    # not every row after the keyset.
    return (
        f"SELECT x.id, row_to_json(x)::text AS row FROM ({query_for(dataset)}) x "
        "WHERE x.id = ANY($7::uuid[]) ORDER BY x.id"
    )


LATEST_STATES = """
SELECT DISTINCT ON (subject_id) subject_id, seq, (payload -> 'state')::text AS state
FROM events
WHERE subject_id = ANY($1::uuid[]) AND subject_type = $2 AND payload ? 'state'
ORDER BY subject_id, seq DESC
"""

CLEAR = """
DELETE FROM record_divergences
WHERE dataset = $1 AND ($2::uuid IS NULL OR record_id > $2) AND record_id <= $3
  AND NOT (record_id, field) IN (SELECT * FROM unnest($4::uuid[], $5::text[]))
"""

INSERT = """
INSERT INTO record_divergences AS d (dataset, record_id, field, found, expected, event_seq)
SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[])
ON CONFLICT (dataset, record_id, field) DO UPDATE
  SET found = excluded.found, expected = excluded.expected, event_seq = excluded.event_seq,
      last_seen_at = now()
RETURNING record_id, field, (xmax = 0) AS new
"""

SELECT_DIVERGENCES = """
SELECT id, dataset, record_id, field, found, expected, event_seq, first_seen_at, last_seen_at
FROM record_divergences
WHERE ($1::text IS NULL OR dataset = $1) AND ($2::bigint IS NULL OR id > $2)
ORDER BY id
LIMIT $3
"""

COUNT_DIVERGENT = "SELECT count(DISTINCT (dataset, record_id)) FROM record_divergences"

PROGRESS = "SELECT after_id, pass_started_at FROM reconciliation_progress WHERE dataset = $1"

UPDATE_PROGRESS = """
INSERT INTO reconciliation_progress AS p (dataset, after_id, passes, pass_started_at,
                                          last_pass_at, last_pass_seconds)
VALUES ($1, $2, CASE WHEN $2::uuid IS NULL THEN 1 ELSE 0 END, $3,
        CASE WHEN $2::uuid IS NULL THEN now() END,
        CASE WHEN $2::uuid IS NULL THEN extract(epoch FROM now() - $3) END)
ON CONFLICT (dataset) DO UPDATE
  SET after_id = $2,
      pass_started_at = CASE WHEN $2::uuid IS NULL THEN NULL ELSE $3 END,
      passes = p.passes + CASE WHEN $2::uuid IS NULL THEN 1 ELSE 0 END,
      last_pass_at = CASE WHEN $2::uuid IS NULL THEN now() ELSE p.last_pass_at END,
      last_pass_seconds = CASE WHEN $2::uuid IS NULL THEN extract(epoch FROM now() - $3)
                               ELSE p.last_pass_seconds END
"""

TRY_LOCK = "SELECT pg_try_advisory_xact_lock($1)"


async def try_reconcile_lock(conn: asyncpg.Connection) -> bool:
    """Take the reconciler's transaction-scoped advisory lock, if no other replica holds it."""
    return bool(await conn.fetchval(TRY_LOCK, RECONCILE_LOCK_KEY))


async def select_batch(
    conn: asyncpg.Connection, *, dataset: str, after_id: UUID | None, limit: int
) -> list[tuple[UUID, str]]:
    """Up to ``limit`` rows of the dataset after ``after_id``, as the JSON lines export."""
    ids = [r["id"] for r in await conn.fetch(_ids_query(dataset), after_id, limit)]
    if not ids:
        return []
    rows = await conn.fetch(_batch_query(dataset), *_NO_FILTERS, ids)
    return [(r["id"], r["row"]) for r in rows]


async def select_latest_states(
    conn: asyncpg.Connection, *, subject_type: str, subject_ids: list[UUID]
) -> dict[UUID, tuple[int, str]]:
    """Each subject's newest event carrying a state: id -> (seq, state as JSON text)."""
    rows = await conn.fetch(LATEST_STATES, subject_ids, subject_type)
    return {r["subject_id"]: (int(r["seq"]), r["state"]) for r in rows}


async def clear_divergences(
    conn: asyncpg.Connection,
    *,
    dataset: str,
    after_id: UUID | None,
    through_id: UUID,
    keep: list[tuple[UUID, str]],
) -> None:
    """Forget what was found in the id range ``(after_id, through_id]``, but ``keep``."""
    await conn.execute(
        CLEAR, dataset, after_id, through_id, [k[0] for k in keep], [k[1] for k in keep]
    )


async def insert_divergences(
    conn: asyncpg.Connection, *, dataset: str, rows: list[tuple[UUID, str, Any, Any, Any]]
) -> set[UUID]:
    """Record what was found; returns the records with a field not recorded before."""
    if not rows:
        return set()
    ids, fields, found, expected, seqs = (list(c) for c in zip(*rows, strict=True))
    done = await conn.fetch(INSERT, dataset, ids, fields, found, expected, seqs)
    return {r["record_id"] for r in done if r["new"]}


async def select_divergences(
    conn: asyncpg.Connection,
    *,
    dataset: str | None,
    after: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_DIVERGENCES, dataset, after, limit))


async def count_divergent_records(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(COUNT_DIVERGENT))


async def select_progress(
    conn: asyncpg.Connection, *, dataset: str
) -> tuple[UUID | None, datetime | None]:
    row = await conn.fetchrow(PROGRESS, dataset)
    return (None, None) if row is None else (row["after_id"], row["pass_started_at"])


async def update_progress(
    conn: asyncpg.Connection, *, dataset: str, after_id: UUID | None, pass_started_at: datetime
) -> None:
    """Record how far the pass got; ``after_id`` None: the dataset's pass is complete."""
    await conn.execute(UPDATE_PROGRESS, dataset, after_id, pass_started_at)
