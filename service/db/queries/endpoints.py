"""SQL for ``notification_endpoints``."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import asyncpg

__all__ = [
    "count_for_platform",
    "delete_endpoint",
    "disable_endpoint",
    "insert_endpoint",
    "select_endpoint",
    "select_endpoints",
    "select_secret",
    "select_subscribed",
    "update_endpoint",
    "update_secret",
]

COLUMNS = """
e.id, e.platform_id, p.slug AS platform, e.url, e.event_types, e.description, e.disabled_at,
e.disabled_reason, e.created_at, e.updated_at,
CASE WHEN e.previous_secret_until > now() THEN e.previous_secret_until END
  AS previous_secret_until
"""

# Deleted endpoints are kept for their notices' sake but are no longer anyone's endpoint.
FROM = """
FROM notification_endpoints e JOIN platforms p ON p.id = e.platform_id
WHERE e.deleted_at IS NULL
"""

INSERT = """
INSERT INTO notification_endpoints
  (platform_id, url, event_types, description, secret_sealed, created_by)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id
"""

SELECT_ONE = f"""
SELECT {COLUMNS} {FROM} AND e.id = $1 AND ($2::uuid IS NULL OR e.platform_id = $2)
"""

SELECT_ONE_FOR_UPDATE = f"""
SELECT {COLUMNS} {FROM} AND e.id = $1 AND ($2::uuid IS NULL OR e.platform_id = $2)
FOR UPDATE OF e
"""

SELECT_MANY = f"""
SELECT {COLUMNS} {FROM}
  AND ($1::uuid IS NULL OR e.platform_id = $1)
  AND ($2::uuid IS NULL OR e.id > $2)
ORDER BY e.id
LIMIT $3
"""

# Every endpoint of the platforms, enabled or not, that takes the event type: a notice for
# a disabled endpoint waits in the outbox until the endpoint is enabled again.
SELECT_SUBSCRIBED = """
SELECT id, platform_id FROM notification_endpoints
WHERE platform_id = ANY ($1::uuid[]) AND $2 = ANY (event_types) AND deleted_at IS NULL
ORDER BY id
"""

UPDATE = """
UPDATE notification_endpoints
SET url = $2, event_types = $3, description = $4, disabled_at = $5, disabled_reason = $6,
    updated_at = now()
WHERE id = $1
"""

# The outgoing secret ($4, sealed) keeps signing beside the new one ($2, sealed) for the
# interval $3 (if any). Only sealed values are written; the plaintext columns are emptied.
ROTATE = """
UPDATE notification_endpoints
SET previous_secret_sealed = CASE WHEN $3::interval > interval '0' THEN $4::bytea END,
    previous_secret_until = CASE WHEN $3::interval > interval '0' THEN now() + $3 END,
    previous_secret = NULL,
    secret_sealed = $2, secret = NULL, updated_at = now()
WHERE id = $1 AND deleted_at IS NULL
"""

# The endpoint's current secret, sealed or (a row from before sealing) plain.
SELECT_SIGNING_KEY = """
SELECT secret_sealed, secret FROM notification_endpoints WHERE id = $1
"""

# The endpoint's notices still waiting are given up first (a worker sending one is waited
# for, the order a worker takes its locks in), then the endpoint is marked deleted.
FAIL_PENDING = """
UPDATE outbox SET status = 'failed', last_error = 'the endpoint was deleted', updated_at = now()
WHERE endpoint_id = $1 AND status = 'pending'
"""

DELETE = """
UPDATE notification_endpoints SET deleted_at = now(), updated_at = now()
WHERE id = $1 AND deleted_at IS NULL
"""

# The platform row is locked (without blocking rows that refer to it) so that two
# registrations at once cannot both pass the per-platform limit.
COUNT_FOR_PLATFORM = """
WITH locked AS (SELECT id FROM platforms WHERE id = $1 FOR NO KEY UPDATE)
SELECT count(*) FROM notification_endpoints
WHERE platform_id = (SELECT id FROM locked) AND deleted_at IS NULL
"""

DISABLE = """
UPDATE notification_endpoints SET disabled_at = now(), disabled_reason = $2, updated_at = now()
WHERE id = $1 AND disabled_at IS NULL
"""


async def insert_endpoint(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID,
    url: str,
    event_types: list[str],
    description: str,
    sealed: bytes,
    created_by: UUID | None,
) -> UUID:
    endpoint_id: UUID = await conn.fetchval(
        INSERT, platform_id, url, event_types, description, sealed, created_by
    )
    return endpoint_id


async def select_endpoint(
    conn: asyncpg.Connection,
    *,
    endpoint_id: UUID,
    platform_id: UUID | None,
    for_update: bool = False,
) -> asyncpg.Record | None:
    sql = SELECT_ONE_FOR_UPDATE if for_update else SELECT_ONE
    return await conn.fetchrow(sql, endpoint_id, platform_id)


async def select_endpoints(
    conn: asyncpg.Connection, *, platform_id: UUID | None, after: UUID | None, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_MANY, platform_id, after, limit))


async def select_subscribed(
    conn: asyncpg.Connection, *, platform_ids: list[UUID], event_type: str
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_SUBSCRIBED, platform_ids, event_type))


async def update_endpoint(
    conn: asyncpg.Connection,
    *,
    endpoint_id: UUID,
    url: str,
    event_types: list[str],
    description: str,
    disabled_at: object,
    disabled_reason: str | None,
) -> None:
    await conn.execute(
        UPDATE, endpoint_id, url, event_types, description, disabled_at, disabled_reason
    )


async def disable_endpoint(conn: asyncpg.Connection, *, endpoint_id: UUID, reason: str) -> bool:
    """Disable an enabled endpoint; False when it already was disabled."""
    status: str = await conn.execute(DISABLE, endpoint_id, reason)
    return status.endswith(" 1")


async def select_secret(conn: asyncpg.Connection, *, endpoint_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_SIGNING_KEY, endpoint_id)


async def update_secret(
    conn: asyncpg.Connection,
    *,
    endpoint_id: UUID,
    sealed: bytes,
    previous_sealed: bytes,
    overlap: timedelta,
) -> None:
    await conn.execute(ROTATE, endpoint_id, sealed, overlap, previous_sealed)


async def delete_endpoint(conn: asyncpg.Connection, *, endpoint_id: UUID) -> bool:
    """Fail an endpoint's pending notices and mark it deleted; False if it already was."""
    await conn.execute(FAIL_PENDING, endpoint_id)
    status: str = await conn.execute(DELETE, endpoint_id)
    return status.endswith(" 1")


async def count_for_platform(conn: asyncpg.Connection, *, platform_id: UUID) -> int:
    """The platform's endpoints (not deleted), with its row locked until the transaction ends."""
    count: int = await conn.fetchval(COUNT_FOR_PLATFORM, platform_id)
    return count
