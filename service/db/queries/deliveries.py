"""SQL for ``webhook_deliveries`` and ``webhook_rejections`` (the delivery log)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from service.db.pool import json_encode
from service.db.queries.hostings import COLUMNS as HOSTING_COLUMNS
from service.db.queries.hostings import FROM as HOSTINGS_FROM

__all__ = [
    "claim_delivery",
    "claim_with_hostings",
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

# A group-commit batch's first statement: lock the hostings its deliveries name (each
# delivery ``n`` names one or more, by the name the platform hosts it under, in any case),
# in (platform, name) order as every path that locks several does, and claim the id of
# each delivery all of whose hostings exist, in (platform, delivery id) order, so that two
# batches holding copies of the same deliveries wait on each other in one order. One row
# per (delivery, hosting found): the hosting, the name it was given as, and the delivery's
# new row id (NULL when it was not claimed: a hosting is missing, or the id was delivered
# before).
CLAIM_WITH_HOSTINGS = f"""
WITH names AS (
  SELECT n, platform_id, name FROM unnest($1::int[], $2::uuid[], $3::text[])
    AS x(n, platform_id, name)
), locked AS (
  SELECT {HOSTING_COLUMNS.strip()}
  {HOSTINGS_FROM.strip()}
  WHERE (h.platform_id, lower(h.name)) IN (SELECT platform_id, lower(name) FROM names)
  ORDER BY h.platform_id, h.name
  FOR UPDATE OF h
), d AS (
  SELECT n, platform_id, delivery_id, source, event_type, body_sha256, body, headers
  FROM unnest($4::int[], $5::uuid[], $6::text[], $7::text[], $8::text[],
                       $9::bytea[], $10::bytea[], $11::text[])
    AS d(n, platform_id, delivery_id, source, event_type, body_sha256, body, headers)
), claim AS (
  INSERT INTO webhook_deliveries (platform_id, delivery_id, source, event_type, body_sha256,
                                  body, headers)
  SELECT platform_id, delivery_id, source, event_type, body_sha256, body, headers::jsonb
  FROM d
  WHERE NOT EXISTS (
    SELECT 1 FROM names x
    WHERE x.n = d.n AND NOT EXISTS (
      SELECT 1 FROM locked l
      WHERE l.platform_id = x.platform_id AND lower(l.name) = lower(x.name)))
  ORDER BY platform_id, delivery_id
  ON CONFLICT (platform_id, delivery_id) DO NOTHING
  RETURNING id, platform_id, delivery_id
)
SELECT x.n AS member, x.name AS given, c.id AS row_id, l.id, l.model_id, l.model, l.name,
       l.platform_id, l.platform, l.external_id, l.url, l.revision, l.licence, l.gated,
       l.disabled, l.status, l.downloads, l.downloads_at, l.documentation, l.created_at,
       l.updated_at
FROM names x
JOIN locked l ON l.platform_id = x.platform_id AND lower(l.name) = lower(x.name)
LEFT JOIN (
  SELECT d.n, claim.id FROM claim
  JOIN d ON d.platform_id = claim.platform_id AND d.delivery_id = claim.delivery_id
) c ON c.n = x.n
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


async def claim_with_hostings(
    conn: asyncpg.Connection,
    *,
    names: list[tuple[int, UUID, str]],
    claims: list[tuple[int, UUID, str, str, str, bytes, bytes, dict[str, str]]],
) -> list[asyncpg.Record]:
    """Lock the hostings named, each ``(n, platform_id, name)``, and claim each delivery
    ``(n, platform_id, delivery_id, source, event_type, body_sha256, body, headers)`` whose
    hostings all exist (``CLAIM_WITH_HOSTINGS``): rows of ``member``, ``given``, ``row_id``
    and the hosting's columns."""
    name_columns = [list(column) for column in zip(*names, strict=True)]
    claim_columns = [list(column) for column in zip(*claims, strict=True)]
    claim_columns[7] = [json_encode(headers) for headers in claim_columns[7]]
    return list(await conn.fetch(CLAIM_WITH_HOSTINGS, *name_columns, *claim_columns))


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
