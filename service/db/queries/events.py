"""SQL for the ``events`` ledger: append and read, nothing else (the database forbids more)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from service.db.queries.ledger_tree import SERVED_EVENT_COLUMNS

__all__ = ["insert_event", "select_events"]

INSERT = """
INSERT INTO events (stage, kind, subject_type, subject_id, model_id, platform_id, actor_id,
                    occurred_at, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()), $9)
RETURNING seq
"""

SELECT = f"""
SELECT {SERVED_EVENT_COLUMNS}
FROM events
WHERE ($1::uuid IS NULL OR subject_id = $1)
  AND ($2::uuid IS NULL OR model_id = $2)
  AND ($3::uuid IS NULL OR platform_id = $3)
  AND ($4::text IS NULL OR stage = $4)
  AND ($5::text IS NULL OR kind = $5)
  AND ($6::bigint IS NULL OR seq > $6)
ORDER BY seq
LIMIT $7
"""


async def insert_event(
    conn: asyncpg.Connection,
    *,
    stage: str,
    kind: str,
    subject_type: str,
    subject_id: UUID,
    model_id: UUID | None,
    platform_id: UUID | None,
    actor_id: UUID | None,
    occurred_at: datetime | None,
    payload: dict[str, Any],
) -> int:
    seq = await conn.fetchval(
        INSERT,
        stage,
        kind,
        subject_type,
        subject_id,
        model_id,
        platform_id,
        actor_id,
        occurred_at,
        payload,
    )
    return int(seq)


async def select_events(
    conn: asyncpg.Connection,
    *,
    subject_id: UUID | None,
    model_id: UUID | None,
    platform_id: UUID | None,
    stage: str | None,
    kind: str | None,
    after_seq: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(SELECT, subject_id, model_id, platform_id, stage, kind, after_seq, limit)
    )
