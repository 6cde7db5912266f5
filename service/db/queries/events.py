"""SQL for appending to the ``events`` ledger (the database forbids any other change).

Reads are in ``history``: the whole ledger with filters, and a model's timeline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

__all__ = ["insert_event"]

INSERT = """
INSERT INTO events (stage, kind, subject_type, subject_id, model_id, platform_id, actor_id,
                    occurred_at, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()), $9)
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
