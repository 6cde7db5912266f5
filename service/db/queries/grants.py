"""SQL for ``audit_grants``: which auditor may see which model's components, and when."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

__all__ = [
    "insert_grant",
    "revoke_grant",
    "select_active_grants",
    "select_active_model_ids",
    "select_grant",
    "select_grants",
    "select_principal_role",
]

COLUMNS = """
g.id, g.auditor_id, g.model_id, m.name AS model, g.components, g.valid_from, g.valid_until,
g.granted_by, g.revoked_at, g.created_at
"""

INSERT = """
INSERT INTO audit_grants (auditor_id, model_id, components, valid_from, valid_until, granted_by)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id
"""

SELECT_ONE = f"""
SELECT {COLUMNS} FROM audit_grants g JOIN models m ON m.id = g.model_id
WHERE g.id = $1 AND ($2::uuid IS NULL OR g.auditor_id = $2)
"""

SELECT_MANY = f"""
SELECT {COLUMNS} FROM audit_grants g JOIN models m ON m.id = g.model_id
WHERE ($1::uuid IS NULL OR g.auditor_id = $1)
  AND ($2::uuid IS NULL OR g.model_id = $2)
  AND ($3::timestamptz IS NULL
       OR (g.revoked_at IS NULL AND g.valid_from <= $3 AND g.valid_until > $3))
  AND ($4::uuid IS NULL OR g.id > $4)
ORDER BY g.id
LIMIT $5
"""

# A grant is active from valid_from (inclusive) to valid_until (exclusive), unless revoked.
SELECT_ACTIVE = f"""
SELECT {COLUMNS} FROM audit_grants g JOIN models m ON m.id = g.model_id
WHERE g.auditor_id = $1 AND g.model_id = $2
  AND g.revoked_at IS NULL AND g.valid_from <= $3 AND g.valid_until > $3
ORDER BY g.id
"""

SELECT_ACTIVE_MODEL_IDS = """
SELECT DISTINCT model_id FROM audit_grants
WHERE auditor_id = $1 AND revoked_at IS NULL AND valid_from <= $2 AND valid_until > $2
"""

REVOKE = """
UPDATE audit_grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL
"""

SELECT_PRINCIPAL_ROLE = """
SELECT role FROM principals WHERE id = $1
"""


async def insert_grant(
    conn: asyncpg.Connection,
    *,
    auditor_id: UUID,
    model_id: UUID,
    components: list[str],
    valid_from: datetime,
    valid_until: datetime,
    granted_by: UUID,
) -> UUID:
    return await conn.fetchval(  # type: ignore[no-any-return]
        INSERT, auditor_id, model_id, components, valid_from, valid_until, granted_by
    )


async def select_grant(
    conn: asyncpg.Connection, *, grant_id: UUID, auditor_id: UUID | None = None
) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_ONE, grant_id, auditor_id)


async def select_grants(
    conn: asyncpg.Connection,
    *,
    auditor_id: UUID | None,
    model_id: UUID | None,
    active_at: datetime | None,
    after: UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_MANY, auditor_id, model_id, active_at, after, limit))


async def select_active_grants(
    conn: asyncpg.Connection, *, auditor_id: UUID, model_id: UUID, at: datetime
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_ACTIVE, auditor_id, model_id, at))


async def select_active_model_ids(
    conn: asyncpg.Connection, *, auditor_id: UUID, at: datetime
) -> list[UUID]:
    return [row["model_id"] for row in await conn.fetch(SELECT_ACTIVE_MODEL_IDS, auditor_id, at)]


async def revoke_grant(conn: asyncpg.Connection, *, grant_id: UUID, at: datetime) -> bool:
    return str(await conn.execute(REVOKE, grant_id, at)).endswith(" 1")


async def select_principal_role(conn: asyncpg.Connection, *, principal_id: UUID) -> str | None:
    return await conn.fetchval(SELECT_PRINCIPAL_ROLE, principal_id)  # type: ignore[no-any-return]
