"""SQL for ``outbox`` and ``outbox_attempts``."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

__all__ = [
    "claim_due",
    "fail_orphaned",
    "insert_attempt",
    "insert_messages",
    "mark_delivered",
    "mark_failed",
    "mark_retry",
    "redeliver",
    "select_attempts",
    "select_attempts_of",
    "select_backlog",
    "select_message",
    "select_messages",
    "select_pending_test",
    "set_claim_lease",
]

COLUMNS = """
o.id, o.endpoint_id, o.platform_id, o.event_type, o.decommission_id, o.payload, o.status,
o.attempts, o.next_attempt_at, o.delivered_at, o.last_status, o.last_error, o.created_at,
o.updated_at
"""

INSERT = """
INSERT INTO outbox (endpoint_id, platform_id, event_type, decommission_id, payload)
SELECT r.endpoint_id, r.platform_id, $1, $2, r.payload
FROM unnest($3::uuid[], $4::uuid[], $5::jsonb[]) AS r (endpoint_id, platform_id, payload)
RETURNING id
"""

# The claim is the row lock: it lasts as long as the claiming transaction, which also marks
# the outcome, so a notice a receiver accepted is never handed to a second worker. Rows
# locked by another worker are skipped, not waited for.
CLAIM = f"""
SELECT {COLUMNS}, e.url, e.secret_sealed, e.secret,
  CASE WHEN e.previous_secret_until > now() THEN e.previous_secret_sealed END
    AS previous_secret_sealed,
  CASE WHEN e.previous_secret_until > now() THEN e.previous_secret END AS previous_secret
FROM outbox o JOIN notification_endpoints e ON e.id = o.endpoint_id
WHERE o.status = 'pending' AND o.next_attempt_at <= now() AND e.disabled_at IS NULL
  AND e.deleted_at IS NULL
ORDER BY o.next_attempt_at
LIMIT $1
FOR UPDATE OF o SKIP LOCKED
"""

# Notices a decision queued for an endpoint while it was being deleted: nobody will send
# them, so they are given up like the endpoint's other pending notices were.
FAIL_ORPHANED = """
UPDATE outbox SET status = 'failed', last_error = 'the endpoint was deleted', updated_at = now()
WHERE status = 'pending'
  AND endpoint_id IN (SELECT id FROM notification_endpoints WHERE deleted_at IS NOT NULL)
"""

MARK_DELIVERED = """
UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = now(),
  last_status = $2, last_error = NULL, updated_at = now()
WHERE id = $1
"""

MARK_RETRY = """
UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_status = $3,
  last_error = $4, updated_at = now()
WHERE id = $1
"""

MARK_FAILED = """
UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_status = $2,
  last_error = $3, updated_at = now()
WHERE id = $1
"""

INSERT_ATTEMPT = """
INSERT INTO outbox_attempts (message_id, attempt, url, started_at, status_code, latency_ms,
  error, retry_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""

SELECT_ONE = f"""
SELECT {COLUMNS} FROM outbox o WHERE o.id = $1 AND ($2::uuid IS NULL OR o.platform_id = $2)
"""

SELECT_ONE_FOR_UPDATE = f"""
SELECT {COLUMNS} FROM outbox o WHERE o.id = $1 AND ($2::uuid IS NULL OR o.platform_id = $2)
FOR UPDATE
"""

SELECT_MANY = f"""
SELECT {COLUMNS} FROM outbox o
WHERE ($1::uuid IS NULL OR o.platform_id = $1)
  AND ($2::uuid IS NULL OR o.endpoint_id = $2)
  AND ($3::uuid IS NULL OR o.decommission_id = $3)
  AND ($4::text IS NULL OR o.status = $4)
  AND ($5::uuid IS NULL OR o.id > $5)
ORDER BY o.id
LIMIT $6
"""

# A redelivery starts a fresh schedule: attempts count from zero again.
REDELIVER = """
UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = now(),
  delivered_at = NULL, updated_at = now()
WHERE id = $1
"""

SELECT_PENDING_TEST = """
SELECT id FROM outbox
WHERE endpoint_id = $1 AND event_type = 'endpoint.test' AND status = 'pending'
LIMIT 1
"""

SELECT_ATTEMPTS = """
SELECT id, message_id, attempt, url, started_at, status_code, latency_ms, error, retry_at
FROM outbox_attempts
WHERE message_id = $1 AND ($2::uuid IS NULL OR id > $2)
ORDER BY id
LIMIT $3
"""


async def insert_messages(
    conn: asyncpg.Connection,
    *,
    event_type: str,
    decommission_id: UUID | None,
    endpoint_ids: list[UUID],
    platform_ids: list[UUID],
    payloads: list[dict[str, Any]],
) -> list[UUID]:
    if not endpoint_ids:
        return []
    rows = await conn.fetch(
        INSERT, event_type, decommission_id, endpoint_ids, platform_ids, payloads
    )
    return [r["id"] for r in rows]


async def claim_due(conn: asyncpg.Connection, *, limit: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(CLAIM, limit))


async def mark_delivered(conn: asyncpg.Connection, *, message_id: UUID, status: int) -> None:
    await conn.execute(MARK_DELIVERED, message_id, status)


async def mark_retry(
    conn: asyncpg.Connection,
    *,
    message_id: UUID,
    next_attempt_at: datetime,
    status: int | None,
    error: str | None,
) -> None:
    await conn.execute(MARK_RETRY, message_id, next_attempt_at, status, error)


async def mark_failed(
    conn: asyncpg.Connection, *, message_id: UUID, status: int | None, error: str | None
) -> None:
    await conn.execute(MARK_FAILED, message_id, status, error)


async def insert_attempt(
    conn: asyncpg.Connection,
    *,
    message_id: UUID,
    attempt: int,
    url: str,
    started_at: datetime,
    status_code: int | None,
    latency_ms: float,
    error: str | None,
    retry_at: datetime | None,
) -> None:
    await conn.execute(
        INSERT_ATTEMPT,
        message_id,
        attempt,
        url,
        started_at,
        status_code,
        latency_ms,
        error,
        retry_at,
    )


async def select_message(
    conn: asyncpg.Connection,
    *,
    message_id: UUID,
    platform_id: UUID | None,
    for_update: bool = False,
) -> asyncpg.Record | None:
    sql = SELECT_ONE_FOR_UPDATE if for_update else SELECT_ONE
    return await conn.fetchrow(sql, message_id, platform_id)


async def select_messages(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID | None,
    endpoint_id: UUID | None,
    decommission_id: UUID | None,
    status: str | None,
    after: UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            SELECT_MANY, platform_id, endpoint_id, decommission_id, status, after, limit
        )
    )


async def redeliver(conn: asyncpg.Connection, *, message_id: UUID) -> None:
    await conn.execute(REDELIVER, message_id)


async def select_attempts(
    conn: asyncpg.Connection, *, message_id: UUID, after: UUID | None, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_ATTEMPTS, message_id, after, limit))


#: The first attempts of several notifications at once, each one's in id order.
SELECT_ATTEMPTS_OF = """
SELECT id, message_id, attempt, url, started_at, status_code, latency_ms, error, retry_at
FROM (
  SELECT id, message_id, attempt, url, started_at, status_code, latency_ms, error, retry_at,
         row_number() OVER (PARTITION BY message_id ORDER BY id) AS n
  FROM outbox_attempts
  WHERE message_id = ANY($1::uuid[])
) AS a
WHERE n <= $2
ORDER BY message_id, id
"""


async def select_attempts_of(
    conn: asyncpg.Connection, *, message_ids: list[UUID], limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_ATTEMPTS_OF, message_ids, limit))


#: Notifications waiting for delivery (the partial index ``outbox_due`` covers them).
BACKLOG = """
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest
FROM outbox WHERE status = 'pending'
"""

SET_CLAIM_LEASE = "SELECT set_config('idle_in_transaction_session_timeout', $1, true)"


async def select_backlog(conn: asyncpg.Connection) -> tuple[int, float]:
    """Notices waiting, and seconds since the oldest of them was queued."""
    row = await conn.fetchrow(BACKLOG)
    assert row is not None  # noqa: S101 - an aggregate without GROUP BY yields a row
    return int(row["pending"]), float(row["oldest"])


async def set_claim_lease(conn: asyncpg.Connection, *, lease_ms: int) -> None:
    """Bound how long the current transaction (a claim) may sit idle before it is ended."""
    await conn.execute(SET_CLAIM_LEASE, str(lease_ms))


async def select_pending_test(conn: asyncpg.Connection, *, endpoint_id: UUID) -> UUID | None:
    found: UUID | None = await conn.fetchval(SELECT_PENDING_TEST, endpoint_id)
    return found


async def fail_orphaned(conn: asyncpg.Connection) -> None:
    await conn.execute(FAIL_ORPHANED)
