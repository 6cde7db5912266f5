"""SQL for what a notice tells a platform beyond the decision itself: the platform's own
names for its hostings (``hostings``), the successor's name (``models``) and the decision's
sign-off as the ledger recorded it (``events``, ``principals``)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

__all__ = ["select_approvals", "select_model_name", "select_notice_hostings"]

SELECT_NOTICE_HOSTINGS = """
SELECT h.id, h.name, h.external_id, h.url FROM hostings h WHERE h.id = ANY($1::uuid[])
"""

SELECT_APPROVALS = """
SELECT e.seq, split_part(e.kind, '.', 2) AS step, e.actor_id AS principal_id,
       p.name AS principal, e.occurred_at AS at
FROM events e LEFT JOIN principals p ON p.id = e.actor_id
WHERE e.subject_id = $1 AND e.subject_type = 'decommission'
  AND e.kind IN ('decommission.proposed', 'decommission.approved')
ORDER BY e.seq
"""

SELECT_MODEL_NAME = "SELECT name FROM models WHERE id = $1"


async def select_notice_hostings(
    conn: asyncpg.Connection, *, hosting_ids: list[UUID]
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_NOTICE_HOSTINGS, hosting_ids))


async def select_approvals(conn: asyncpg.Connection, *, decision_id: UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_APPROVALS, decision_id))


async def select_model_name(conn: asyncpg.Connection, *, model_id: UUID) -> str | None:
    name: str | None = await conn.fetchval(SELECT_MODEL_NAME, model_id)
    return name
