"""SQL for appending to the ``events`` ledger (the database forbids any other change).

Reads are in ``history``: the whole ledger with filters, and a model's timeline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from service.db.pool import json_encode

__all__ = ["any_incident_event", "insert_event", "insert_events"]

INSERT = """
INSERT INTO events (stage, kind, subject_type, subject_id, model_id, platform_id, actor_id,
                    occurred_at, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()), $9)
RETURNING seq
"""


# Many events in one statement, in the order given. Their seqs are drawn as the rows are
# inserted, in that order, so the seqs sorted ascending line up with the input.
INSERT_MANY = """
INSERT INTO events (stage, kind, subject_type, subject_id, model_id, platform_id, actor_id,
                    occurred_at, payload)
SELECT stage, kind, subject_type, subject_id, model_id, platform_id, actor_id,
       coalesce(occurred_at, now()), payload::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::uuid[], $6::uuid[],
            $7::uuid[], $8::timestamptz[], $9::text[])
     WITH ORDINALITY AS e(stage, kind, subject_type, subject_id, model_id, platform_id,
                          actor_id, occurred_at, payload, n)
ORDER BY n
RETURNING seq
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


async def insert_events(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> list[int]:
    """Append many events, each ``(stage, kind, subject_type, subject_id, model_id,
    platform_id, actor_id, occurred_at, payload)``; returns their seqs, in that order."""
    if not rows:
        return []
    if len(rows) == 1:  # the plain statement: no arrays to build or unnest
        return [int(await conn.fetchval(INSERT, *rows[0]))]
    columns = [list(column) for column in zip(*rows, strict=True)]
    columns[8] = [json_encode(payload) for payload in columns[8]]
    return sorted(int(row["seq"]) for row in await conn.fetch(INSERT_MANY, *columns))


ANY_INCIDENT_EVENT = """
SELECT EXISTS (SELECT 1 FROM events WHERE seq = ANY($1::bigint[]) AND subject_type = 'incident')
"""


async def any_incident_event(conn: asyncpg.Connection, *, seqs: list[int]) -> bool:
    """Whether any of these events is about an incident."""
    return bool(await conn.fetchval(ANY_INCIDENT_EVENT, seqs))
