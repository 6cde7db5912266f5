"""SQL for ``decommission_policies``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

__all__ = [
    "count_name",
    "insert_policy",
    "lock_name",
    "retire_active",
    "select_active",
    "select_clause",
    "select_policies",
    "select_policy",
    "set_active",
]

COLUMNS = """
id, name, version, action, clause, conditions, description, include_derivatives, new_licence,
prohibited_uses, sunset_after_days, active, created_by, created_at, retired_at
"""

# The version is the next after every version of the name; the name's row lock (through the
# active version) and UNIQUE (name, version) keep concurrent writers apart.
INSERT = f"""
INSERT INTO decommission_policies (name, version, action, clause, conditions, description,
  include_derivatives, new_licence, prohibited_uses, sunset_after_days, created_by)
VALUES ($1, (SELECT coalesce(max(version), 0) + 1 FROM decommission_policies WHERE name = $1),
        $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING {COLUMNS}
"""

SELECT_ONE = f"SELECT {COLUMNS} FROM decommission_policies WHERE id = $1"

SELECT_MANY = f"""
SELECT {COLUMNS} FROM decommission_policies
WHERE ($1::text IS NULL OR name = $1)
  AND ($2::boolean IS NULL OR active = $2)
  AND ($3::uuid IS NULL OR id > $3)
ORDER BY id
LIMIT $4
"""

SELECT_ACTIVE = f"SELECT {COLUMNS} FROM decommission_policies WHERE active ORDER BY name"

COUNT_NAME = "SELECT count(*) FROM decommission_policies WHERE name = $1"

RETIRE_ACTIVE = """
UPDATE decommission_policies SET active = false, retired_at = now()
WHERE name = $1 AND active
RETURNING id
"""

SET_ACTIVE = f"""
UPDATE decommission_policies
SET active = $2, retired_at = CASE WHEN $2 THEN NULL ELSE now() END
WHERE id = $1
RETURNING {COLUMNS}
"""


async def count_name(conn: asyncpg.Connection, *, name: str) -> int:
    count: int = await conn.fetchval(COUNT_NAME, name)
    return count


async def insert_policy(
    conn: asyncpg.Connection, *, values: dict[str, Any], created_by: UUID
) -> asyncpg.Record:
    row = await conn.fetchrow(
        INSERT,
        values["name"],
        values["action"],
        values["clause"],
        values["conditions"],
        values["description"],
        values["include_derivatives"],
        values["new_licence"],
        values["prohibited_uses"],
        values["sunset_after_days"],
        created_by,
    )
    assert row is not None  # noqa: S101 - INSERT ... RETURNING yields the row
    return row


async def select_policy(conn: asyncpg.Connection, *, policy_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_ONE, policy_id)


async def select_policies(
    conn: asyncpg.Connection,
    *,
    name: str | None,
    active: bool | None,
    after: UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_MANY, name, active, after, limit))


async def select_active(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_ACTIVE))


async def retire_active(conn: asyncpg.Connection, *, name: str) -> list[UUID]:
    return [r["id"] for r in await conn.fetch(RETIRE_ACTIVE, name)]


async def set_active(
    conn: asyncpg.Connection, *, policy_id: UUID, active: bool
) -> asyncpg.Record | None:
    return await conn.fetchrow(SET_ACTIVE, policy_id, active)


NAME_LOCK = "SELECT pg_advisory_xact_lock(hashtext('decommission_policy:' || $1))"

SELECT_CLAUSE = "SELECT clause FROM decommission_policies WHERE id = $1"


async def lock_name(conn: asyncpg.Connection, *, name: str) -> None:
    """Serialise new versions of one policy name until the transaction ends."""
    await conn.execute(NAME_LOCK, name)


async def select_clause(conn: asyncpg.Connection, *, policy_id: UUID) -> str | None:
    """The policy's clause; None when there is no such policy."""
    clause: str | None = await conn.fetchval(SELECT_CLAUSE, policy_id)
    return clause
