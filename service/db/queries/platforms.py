"""SQL for ``platforms``."""

from __future__ import annotations

from uuid import UUID

import asyncpg

__all__ = ["insert_platform", "select_platform", "select_platforms", "update_platform"]

COLUMNS = "id, slug, name, kind, purl_type, created_at, updated_at"

INSERT = f"""
INSERT INTO platforms (slug, name, kind, purl_type) VALUES ($1, $2, $3, $4)
ON CONFLICT (slug) DO NOTHING
RETURNING {COLUMNS}
"""

SELECT_ONE = f"""
SELECT {COLUMNS} FROM platforms
WHERE ($1::uuid IS NULL OR id = $1) AND ($2::text IS NULL OR slug = $2)
"""

SELECT_MANY = f"""
SELECT {COLUMNS} FROM platforms
WHERE ($1::text IS NULL OR kind = $1)
  AND ($2::uuid IS NULL OR id = $2)
  AND ($3::uuid IS NULL OR id > $3)
  -- Words in the slug or name: a plain case-insensitive substring, never a pattern.
  AND ($5::text IS NULL OR strpos(lower(slug || ' ' || name), lower($5)) > 0)
ORDER BY id
LIMIT $4
"""

UPDATE = f"""
UPDATE platforms SET name = $2, kind = $3, purl_type = $4, updated_at = now()
WHERE id = $1
RETURNING {COLUMNS}
"""


async def insert_platform(
    conn: asyncpg.Connection, *, slug: str, name: str, kind: str, purl_type: str | None
) -> asyncpg.Record | None:
    """The new row, or None when the slug is taken."""
    return await conn.fetchrow(INSERT, slug, name, kind, purl_type)


async def select_platform(
    conn: asyncpg.Connection, *, platform_id: UUID | None = None, slug: str | None = None
) -> asyncpg.Record | None:
    if platform_id is None and slug is None:
        raise ValueError("select_platform needs an id or a slug")
    return await conn.fetchrow(SELECT_ONE, platform_id, slug)


async def select_platforms(
    conn: asyncpg.Connection,
    *,
    kind: str | None,
    only_id: UUID | None,
    after: UUID | None,
    limit: int,
    text: str | None = None,
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_MANY, kind, only_id, after, limit, text))


async def update_platform(
    conn: asyncpg.Connection, *, platform_id: UUID, name: str, kind: str, purl_type: str | None
) -> asyncpg.Record:
    row = await conn.fetchrow(UPDATE, platform_id, name, kind, purl_type)
    if row is None:
        raise LookupError(f"platform {platform_id} vanished inside its transaction")
    return row
