"""SQL for ``alembic_version``: which revision a database is migrated to."""

from __future__ import annotations

import asyncpg

__all__ = ["select_revisions"]

SELECT_REVISIONS = """
SELECT version_num FROM alembic_version ORDER BY version_num
"""

HAS_TABLE = """
SELECT to_regclass('alembic_version') IS NOT NULL
"""


async def select_revisions(conn: asyncpg.Connection) -> list[str] | None:
    """The revisions the database is at; None when it was never migrated."""
    if not await conn.fetchval(HAS_TABLE):
        return None
    return [row["version_num"] for row in await conn.fetch(SELECT_REVISIONS)]
