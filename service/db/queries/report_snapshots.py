"""SQL for ``report_snapshots``: compliance reports frozen and signed, and what binds them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

__all__ = ["insert_snapshot", "select_covering_checkpoint", "select_snapshot"]

# The newest checkpoint, if its tree covers every event recorded before $1: no event after
# its last sealed seq was recorded before then. (The sealer seals a gap-free prefix, so
# every seq up to last_seq is in the tree.) Only the unsealed tail is read.
COVERING_CHECKPOINT = """
SELECT c.tree_size, c.root_hash, c.note
FROM (SELECT tree_size, root_hash, last_seq, note
      FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1) c
WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.seq > c.last_seq AND e.recorded_at < $1)
"""

INSERT = """
INSERT INTO report_snapshots (id, period_from, period_to, platform, report, tree_size, note,
                              created_by)
VALUES (uuid7(), $1, $2, $3, $4, $5, $6, $7)
RETURNING id, created_at
"""

SNAPSHOT = """
SELECT s.id, s.period_from, s.period_to, s.platform, s.report, s.tree_size, s.note,
       s.created_at, c.root_hash, c.note AS checkpoint_note
FROM report_snapshots s JOIN ledger_checkpoints c ON c.tree_size = s.tree_size
WHERE s.id = $1
"""


async def select_covering_checkpoint(
    conn: asyncpg.Connection, *, until: datetime
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(COVERING_CHECKPOINT, until)
    return row


async def insert_snapshot(
    conn: asyncpg.Connection,
    *,
    since: datetime,
    until: datetime,
    platform: str | None,
    report: bytes,
    tree_size: int,
    note: str,
    created_by: UUID | None,
) -> asyncpg.Record:
    row = await conn.fetchrow(INSERT, since, until, platform, report, tree_size, note, created_by)
    if row is None:
        raise LookupError("INSERT ... RETURNING returned no row")
    return row


async def select_snapshot(conn: asyncpg.Connection, *, snapshot_id: UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(SNAPSHOT, snapshot_id)
    return row
