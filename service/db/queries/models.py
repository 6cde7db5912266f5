"""SQL for ``models`` and their lineage."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from service.db.queries import purls

__all__ = [
    "insert_model",
    "select_ancestors",
    "select_descendants",
    "select_lineage_as_of",
    "select_model",
    "select_model_with_lineage",
    "select_model_with_purls",
    "select_models",
    "select_name",
    "update_model",
]

COLUMNS = """
m.id, m.name, m.provider, m.modalities, m.tasks, m.base_model_id, b.name AS base_model,
m.derivation,
jsonb_build_object('weights', m.weights_openness, 'code', m.code_openness,
                   'data', m.data_openness, 'model_card', m.model_card_openness) AS openness,
m.created_at, m.updated_at
"""

INSERT = """
INSERT INTO models (name, provider, modalities, tasks, base_model_id, derivation,
                    weights_openness, code_openness, data_openness, model_card_openness)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT ((lower(name))) DO NOTHING
RETURNING id
"""

SELECT_ONE = f"""
SELECT {COLUMNS}
FROM models m LEFT JOIN models b ON b.id = m.base_model_id
WHERE ($1::uuid IS NULL OR m.id = $1) AND ($2::text IS NULL OR lower(m.name) = lower($2))
"""

# SELECT_ONE with the model's purls that the platform $3 (or, NULL, anyone) may see: the
# model and its purls in one round trip, where they took two.
SELECT_ONE_WITH_PURLS = f"""
SELECT {COLUMNS}, {purls.OF_MODEL_COLUMN.format(platform="$3")}
FROM models m LEFT JOIN models b ON b.id = m.base_model_id
WHERE ($1::uuid IS NULL OR m.id = $1) AND ($2::text IS NULL OR lower(m.name) = lower($2))
"""

SELECT_MANY = f"""
SELECT {COLUMNS}
FROM models m LEFT JOIN models b ON b.id = m.base_model_id
WHERE ($1::text IS NULL OR lower(m.name) LIKE lower($1) || '%')
  AND ($2::text IS NULL OR m.provider = $2)
  AND ($3::uuid IS NULL OR m.base_model_id = $3)
  AND ($4::text IS NULL OR $4 = ANY (m.tasks))
  AND ($5::text IS NULL OR $5 = ANY (m.modalities))
  AND ($6::uuid IS NULL OR m.id > $6)
ORDER BY m.id
LIMIT $7
"""

UPDATE = """
UPDATE models SET provider = $2, modalities = $3, tasks = $4, base_model_id = $5,
       derivation = $6, weights_openness = $7, code_openness = $8, data_openness = $9,
       model_card_openness = $10, updated_at = now()
WHERE id = $1
"""

# Lineage walks are bounded in depth so a corrupt graph cannot run away.
ANCESTORS = """
WITH RECURSIVE up (id, depth) AS (
  SELECT base_model_id, 1 FROM models WHERE id = $1 AND base_model_id IS NOT NULL
  UNION ALL
  SELECT m.base_model_id, up.depth + 1
  FROM up JOIN models m ON m.id = up.id
  WHERE m.base_model_id IS NOT NULL AND up.depth < 64
)
SELECT m.id, m.name, up.depth, m.base_model_id, m.derivation
FROM up JOIN models m ON m.id = up.id
ORDER BY up.depth
"""

# The descendants of $1 and their depth, a CTE of a WITH RECURSIVE.
_DOWN = """
down (id, depth) AS (
  SELECT id, 1 FROM models WHERE base_model_id = $1
  UNION ALL
  SELECT m.id, down.depth + 1
  FROM down JOIN models m ON m.base_model_id = down.id
  WHERE down.depth < 64
)
"""

DESCENDANTS = f"""
WITH RECURSIVE {_DOWN}
SELECT m.id, m.name, down.depth, m.base_model_id, m.derivation
FROM down JOIN models m ON m.id = down.id
ORDER BY down.depth, m.id
"""

# ANCESTORS and DESCENDANTS in one walk: ``up`` and ``down`` from the model $1.
_LINEAGE_WALK = f"""
WITH RECURSIVE up (id, depth) AS (
  SELECT base_model_id, 1 FROM models WHERE id = $1 AND base_model_id IS NOT NULL
  UNION ALL
  SELECT m.base_model_id, up.depth + 1
  FROM up JOIN models m ON m.id = up.id
  WHERE m.base_model_id IS NOT NULL AND up.depth < 64
), {_DOWN}"""

# SELECT_ONE_WITH_PURLS (by id) with the model's lineage as a ``lineage`` column: a JSON
# array of the walk's rows, each with its ``relation``, ancestors nearest first, then
# descendants by depth and id. The model, its purls and its lineage in one round trip,
# where they took two.
SELECT_WITH_LINEAGE = f"""
SELECT {COLUMNS}, {purls.OF_MODEL_COLUMN.format(platform="$2")},
(
  {_LINEAGE_WALK}
  SELECT coalesce(jsonb_agg(jsonb_build_object(
           'relation', r.relation, 'id', n.id, 'name', n.name, 'depth', r.depth,
           'base_model_id', n.base_model_id, 'derivation', n.derivation)
         ORDER BY r.relation, r.depth, n.id), '[]')
  FROM (SELECT 'ancestor' AS relation, id, depth FROM up
        UNION ALL
        SELECT 'descendant', id, depth FROM down) r
  JOIN models n ON n.id = r.id
) AS lineage
FROM models m LEFT JOIN models b ON b.id = m.base_model_id
WHERE m.id = $1
"""


async def insert_model(
    conn: asyncpg.Connection,
    *,
    name: str,
    provider: str | None,
    modalities: list[str],
    tasks: list[str],
    base_model_id: UUID | None,
    derivation: str | None,
    openness: tuple[str, str, str, str],
) -> UUID | None:
    """The new id, or None when the name is taken."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        INSERT, name, provider, modalities, tasks, base_model_id, derivation, *openness
    )


async def select_model(
    conn: asyncpg.Connection, *, model_id: UUID | None = None, name: str | None = None
) -> asyncpg.Record | None:
    if model_id is None and name is None:
        raise ValueError("select_model needs an id or a name")
    return await conn.fetchrow(SELECT_ONE, model_id, name)


async def select_model_with_purls(
    conn: asyncpg.Connection,
    *,
    model_id: UUID | None = None,
    name: str | None = None,
    visible_to: UUID | None,
) -> asyncpg.Record | None:
    """``select_model`` with a ``purls`` column: those of the hostings ``visible_to`` (a
    platform, or None for anyone) may see, distinct and sorted."""
    if model_id is None and name is None:
        raise ValueError("select_model needs an id or a name")
    return await conn.fetchrow(SELECT_ONE_WITH_PURLS, model_id, name, visible_to)


async def select_models(
    conn: asyncpg.Connection,
    *,
    name_prefix: str | None,
    provider: str | None,
    base_model_id: UUID | None,
    task: str | None,
    modality: str | None,
    after: UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    prefix = None if name_prefix is None else _escape_like(name_prefix)
    return list(
        await conn.fetch(SELECT_MANY, prefix, provider, base_model_id, task, modality, after, limit)
    )


async def update_model(
    conn: asyncpg.Connection,
    *,
    model_id: UUID,
    provider: str | None,
    modalities: list[str],
    tasks: list[str],
    base_model_id: UUID | None,
    derivation: str | None,
    openness: tuple[str, str, str, str],
) -> None:
    await conn.execute(
        UPDATE, model_id, provider, modalities, tasks, base_model_id, derivation, *openness
    )


async def select_ancestors(conn: asyncpg.Connection, *, model_id: UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(ANCESTORS, model_id))


# The model $1 as the ledger recorded it at $2 (its newest event with a state recorded by
# then: ``state``, NULL if none), and its lineage then, in one statement where the model,
# its ancestors and its descendants took three:
# - ``ancestors``: from the model's base then, each one's state then and through its base
#   then, until a model with no base, one that did not exist yet, one already met (a
#   cycle, or the model itself), or depth $3; nearest first;
# - ``descendants``: today's descendants of $1 (as DESCENDANTS finds them), each once, in
#   its state then; those with no state then are left out.
# A model's newest state recorded by the moment $2 (``{subject}`` its id), as a subquery.
_STATE_THEN = """(SELECT payload -> 'state' FROM events
          WHERE subject_id = {subject} AND subject_type = 'model' AND recorded_at <= $2
            AND payload ? 'state'
          ORDER BY seq DESC LIMIT 1)"""

LINEAGE_AS_OF = f"""
WITH RECURSIVE self (state) AS (
  SELECT {_STATE_THEN.format(subject="$1")}
), up (id, state, depth, seen) AS (
  SELECT b.id,
         {_STATE_THEN.format(subject="b.id")},
         1, ARRAY[$1::uuid, b.id]
  FROM self CROSS JOIN LATERAL (SELECT (self.state ->> 'base_model_id')::uuid AS id) b
  WHERE jsonb_typeof(self.state) = 'object' AND b.id IS NOT NULL AND b.id <> $1::uuid
  UNION ALL
  SELECT b.id,
         {_STATE_THEN.format(subject="b.id")},
         up.depth + 1, up.seen || b.id
  FROM up CROSS JOIN LATERAL (SELECT (up.state ->> 'base_model_id')::uuid AS id) b
  WHERE up.state IS NOT NULL AND b.id IS NOT NULL AND b.id <> ALL (up.seen) AND up.depth < $3
), {_DOWN}
SELECT (SELECT state FROM self) AS state,
       (SELECT coalesce(jsonb_agg(state ORDER BY depth), '[]') FROM up
        WHERE state IS NOT NULL) AS ancestors,
       (SELECT coalesce(jsonb_agg(e.state), '[]')
        FROM (SELECT DISTINCT id FROM down) d
        CROSS JOIN LATERAL (
          SELECT payload -> 'state' AS state
          FROM events
          WHERE subject_id = d.id AND subject_type = 'model' AND recorded_at <= $2
            AND payload ? 'state'
          ORDER BY seq DESC
          LIMIT 1
        ) AS e) AS descendants
"""


async def select_model_with_lineage(
    conn: asyncpg.Connection, *, model_id: UUID, visible_to: UUID | None
) -> asyncpg.Record | None:
    """``select_model_with_purls`` with a ``lineage`` column: the ancestors and descendants,
    each a dict with its ``relation`` (see SELECT_WITH_LINEAGE)."""
    return await conn.fetchrow(SELECT_WITH_LINEAGE, model_id, visible_to)


async def select_lineage_as_of(
    conn: asyncpg.Connection, *, model_id: UUID, as_of: datetime, depth: int
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], list[dict[str, Any]]]:
    """The model's state recorded at ``as_of`` (None if none), the states of its ancestors
    then (nearest first) and of today's descendants then (see LINEAGE_AS_OF)."""
    row = await conn.fetchrow(LINEAGE_AS_OF, model_id, as_of, depth)
    assert row is not None  # noqa: S101 - a SELECT without FROM always yields a row
    state = row["state"] if isinstance(row["state"], dict) else None
    return (
        state,
        [a for a in row["ancestors"] if isinstance(a, dict)],
        [d for d in row["descendants"] if isinstance(d, dict)],
    )


async def select_descendants(conn: asyncpg.Connection, *, model_id: UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(DESCENDANTS, model_id))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


SELECT_NAME = "SELECT name FROM models WHERE id = $1"


async def select_name(conn: asyncpg.Connection, *, model_id: UUID) -> str | None:
    name: str | None = await conn.fetchval(SELECT_NAME, model_id)
    return name
