"""SQL for ``webhook_deliveries`` and ``webhook_rejections`` (the delivery log)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

__all__ = [
    "claim_delivery",
    "insert_rejection",
    "select_claimed",
    "select_delivery",
    "select_log",
    "set_delivery_events",
]

# ON CONFLICT DO NOTHING waits for a concurrent copy's transaction: if that one commits,
# this insert returns no row; if it rolls back, this one claims the id.
CLAIM = """
INSERT INTO webhook_deliveries (platform_id, delivery_id, source, event_type, body_sha256,
                                body, headers)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (platform_id, delivery_id) DO NOTHING
RETURNING id
"""

SELECT_CLAIMED = """
SELECT id, body_sha256, events FROM webhook_deliveries
WHERE platform_id = $1 AND delivery_id = $2
"""

SET_EVENTS = """
UPDATE webhook_deliveries SET events = $2 WHERE id = $1
"""

SELECT_ONE = """
SELECT d.id, d.platform_id, p.slug AS platform, d.delivery_id, d.source, d.event_type,
       d.body, d.headers, d.events, d.received_at
FROM webhook_deliveries d JOIN platforms p ON p.id = d.platform_id
WHERE d.platform_id = $1 AND d.delivery_id = $2
"""

INSERT_REJECTION = """
INSERT INTO webhook_rejections (platform_id, delivery_id, source, outcome, status, reason,
                                event_type)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""

# Both tables' ids are time-ordered, so one keyset on id walks the merged log newest first.
SELECT_LOG = """
SELECT id, delivery_id, source, outcome, status, reason, event_type, events, received_at
FROM (
  SELECT id, delivery_id, source, 'accepted' AS outcome, 202 AS status, NULL::text AS reason,
         event_type, events, received_at
  FROM webhook_deliveries
  WHERE platform_id = $1 AND ($2::uuid IS NULL OR id < $2)
    AND ($3::text IS NULL OR $3 = 'accepted')
  ORDER BY id DESC
  LIMIT $4
) accepted
UNION ALL
SELECT id, delivery_id, source, outcome, status, reason, event_type, '{}'::bigint[], received_at
FROM (
  SELECT id, delivery_id, source, outcome, status::int AS status, reason, event_type, received_at
  FROM webhook_rejections
  WHERE platform_id = $1 AND ($2::uuid IS NULL OR id < $2)
    AND ($3::text IS NULL OR outcome = $3)
  ORDER BY id DESC
  LIMIT $4
) refused
ORDER BY id DESC
LIMIT $4
"""


async def claim_delivery(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID,
    delivery_id: str,
    source: str,
    event_type: str,
    body_sha256: bytes,
    body: bytes,
    headers: dict[str, str],
) -> UUID | None:
    """The new row's id, or None when the platform has delivered this id before."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        CLAIM, platform_id, delivery_id, source, event_type, body_sha256, body, headers
    )


async def select_claimed(
    conn: asyncpg.Connection, *, platform_id: UUID, delivery_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_CLAIMED, platform_id, delivery_id)


async def set_delivery_events(conn: asyncpg.Connection, *, row_id: UUID, events: list[int]) -> None:
    await conn.execute(SET_EVENTS, row_id, events)


async def select_delivery(
    conn: asyncpg.Connection, *, platform_id: UUID, delivery_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_ONE, platform_id, delivery_id)


async def insert_rejection(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID,
    delivery_id: str | None,
    source: str,
    outcome: str,
    status: int,
    reason: str,
    event_type: str | None,
) -> None:
    await conn.execute(
        INSERT_REJECTION,
        platform_id,
        delivery_id,
        source,
        outcome,
        status,
        reason,
        event_type,
    )


async def select_log(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID,
    outcome: str | None,
    before: UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    rows: list[Any] = await conn.fetch(SELECT_LOG, platform_id, before, outcome, limit)
    return rows
