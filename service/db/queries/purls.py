"""SQL for the package URLs of hostings (``hostings.purl``) and the models they name."""

from __future__ import annotations

from uuid import UUID

import asyncpg

__all__ = [
    "select_models_by_purl",
    "select_purl_inputs",
    "select_purls_of_hostings",
    "select_purls_of_models",
    "set_purls",
]

# What a hosting's purl is built from: of the hostings named (and of a platform, if one
# is given), or of every hosting of a platform. Two statements, not one with "$1 IS NULL
# OR ...": after five runs PostgreSQL may keep a generic plan, which cannot use an index
# under such an OR; a catalogue sync of a million lines ran this fifty times, each a
# sequential scan of every hosting. A hosting of a platform without a purl type and
# without a stored purl has none to build or clear, and is left out (a catalogue's new
# hostings on such a platform: no rows to read back).
SELECT_INPUTS_OF_HOSTINGS = """
SELECT h.id, h.name, h.revision, p.purl_type, h.purl
FROM hostings h JOIN platforms p ON p.id = h.platform_id
WHERE h.id = ANY ($1::uuid[]) AND ($2::uuid IS NULL OR h.platform_id = $2)
  AND (p.purl_type IS NOT NULL OR h.purl IS NOT NULL)
ORDER BY h.id
"""

SELECT_INPUTS_OF_PLATFORM = """
SELECT h.id, h.name, h.revision, p.purl_type, h.purl
FROM hostings h JOIN platforms p ON p.id = h.platform_id
WHERE h.platform_id = $1 AND (p.purl_type IS NOT NULL OR h.purl IS NOT NULL)
ORDER BY h.id
"""

SET_PURLS = """
UPDATE hostings h SET purl = v.purl
FROM unnest($1::uuid[], $2::text[]) AS v(id, purl)
WHERE h.id = v.id AND h.purl IS DISTINCT FROM v.purl
"""

# One model's purls (of ``m.id``), as SELECT_OF_MODELS lists them, as a column of another
# statement: ``{platform}`` is that statement's parameter for the platform (or NULL).
OF_MODEL_COLUMN = """
coalesce((SELECT array_agg(DISTINCT h.purl COLLATE "C" ORDER BY h.purl COLLATE "C")
          FROM hostings h
          WHERE h.model_id = m.id AND h.status <> 'removed' AND h.purl IS NOT NULL
            AND ({platform}::uuid IS NULL OR h.platform_id = {platform})), '{{}}') AS purls
"""

# Distinct and in code-point order: the same list whatever the database's collation.
SELECT_OF_MODELS = """
SELECT h.model_id, array_agg(DISTINCT h.purl COLLATE "C" ORDER BY h.purl COLLATE "C") AS purls
FROM hostings h
WHERE h.model_id = ANY ($1::uuid[]) AND h.status <> 'removed' AND h.purl IS NOT NULL
  AND ($2::uuid IS NULL OR h.platform_id = $2)
GROUP BY h.model_id
"""

SELECT_OF_HOSTINGS = """
SELECT h.id, h.purl FROM hostings h WHERE h.id = ANY ($1::uuid[]) AND h.purl IS NOT NULL
"""

# A purl exactly ($1), or any version of one given without a version ($2: the purl, and
# then '@' starts the version; 'A' is the character after '@').
SELECT_MODELS = """
SELECT DISTINCT h.model_id
FROM hostings h
WHERE h.status <> 'removed'
  AND ((h.purl COLLATE "C") = $1
       OR ($2::text IS NOT NULL AND (h.purl COLLATE "C") >= ($2 || '@')
           AND (h.purl COLLATE "C") < ($2 || 'A')))
"""


async def select_purl_inputs(
    conn: asyncpg.Connection, *, hosting_ids: list[UUID] | None, platform_id: UUID | None
) -> list[asyncpg.Record]:
    """Each hosting's name, revision, platform's purl type and stored purl."""
    if hosting_ids is None:
        return list(await conn.fetch(SELECT_INPUTS_OF_PLATFORM, platform_id))
    return list(await conn.fetch(SELECT_INPUTS_OF_HOSTINGS, hosting_ids, platform_id))


async def set_purls(conn: asyncpg.Connection, purls: list[tuple[UUID, str | None]]) -> None:
    """Store each hosting's purl (only those that change are written)."""
    if purls:
        await conn.execute(SET_PURLS, [h for h, _ in purls], [p for _, p in purls])


async def select_purls_of_models(
    conn: asyncpg.Connection, *, model_ids: list[UUID], platform_id: UUID | None
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_OF_MODELS, model_ids, platform_id))


async def select_purls_of_hostings(
    conn: asyncpg.Connection, *, hosting_ids: list[UUID]
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_OF_HOSTINGS, hosting_ids))


async def select_models_by_purl(
    conn: asyncpg.Connection, *, purl: str, any_version_of: str | None
) -> list[UUID]:
    """The models with a live hosting of ``purl``, or of any version of ``any_version_of``."""
    return [r["model_id"] for r in await conn.fetch(SELECT_MODELS, purl, any_version_of)]
