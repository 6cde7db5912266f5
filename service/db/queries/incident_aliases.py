"""SQL for ``incident_aliases``: an incident's identifiers in other incident databases."""

from __future__ import annotations

from uuid import UUID

import asyncpg

__all__ = ["insert_aliases", "select_incident_by_alias"]

#: Adds the aliases not yet taken; returns each alias given, whether it was added and the
#: incident that held it before (null when added, or when a concurrent transaction took it
#: after this statement's snapshot: a clash), so the caller tells a repeat from a clash
#: without a second round trip.
INSERT = """
WITH given AS (
  SELECT DISTINCT s.scheme, s.value
  FROM unnest($2::text[], $3::text[]) AS s (scheme, value)
), added AS (
  INSERT INTO incident_aliases (incident_id, scheme, value)
  SELECT $1, scheme, value FROM given
  ON CONFLICT (scheme, value) DO NOTHING
  RETURNING scheme, value
)
SELECT g.scheme, g.value, (ad.scheme IS NOT NULL) AS added,
       a.incident_id AS holder
FROM given g
LEFT JOIN added ad ON ad.scheme = g.scheme AND ad.value = g.value
LEFT JOIN incident_aliases a ON a.scheme = g.scheme AND a.value = g.value
ORDER BY g.scheme, g.value
"""

SELECT_BY_ALIAS = """
SELECT incident_id FROM incident_aliases WHERE scheme = $1 AND value = $2
"""


async def insert_aliases(
    conn: asyncpg.Connection, *, incident_id: UUID, aliases: list[tuple[str, str]]
) -> list[asyncpg.Record]:
    """Add ``(scheme, value)`` pairs to an incident; one row per distinct pair given, with
    ``added`` and the ``holder`` it had before."""
    return list(
        await conn.fetch(
            INSERT, incident_id, [scheme for scheme, _ in aliases], [v for _, v in aliases]
        )
    )


async def select_incident_by_alias(
    conn: asyncpg.Connection, *, scheme: str, value: str
) -> UUID | None:
    incident_id: UUID | None = await conn.fetchval(SELECT_BY_ALIAS, scheme, value)
    return incident_id
