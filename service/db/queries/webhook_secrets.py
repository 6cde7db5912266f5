"""SQL for ``webhook_secrets``."""

from __future__ import annotations

from uuid import UUID

import asyncpg

__all__ = [
    "insert_secret",
    "retire_secret",
    "select_secret",
    "select_secrets",
    "select_signing_context",
]

COLUMNS = """
s.id, s.platform_id, p.slug AS platform, s.hint, s.created_at, s.retired_at
"""

INSERT = """
INSERT INTO webhook_secrets (platform_id, sealed, hint) VALUES ($1, $2, $3) RETURNING id
"""

SELECT_ONE = f"""
SELECT {COLUMNS}
FROM webhook_secrets s JOIN platforms p ON p.id = s.platform_id
WHERE s.id = $1 AND s.platform_id = $2
"""

SELECT_MANY = f"""
SELECT {COLUMNS}
FROM webhook_secrets s JOIN platforms p ON p.id = s.platform_id
WHERE s.platform_id = $1 AND ($2::boolean OR s.retired_at IS NULL)
ORDER BY s.id
"""

RETIRE = """
UPDATE webhook_secrets SET retired_at = now()
WHERE id = $1 AND platform_id = $2 AND retired_at IS NULL
RETURNING id
"""

# One round trip per delivery: the platform and every secret that verifies for it.
SIGNING_CONTEXT = """
SELECT p.id,
       coalesce(array_agg(s.sealed ORDER BY s.id DESC) FILTER (WHERE s.id IS NOT NULL),
                '{}') AS sealed,
       -- A row written before secrets were sealed, until it is sealed: its plaintext.
       coalesce(array_agg(s.secret ORDER BY s.id DESC) FILTER (WHERE s.id IS NOT NULL),
                '{}') AS plain
FROM platforms p
LEFT JOIN webhook_secrets s ON s.platform_id = p.id AND s.retired_at IS NULL
WHERE p.slug = $1
GROUP BY p.id
"""


async def insert_secret(
    conn: asyncpg.Connection, *, platform_id: UUID, sealed: bytes, hint: str
) -> UUID:
    return await conn.fetchval(INSERT, platform_id, sealed, hint)  # type: ignore[no-any-return]


async def select_secret(
    conn: asyncpg.Connection, *, secret_id: UUID, platform_id: UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_ONE, secret_id, platform_id)


async def select_secrets(
    conn: asyncpg.Connection, *, platform_id: UUID, include_retired: bool
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_MANY, platform_id, include_retired))


async def retire_secret(conn: asyncpg.Connection, *, secret_id: UUID, platform_id: UUID) -> bool:
    return await conn.fetchval(RETIRE, secret_id, platform_id) is not None


async def select_signing_context(
    conn: asyncpg.Connection, *, slug: str
) -> tuple[UUID, list[tuple[bytes | None, str | None]]] | None:
    """The platform's id and its active secrets, newest first, each as (sealed, plaintext)
    with one of the two set; None for no such platform."""
    row = await conn.fetchrow(SIGNING_CONTEXT, slug)
    if row is None:
        return None
    return row["id"], list(zip(row["sealed"], row["plain"], strict=True))
