"""SQL for ``decommissions``, ``decommission_incidents``, ``decommission_findings`` and
``decommission_targets``."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

__all__ = [
    "confirm_targets",
    "insert_decision",
    "insert_targets",
    "link_findings",
    "link_incidents",
    "reopen_targets",
    "select_covering",
    "select_covering_many",
    "select_decision",
    "select_decisions_as_of",
    "select_decisions_with_targets",
    "select_impact_hostings",
    "select_impact_models",
    "select_open_for_policy",
    "select_overdue",
    "select_scope_hostings",
    "select_targets",
    "select_untargeted",
    "update_status",
]

COLUMNS = """
d.id, d.model_id, m.name AS model, d.revisions, d.action, d.reason, d.policy_id,
d.policy_clause, d.include_derivatives, d.platform_ids, d.effective_at, d.sunset_at,
d.successor_model_id, d.old_licence, d.new_licence, d.prohibited_uses, d.status,
d.proposed_by, d.approved_by, d.withdrawn_by, d.withdrawn_reason, d.proposed_at,
d.approved_at, d.notified_at, d.executed_at, d.withdrawn_at, d.confirm_by,
ARRAY(SELECT di.incident_id FROM decommission_incidents di
      WHERE di.decommission_id = d.id ORDER BY di.incident_id) AS incident_ids,
ARRAY(SELECT df.finding_id FROM decommission_findings df
      WHERE df.decommission_id = d.id ORDER BY df.finding_id) AS finding_ids,
d.created_at, d.updated_at
"""

INSERT = """
INSERT INTO decommissions (model_id, revisions, action, reason, policy_id, policy_clause,
  include_derivatives, platform_ids, effective_at, sunset_at, successor_model_id, old_licence,
  new_licence, prohibited_uses, confirm_by, proposed_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
RETURNING id
"""

SELECT_ONE = f"""
SELECT {COLUMNS} FROM decommissions d JOIN models m ON m.id = d.model_id WHERE d.id = $1
"""

SELECT_ONE_FOR_UPDATE = f"""
SELECT {COLUMNS} FROM decommissions d JOIN models m ON m.id = d.model_id WHERE d.id = $1
FOR UPDATE OF d
"""

# A platform sees the decisions that target one of its hostings.
SELECT_MANY = f"""
SELECT {COLUMNS} FROM decommissions d JOIN models m ON m.id = d.model_id
WHERE ($1::text IS NULL OR d.status = $1)
  AND ($2::uuid IS NULL OR d.model_id = $2)
  AND ($3::uuid IS NULL OR (d.notified_at IS NOT NULL AND EXISTS (
        SELECT 1 FROM decommission_targets t WHERE t.decommission_id = d.id AND t.platform_id = $3)))
  AND ($4::uuid IS NULL OR d.id > $4)
ORDER BY d.id
LIMIT $5
"""

# SELECT_MANY with each decision's targets (as SELECT_TARGETS orders them) as one JSON
# array: a list page reads its decisions and their targets in one round trip, not two.
# Each target model's name is looked up by key: joined, the planner hashed every model in
# the registry to name a few hundred targets.
SELECT_MANY_WITH_TARGETS = f"""
SELECT {COLUMNS},
  coalesce((
    SELECT json_agg(json_build_object(
             'hosting_id', t.hosting_id, 'platform_id', t.platform_id, 'platform', p.slug,
             'model_id', t.model_id,
             'model', (SELECT tm.name FROM models tm WHERE tm.id = t.model_id),
             'inherited', t.inherited, 'late', t.late, 'confirmed_at', t.confirmed_at,
             'outcome', t.outcome, 'created_at', t.created_at)
           ORDER BY t.created_at, t.hosting_id)
    FROM decommission_targets t JOIN platforms p ON p.id = t.platform_id
    WHERE t.decommission_id = d.id), '[]') AS targets
FROM decommissions d JOIN models m ON m.id = d.model_id
WHERE ($1::text IS NULL OR d.status = $1)
  AND ($2::uuid IS NULL OR d.model_id = $2)
  AND ($3::uuid IS NULL OR (d.notified_at IS NOT NULL AND EXISTS (
        SELECT 1 FROM decommission_targets t WHERE t.decommission_id = d.id AND t.platform_id = $3)))
  AND ($4::uuid IS NULL OR d.id > $4)
ORDER BY d.id
LIMIT $5
"""

# The decisions SELECT_MANY selects (by today's values), each in its state as the ledger
# recorded it at $6 (NULL: none recorded by then), in the same order: a point-in-time list
# in one round trip, where the list and the states took two.
SELECT_MANY_AS_OF = """
SELECT d.id, e.state
FROM (SELECT d.id FROM decommissions d
      WHERE ($1::text IS NULL OR d.status = $1)
        AND ($2::uuid IS NULL OR d.model_id = $2)
        AND ($3::uuid IS NULL OR (d.notified_at IS NOT NULL AND EXISTS (
              SELECT 1 FROM decommission_targets t
              WHERE t.decommission_id = d.id AND t.platform_id = $3)))
        AND ($4::uuid IS NULL OR d.id > $4)
      ORDER BY d.id
      LIMIT $5) d
LEFT JOIN LATERAL (
  SELECT payload -> 'state' AS state
  FROM events
  WHERE subject_id = d.id AND subject_type = 'decommission' AND recorded_at <= $6
    AND payload ? 'state'
  ORDER BY seq DESC
  LIMIT 1
) e ON true
ORDER BY d.id
"""

SELECT_OPEN_FOR_POLICY = """
SELECT id FROM decommissions
WHERE policy_id = $1 AND model_id = $2 AND status IN ('proposed', 'approved', 'notified')
ORDER BY id LIMIT 1
"""

UPDATE_STATUS = """
UPDATE decommissions SET status = $2,
  approved_by = coalesce($3, approved_by), approved_at = coalesce($4, approved_at),
  notified_at = coalesce($5, notified_at), executed_at = coalesce($6, executed_at),
  withdrawn_at = coalesce($7, withdrawn_at), withdrawn_by = coalesce($8, withdrawn_by),
  withdrawn_reason = coalesce($9, withdrawn_reason), confirm_by = coalesce($10, confirm_by),
  updated_at = now()
WHERE id = $1
"""

LINK_INCIDENTS = """
INSERT INTO decommission_incidents (decommission_id, incident_id)
SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING
"""

LINK_FINDINGS = """
INSERT INTO decommission_findings (decommission_id, finding_id)
SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING
"""

TARGET_COLUMNS = """
t.hosting_id, t.platform_id, p.slug AS platform, t.model_id, m.name AS model, t.inherited,
t.late, t.confirmed_at, t.outcome, t.created_at
"""

SELECT_TARGETS = f"""
SELECT {TARGET_COLUMNS}
FROM decommission_targets t JOIN platforms p ON p.id = t.platform_id
JOIN models m ON m.id = t.model_id
WHERE t.decommission_id = $1
ORDER BY t.created_at, t.hosting_id
"""

# Hostings in scope: of the model (and, with derivatives, of every descendant), on the
# platforms named (or any), still hosted or restricted, not yet a target of the decision.
SCOPE = """
WITH RECURSIVE d AS (
  SELECT model_id, include_derivatives, platform_ids FROM decommissions WHERE id = $1
), scope (id) AS (
  SELECT model_id FROM d
  UNION
  SELECT m.id FROM models m JOIN scope s ON m.base_model_id = s.id CROSS JOIN d
  WHERE d.include_derivatives
)
SELECT h.id AS hosting_id, h.platform_id, h.model_id, h.model_id <> d.model_id AS inherited
FROM hostings h JOIN scope s ON s.id = h.model_id CROSS JOIN d
WHERE h.status <> 'removed'
  AND (d.platform_ids IS NULL OR h.platform_id = ANY (d.platform_ids))
  AND NOT EXISTS (SELECT 1 FROM decommission_targets t
                  WHERE t.decommission_id = $1 AND t.hosting_id = h.id)
ORDER BY h.id
"""

INSERT_TARGETS = """
INSERT INTO decommission_targets (decommission_id, hosting_id, platform_id, model_id, inherited, late)
SELECT $1, r.hosting_id, r.platform_id, r.model_id, r.inherited, $5
FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $6::bool[])
     AS r (hosting_id, platform_id, model_id, inherited)
ON CONFLICT DO NOTHING
RETURNING hosting_id
"""

CONFIRM_TARGETS = """
UPDATE decommission_targets SET confirmed_at = $4, outcome = $5
WHERE decommission_id = $1 AND platform_id = $2 AND model_id = $3 AND confirmed_at IS NULL
RETURNING hosting_id
"""

# Confirmed targets whose hostings are hosted again: they await a new confirmation, late.
REOPEN_TARGETS = """
UPDATE decommission_targets SET confirmed_at = NULL, outcome = NULL, late = true
WHERE decommission_id = $1 AND hosting_id = ANY ($2::uuid[]) AND confirmed_at IS NOT NULL
RETURNING hosting_id
"""

# Notified decisions with a hosting in scope that is not yet a target: the sweep flags them.
UNTARGETED = """
SELECT d.id FROM decommissions d
WHERE d.status IN ('notified', 'executed')
  AND EXISTS (
    WITH RECURSIVE scope (id) AS (
      SELECT d.model_id
      UNION
      SELECT m.id FROM models m JOIN scope s ON m.base_model_id = s.id WHERE d.include_derivatives
    )
    SELECT 1 FROM hostings h JOIN scope s ON s.id = h.model_id
    WHERE h.status <> 'removed'
      AND (d.platform_ids IS NULL OR h.platform_id = ANY (d.platform_ids))
      AND NOT EXISTS (SELECT 1 FROM decommission_targets t
                      WHERE t.decommission_id = d.id AND t.hosting_id = h.id))
ORDER BY d.id
LIMIT $1
"""

# Decisions in force (notified, or executed: a recalled model hosted again must be caught)
# whose scope (the model, or with derivatives an ancestor) covers a model.
COVERING = """
WITH RECURSIVE up (id, depth) AS (
  SELECT $1::uuid, 0
  UNION ALL
  SELECT m.base_model_id, up.depth + 1 FROM models m JOIN up ON m.id = up.id
  WHERE m.base_model_id IS NOT NULL AND up.depth < 100
)
SELECT d.id FROM decommissions d JOIN up ON up.id = d.model_id
WHERE d.status IN ('notified', 'executed') AND (up.depth = 0 OR d.include_derivatives)
ORDER BY d.id
"""

# The decisions in force covering each of many models, directly or (with derivatives) as
# a descendant: walked down from the decisions, which are few, not up from the models.
COVERING_MANY = """
WITH RECURSIVE down (decision_id, id) AS (
  SELECT d.id, d.model_id FROM decommissions d WHERE d.status IN ('notified', 'executed')
  UNION
  SELECT down.decision_id, m.id
  FROM down JOIN decommissions d ON d.id = down.decision_id AND d.include_derivatives
  JOIN models m ON m.base_model_id = down.id
)
SELECT DISTINCT down.id AS model_id, down.decision_id FROM down
WHERE down.id = ANY ($1::uuid[])
ORDER BY down.decision_id
"""

# The reach of a scope (a model, with or without its descendants, on the platforms named or
# any): the hostings it would take as targets, for a draft as for a decision.
IMPACT_SCOPE = """
WITH RECURSIVE scope (id) AS (
  SELECT $1::uuid
  UNION
  SELECT m.id FROM models m JOIN scope s ON m.base_model_id = s.id WHERE $2::bool
)
"""

IMPACT_HOSTINGS = f"""
{IMPACT_SCOPE}
SELECT h.id AS hosting_id, h.platform_id, p.slug AS platform, h.model_id, m.name AS model,
       h.status, h.downloads
FROM hostings h JOIN scope s ON s.id = h.model_id
JOIN platforms p ON p.id = h.platform_id JOIN models m ON m.id = h.model_id
WHERE h.status <> 'removed' AND ($3::uuid[] IS NULL OR h.platform_id = ANY ($3::uuid[]))
ORDER BY p.slug, m.name, h.id
"""

IMPACT_MODELS = f"""
{IMPACT_SCOPE}
SELECT m.id AS model_id, m.name AS model, m.derivation, b.name AS base_model
FROM models m JOIN scope s ON s.id = m.id JOIN models b ON b.id = m.base_model_id
WHERE m.id <> $1::uuid
ORDER BY m.name
"""

OVERDUE = """
SELECT d.id AS decision_id, d.model_id, d.action, t.platform_id, p.slug AS platform,
       d.confirm_by, array_agg(t.hosting_id ORDER BY t.hosting_id) AS hosting_ids,
       extract(epoch FROM ($1 - d.confirm_by))::float8 AS overdue_seconds
FROM decommissions d
JOIN decommission_targets t ON t.decommission_id = d.id AND t.confirmed_at IS NULL
JOIN platforms p ON p.id = t.platform_id
WHERE d.status IN ('notified', 'executed') AND d.confirm_by < $1
  AND ($2::uuid IS NULL OR t.platform_id = $2)
  AND ($3::uuid IS NULL OR d.id = $3)
GROUP BY d.id, t.platform_id, p.slug
ORDER BY d.confirm_by, d.id, p.slug
LIMIT $4
"""


async def insert_decision(conn: asyncpg.Connection, *, values: dict[str, Any]) -> UUID:
    decision_id: UUID = await conn.fetchval(
        INSERT,
        values["model_id"],
        values["revisions"],
        values["action"],
        values["reason"],
        values["policy_id"],
        values["policy_clause"],
        values["include_derivatives"],
        values["platform_ids"],
        values["effective_at"],
        values["sunset_at"],
        values["successor_model_id"],
        values["old_licence"],
        values["new_licence"],
        values["prohibited_uses"],
        values["confirm_by"],
        values["proposed_by"],
    )
    return decision_id


async def select_decision(
    conn: asyncpg.Connection, *, decision_id: UUID, for_update: bool = False
) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_ONE_FOR_UPDATE if for_update else SELECT_ONE, decision_id)


async def select_decisions_with_targets(
    conn: asyncpg.Connection,
    *,
    status: str | None,
    model_id: UUID | None,
    platform_id: UUID | None,
    after: UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    """As ``select_decisions``, each row with its ``targets`` (JSON, decoded)."""
    return list(
        await conn.fetch(SELECT_MANY_WITH_TARGETS, status, model_id, platform_id, after, limit)
    )


async def select_decisions_as_of(
    conn: asyncpg.Connection,
    *,
    status: str | None,
    model_id: UUID | None,
    platform_id: UUID | None,
    after: UUID | None,
    limit: int,
    as_of: datetime,
) -> list[dict[str, Any]]:
    """As ``select_decisions`` selects them, the state of each recorded at ``as_of``; those
    with none are left out."""
    rows = await conn.fetch(SELECT_MANY_AS_OF, status, model_id, platform_id, after, limit, as_of)
    return [r["state"] for r in rows if isinstance(r["state"], dict)]


async def select_open_for_policy(
    conn: asyncpg.Connection, *, policy_id: UUID, model_id: UUID
) -> UUID | None:
    found: UUID | None = await conn.fetchval(SELECT_OPEN_FOR_POLICY, policy_id, model_id)
    return found


async def update_status(
    conn: asyncpg.Connection,
    *,
    decision_id: UUID,
    status: str,
    approved_by: UUID | None = None,
    approved_at: datetime | None = None,
    notified_at: datetime | None = None,
    executed_at: datetime | None = None,
    withdrawn_at: datetime | None = None,
    withdrawn_by: UUID | None = None,
    withdrawn_reason: str | None = None,
    confirm_by: datetime | None = None,
) -> None:
    await conn.execute(
        UPDATE_STATUS,
        decision_id,
        status,
        approved_by,
        approved_at,
        notified_at,
        executed_at,
        withdrawn_at,
        withdrawn_by,
        withdrawn_reason,
        confirm_by,
    )


async def link_incidents(
    conn: asyncpg.Connection, *, decision_id: UUID, incident_ids: list[UUID]
) -> str:
    return await conn.execute(LINK_INCIDENTS, decision_id, incident_ids)


async def link_findings(
    conn: asyncpg.Connection, *, decision_id: UUID, finding_ids: list[UUID]
) -> None:
    await conn.execute(LINK_FINDINGS, decision_id, finding_ids)


async def select_targets(conn: asyncpg.Connection, *, decision_id: UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_TARGETS, decision_id))


async def select_scope_hostings(
    conn: asyncpg.Connection, *, decision_id: UUID
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SCOPE, decision_id))


async def insert_targets(
    conn: asyncpg.Connection, *, decision_id: UUID, rows: list[asyncpg.Record], late: bool
) -> list[UUID]:
    if not rows:
        return []
    inserted = await conn.fetch(
        INSERT_TARGETS,
        decision_id,
        [r["hosting_id"] for r in rows],
        [r["platform_id"] for r in rows],
        [r["model_id"] for r in rows],
        late,
        [r["inherited"] for r in rows],
    )
    return [r["hosting_id"] for r in inserted]


async def confirm_targets(
    conn: asyncpg.Connection,
    *,
    decision_id: UUID,
    platform_id: UUID,
    model_id: UUID,
    confirmed_at: datetime,
    outcome: str,
) -> list[UUID]:
    rows = await conn.fetch(
        CONFIRM_TARGETS, decision_id, platform_id, model_id, confirmed_at, outcome
    )
    return [r["hosting_id"] for r in rows]


async def reopen_targets(
    conn: asyncpg.Connection, *, decision_id: UUID, hosting_ids: list[UUID]
) -> list[UUID]:
    rows = await conn.fetch(REOPEN_TARGETS, decision_id, hosting_ids)
    return [r["hosting_id"] for r in rows]


async def select_untargeted(conn: asyncpg.Connection, *, limit: int) -> list[UUID]:
    return [r["id"] for r in await conn.fetch(UNTARGETED, limit)]


async def select_covering(conn: asyncpg.Connection, *, model_id: UUID) -> list[UUID]:
    return [r["id"] for r in await conn.fetch(COVERING, model_id)]


async def select_covering_many(
    conn: asyncpg.Connection, *, model_ids: list[UUID]
) -> list[asyncpg.Record]:
    """``(model_id, decision_id)`` for each decision in force covering one of the models."""
    return list(await conn.fetch(COVERING_MANY, model_ids))


async def select_impact_hostings(
    conn: asyncpg.Connection,
    *,
    model_id: UUID,
    include_derivatives: bool,
    platform_ids: list[UUID] | None,
) -> list[asyncpg.Record]:
    return list(await conn.fetch(IMPACT_HOSTINGS, model_id, include_derivatives, platform_ids))


async def select_impact_models(
    conn: asyncpg.Connection, *, model_id: UUID, include_derivatives: bool
) -> list[asyncpg.Record]:
    return list(await conn.fetch(IMPACT_MODELS, model_id, include_derivatives))


async def select_overdue(
    conn: asyncpg.Connection,
    *,
    now: datetime,
    platform_id: UUID | None,
    decision_id: UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    return list(await conn.fetch(OVERDUE, now, platform_id, decision_id, limit))
