"""SQL for ``principals`` and ``api_keys``."""

from __future__ import annotations

from uuid import UUID

import asyncpg

__all__ = [
    "count_admin_keys",
    "insert_key",
    "insert_principal",
    "lock_first_admin",
    "revoke_key",
    "select_key",
    "select_key_for_auth",
    "select_keys",
    "select_principal_names",
    "select_principal_origin",
    "touch_key",
]

INSERT_PRINCIPAL = """
INSERT INTO principals (name, role, platform_id, created_by) VALUES ($1, $2, $3, $4)
RETURNING id
"""

INSERT_KEY = """
INSERT INTO api_keys (principal_id, lookup, secret_hash) VALUES ($1, $2, $3) RETURNING id
"""

KEY_COLUMNS = """
k.id, k.principal_id, p.name, p.role, pl.slug AS platform, k.created_at, k.revoked_at,
k.last_used_at
"""

SELECT_KEY = f"""
SELECT {KEY_COLUMNS}
FROM api_keys k JOIN principals p ON p.id = k.principal_id
LEFT JOIN platforms pl ON pl.id = p.platform_id
WHERE k.id = $1
"""

SELECT_KEYS = f"""
SELECT {KEY_COLUMNS}
FROM api_keys k JOIN principals p ON p.id = k.principal_id
LEFT JOIN platforms pl ON pl.id = p.platform_id
WHERE ($1::text IS NULL OR p.role = $1)
  AND ($2::boolean OR k.revoked_at IS NULL)
  AND ($3::uuid IS NULL OR k.id > $3)
ORDER BY k.id
LIMIT $4
"""

SELECT_FOR_AUTH = """
SELECT k.id AS key_id, k.secret_hash, k.last_used_at, p.id, p.name, p.role, p.platform_id
FROM api_keys k JOIN principals p ON p.id = k.principal_id
WHERE k.lookup = $1 AND k.revoked_at IS NULL
"""

# Recording every use would turn each read into a write; a minute's precision is enough.
TOUCH = """
UPDATE api_keys SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
"""

REVOKE = """
UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id
"""


async def insert_principal(
    conn: asyncpg.Connection,
    *,
    name: str,
    role: str,
    platform_id: UUID | None,
    created_by: UUID | None,
) -> UUID:
    return await conn.fetchval(INSERT_PRINCIPAL, name, role, platform_id, created_by)  # type: ignore[no-any-return]


async def insert_key(
    conn: asyncpg.Connection, *, principal_id: UUID, lookup: str, secret_hash: bytes
) -> UUID:
    return await conn.fetchval(INSERT_KEY, principal_id, lookup, secret_hash)  # type: ignore[no-any-return]


async def select_key(conn: asyncpg.Connection, *, key_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_KEY, key_id)


async def select_keys(
    conn: asyncpg.Connection,
    *,
    role: str | None,
    include_revoked: bool,
    after: UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_KEYS, role, include_revoked, after, limit))


async def select_key_for_auth(conn: asyncpg.Connection, *, lookup: str) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_FOR_AUTH, lookup)


async def touch_key(conn: asyncpg.Connection, *, key_id: UUID) -> None:
    await conn.execute(TOUCH, key_id)


async def revoke_key(conn: asyncpg.Connection, *, key_id: UUID) -> bool:
    return await conn.fetchval(REVOKE, key_id) is not None


COUNT_ADMIN_KEYS = """
SELECT count(*) FROM api_keys k JOIN principals p ON p.id = k.principal_id
WHERE p.role = 'admin'
"""


async def count_admin_keys(conn: asyncpg.Connection) -> int:
    """Admin keys ever issued, revoked or not: the first-run key is made only once."""
    return int(await conn.fetchval(COUNT_ADMIN_KEYS))


FIRST_ADMIN_LOCK = "SELECT pg_advisory_xact_lock(hashtext('risk-registry:first-admin'))"


async def lock_first_admin(conn: asyncpg.Connection) -> None:
    """Serialise first-admin checks across processes until the transaction ends."""
    await conn.execute(FIRST_ADMIN_LOCK)


SELECT_PRINCIPAL_NAMES = "SELECT id, name, role FROM principals WHERE id = ANY($1::uuid[])"


async def select_principal_names(
    conn: asyncpg.Connection, *, principal_ids: list[UUID]
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_PRINCIPAL_NAMES, principal_ids))


# Every principal made by ``$1``, directly or through principals it made, however deep.
SELECT_PRINCIPAL_ORIGIN = """
WITH RECURSIVE made (id) AS (
  SELECT id FROM principals WHERE created_by = $1
  UNION
  SELECT p.id FROM principals p JOIN made m ON p.created_by = m.id
)
SELECT p.created_at, EXISTS (SELECT 1 FROM made WHERE made.id = p.id) AS made_by
FROM principals p WHERE p.id = $2
"""


async def select_principal_origin(
    conn: asyncpg.Connection, *, principal_id: UUID, maker_id: UUID | None
) -> asyncpg.Record | None:
    """When ``principal_id`` was created, and whether ``maker_id`` made it (at any depth)."""
    return await conn.fetchrow(SELECT_PRINCIPAL_ORIGIN, maker_id, principal_id)
