"""SQL for ``incident_reporters``: the salt of each incident's commitment to its reporter."""

from __future__ import annotations

from uuid import UUID

import asyncpg

__all__ = ["claim_salt", "select_salt"]

# The first salt stored for an incident is its salt for good: a concurrent writer's insert
# does nothing, and both read the one kept.
CLAIM = """
WITH inserted AS (
  INSERT INTO incident_reporters (incident_id, salt, commitment) VALUES ($1, $2, $3)
  ON CONFLICT (incident_id) DO NOTHING
  RETURNING salt, commitment
)
SELECT salt, commitment FROM inserted
UNION ALL
SELECT salt, commitment FROM incident_reporters WHERE incident_id = $1
LIMIT 1
"""

SELECT = "SELECT salt, commitment FROM incident_reporters WHERE incident_id = $1"


async def claim_salt(
    conn: asyncpg.Connection, *, incident_id: UUID, salt: bytes, commitment: str
) -> tuple[bytes, str]:
    """Store ``salt`` and ``commitment`` unless the incident has them; returns those kept."""
    row = await conn.fetchrow(CLAIM, incident_id, salt, commitment)
    assert row is not None  # noqa: S101 - one of the two branches always yields the row
    return bytes(row["salt"]), str(row["commitment"])


async def select_salt(conn: asyncpg.Connection, *, incident_id: UUID) -> tuple[bytes, str] | None:
    row = await conn.fetchrow(SELECT, incident_id)
    return None if row is None else (bytes(row["salt"]), str(row["commitment"]))
