"""SQL for ``audits`` and their parts: models, findings, evaluations, artefacts."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

__all__ = [
    "complete_audit",
    "insert_artefacts",
    "insert_audit",
    "insert_evaluations",
    "insert_finding",
    "link_models",
    "select_audit",
    "select_audits",
    "select_existing_findings",
    "select_finding",
    "update_finding",
]

COLUMNS = """
a.id, a.auditor_id, a.method, a.components, a.summary,
coalesce((SELECT array_agg(m.id ORDER BY m.name) FROM audit_models am
          JOIN models m ON m.id = am.model_id WHERE am.audit_id = a.id), '{}') AS model_ids,
coalesce((SELECT array_agg(m.name ORDER BY m.name) FROM audit_models am
          JOIN models m ON m.id = am.model_id WHERE am.audit_id = a.id), '{}') AS models,
a.started_at, a.completed_at, a.outcome,
coalesce((SELECT jsonb_agg(jsonb_build_object(
            'id', f.id, 'audit_id', f.audit_id, 'title', f.title, 'description', f.description,
            'severity', f.severity, 'status', f.status, 'incident_id', f.incident_id,
            'created_at', f.created_at, 'updated_at', f.updated_at) ORDER BY f.id)
          FROM audit_findings f WHERE f.audit_id = a.id), '[]') AS findings,
coalesce((SELECT jsonb_agg(jsonb_build_object(
            'id', e.id, 'metric', e.metric, 'value', e.value, 'dataset', e.dataset,
            'method', e.method) ORDER BY e.id)
          FROM audit_evaluations e WHERE e.audit_id = a.id), '[]') AS evaluations,
coalesce((SELECT jsonb_agg(jsonb_build_object('id', r.id, 'url', r.url, 'sha256', r.sha256)
                           ORDER BY r.id)
          FROM audit_artefacts r WHERE r.audit_id = a.id), '[]') AS artefacts,
coalesce((SELECT jsonb_agg(jsonb_build_object(
            'seq', ev.seq, 'field', ev.payload->>'field', 'correction', ev.payload->>'correction',
            'reason', ev.payload->>'reason', 'actor_id', ev.actor_id,
            'recorded_at', ev.recorded_at) ORDER BY ev.seq)
          FROM events ev WHERE ev.subject_id = a.id AND ev.kind = 'audit.corrected'), '[]')
  AS corrections,
a.created_at
"""

INSERT = """
INSERT INTO audits (auditor_id, method, components, summary, started_at)
VALUES ($1, $2, $3, $4, $5)
RETURNING id
"""

LINK_MODELS = """
INSERT INTO audit_models (audit_id, model_id) SELECT $1, unnest($2::uuid[])
"""

INSERT_FINDING = """
INSERT INTO audit_findings (audit_id, title, description, severity)
VALUES ($1, $2, $3, $4)
RETURNING id
"""

INSERT_EVALUATIONS = """
INSERT INTO audit_evaluations (audit_id, metric, value, dataset, method)
SELECT $1, * FROM unnest($2::text[], $3::double precision[], $4::text[], $5::text[])
"""

INSERT_ARTEFACTS = """
INSERT INTO audit_artefacts (audit_id, url, sha256)
SELECT $1, * FROM unnest($2::text[], $3::text[])
"""

COMPLETE = """
UPDATE audits SET completed_at = $2, outcome = $3, summary = $4
WHERE id = $1 AND completed_at IS NULL
"""

SELECT_ONE = f"""
SELECT {COLUMNS} FROM audits a WHERE a.id = $1
"""

SELECT_ONE_FOR_UPDATE = f"""
SELECT {COLUMNS} FROM audits a WHERE a.id = $1 FOR UPDATE OF a
"""

SELECT_MANY = f"""
SELECT {COLUMNS} FROM audits a
WHERE ($1::uuid IS NULL OR a.auditor_id = $1)
  AND ($2::uuid IS NULL
       OR EXISTS (SELECT 1 FROM audit_models am WHERE am.audit_id = a.id AND am.model_id = $2))
  AND ($3::uuid IS NULL OR a.id > $3)
ORDER BY a.id
LIMIT $4
"""

FINDING_COLUMNS = """
id, audit_id, title, description, severity, status, incident_id, created_at, updated_at
"""

SELECT_FINDING = f"""
SELECT {FINDING_COLUMNS} FROM audit_findings WHERE id = $1 AND audit_id = $2 FOR UPDATE
"""

UPDATE_FINDING = f"""
UPDATE audit_findings SET status = $2, incident_id = $3, updated_at = now()
WHERE id = $1
RETURNING {FINDING_COLUMNS}
"""


async def insert_audit(
    conn: asyncpg.Connection,
    *,
    auditor_id: UUID,
    method: str,
    components: list[str],
    summary: str,
    started_at: datetime,
) -> UUID:
    return await conn.fetchval(  # type: ignore[no-any-return]
        INSERT, auditor_id, method, components, summary, started_at
    )


async def link_models(conn: asyncpg.Connection, *, audit_id: UUID, model_ids: list[UUID]) -> None:
    await conn.execute(LINK_MODELS, audit_id, model_ids)


async def insert_finding(
    conn: asyncpg.Connection, *, audit_id: UUID, title: str, description: str, severity: str
) -> UUID:
    return await conn.fetchval(  # type: ignore[no-any-return]
        INSERT_FINDING, audit_id, title, description, severity
    )


async def insert_evaluations(
    conn: asyncpg.Connection,
    *,
    audit_id: UUID,
    metrics: list[str],
    values: list[float],
    datasets: list[str | None],
    methods: list[str | None],
) -> None:
    await conn.execute(INSERT_EVALUATIONS, audit_id, metrics, values, datasets, methods)


async def insert_artefacts(
    conn: asyncpg.Connection, *, audit_id: UUID, urls: list[str], hashes: list[str]
) -> None:
    await conn.execute(INSERT_ARTEFACTS, audit_id, urls, hashes)


async def complete_audit(
    conn: asyncpg.Connection, *, audit_id: UUID, completed_at: datetime, outcome: str, summary: str
) -> bool:
    return str(await conn.execute(COMPLETE, audit_id, completed_at, outcome, summary)).endswith(
        " 1"
    )


async def select_audit(
    conn: asyncpg.Connection, *, audit_id: UUID, for_update: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_ONE_FOR_UPDATE if for_update else SELECT_ONE, audit_id)


async def select_audits(
    conn: asyncpg.Connection,
    *,
    auditor_id: UUID | None,
    model_id: UUID | None,
    after: UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_MANY, auditor_id, model_id, after, limit))


async def select_finding(
    conn: asyncpg.Connection, *, finding_id: UUID, audit_id: UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_FINDING, finding_id, audit_id)


async def update_finding(
    conn: asyncpg.Connection, *, finding_id: UUID, status: str, incident_id: UUID | None
) -> asyncpg.Record:
    row = await conn.fetchrow(UPDATE_FINDING, finding_id, status, incident_id)
    if row is None:
        raise LookupError(f"no finding {finding_id}")
    return row


EXISTING_FINDINGS = "SELECT array_agg(id) FROM audit_findings WHERE id = ANY ($1::uuid[])"


async def select_existing_findings(conn: asyncpg.Connection, *, ids: list[UUID]) -> set[UUID]:
    """Those of ``ids`` that name an audit finding."""
    return set(await conn.fetchval(EXISTING_FINDINGS, ids) or [])
