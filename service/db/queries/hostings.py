"""SQL for ``hostings``."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

__all__ = [
    "insert_hosting",
    "rename_hosting",
    "select_hosting",
    "select_hosting_by_external_id",
    "select_hostings",
    "select_hostings_of",
    "select_live_hostings_of_models",
    "update_hosting",
    "update_hostings",
    "writable_values",
]

COLUMNS = """
h.id, h.model_id, m.name AS model, h.name, h.platform_id, p.slug AS platform, h.external_id, h.url,
h.revision, h.licence, h.gated, h.disabled, h.status, h.downloads, h.downloads_at,
jsonb_build_object(
  'model_card', jsonb_build_object('present', h.model_card_present, 'url', h.model_card_url),
  'safety_testing', jsonb_build_object('present', h.safety_testing_present, 'url', h.safety_testing_url),
  'risk_analysis', jsonb_build_object('present', h.risk_analysis_present, 'url', h.risk_analysis_url),
  'use_guidance', jsonb_build_object('present', h.use_guidance_present, 'url', h.use_guidance_url)
) AS documentation,
h.created_at, h.updated_at
"""

FROM = """
FROM hostings h JOIN models m ON m.id = h.model_id JOIN platforms p ON p.id = h.platform_id
"""

# Columns written by insert and update, in parameter order after the key columns.
WRITABLE = (
    "external_id, url, revision, licence, gated, disabled, status, downloads, downloads_at, "
    "model_card_present, model_card_url, safety_testing_present, safety_testing_url, "
    "risk_analysis_present, risk_analysis_url, use_guidance_present, use_guidance_url"
)

# Insert and update answer with the whole record, as SELECT_ONE would: one round trip.
_RETURNING = f"RETURNING id, model_id, name, platform_id, {WRITABLE}, created_at, updated_at"
_AS_RECORD = f"""
SELECT {COLUMNS} FROM h JOIN models m ON m.id = h.model_id JOIN platforms p ON p.id = h.platform_id
"""

INSERT = f"""
WITH h AS (
  INSERT INTO hostings (model_id, platform_id, {WRITABLE}, name)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
          $20)
  ON CONFLICT DO NOTHING
  {_RETURNING}
)
{_AS_RECORD}
"""

UPDATE = f"""
WITH h AS (
  UPDATE hostings SET ({WRITABLE}, updated_at)
    = ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, now())
  WHERE id = $1
  {_RETURNING}
)
{_AS_RECORD}
"""

# Many hostings changed in one statement: one array a column, the hosting's id first; a
# new value is named n_<column> so that nothing in RETURNING can mean the input instead.
UPDATE_MANY = f"""
WITH v AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                       $6::boolean[], $7::boolean[], $8::text[], $9::bigint[],
                       $10::timestamptz[], $11::boolean[], $12::text[], $13::boolean[],
                       $14::text[], $15::boolean[], $16::text[], $17::boolean[], $18::text[])
    AS v(hosting_id, {", ".join("n_" + c.strip() for c in WRITABLE.split(","))})
), h AS (
  UPDATE hostings SET ({WRITABLE}, updated_at)
    = ({", ".join("v.n_" + c.strip() for c in WRITABLE.split(","))}, now())
  FROM v
  WHERE hostings.id = v.hosting_id
  {_RETURNING}
)
{_AS_RECORD}
"""

SELECT_ONE = f"""
SELECT {COLUMNS} {FROM}
WHERE h.id = $1 AND ($2::uuid IS NULL OR h.platform_id = $2)
"""

SELECT_ONE_FOR_UPDATE = f"""
SELECT {COLUMNS} {FROM}
WHERE h.id = $1 AND ($2::uuid IS NULL OR h.platform_id = $2)
FOR UPDATE OF h
"""

# The filters of a listing, on the hosting's own columns.
_FILTERS = """
($1::uuid IS NULL OR h.platform_id = $1)
  AND ($2::uuid IS NULL OR h.model_id = $2)
  AND ($3::text IS NULL OR h.status = $3)
  AND ($4::text IS NULL OR h.licence = $4)
  AND ($5::bigint IS NULL OR h.downloads >= $5)
  AND ($6::text IS NULL
       OR ($6 = 'model_card' AND NOT h.model_card_present)
       OR ($6 = 'safety_testing' AND NOT h.safety_testing_present)
       OR ($6 = 'risk_analysis' AND NOT h.risk_analysis_present)
       OR ($6 = 'use_guidance' AND NOT h.use_guidance_present))
  AND ($7::uuid IS NULL OR h.id > $7)
"""

SELECT_MANY = f"""
SELECT {COLUMNS} {FROM}
WHERE {_FILTERS}
ORDER BY h.id
LIMIT $8
"""

# The hostings SELECT_MANY selects (by today's values), each in its state as the ledger
# recorded it at $9 (NULL: none recorded by then), in the same order: a point-in-time list
# in one round trip, where the list and the states took two. A hosting's model and platform
# are never null and never deleted: the page needs no join to find them.
SELECT_MANY_AS_OF = f"""
SELECT h.id, e.state
FROM (SELECT h.id FROM hostings h WHERE {_FILTERS} ORDER BY h.id LIMIT $8) h
LEFT JOIN LATERAL (
  SELECT payload -> 'state' AS state
  FROM events
  WHERE subject_id = h.id AND subject_type = 'hosting' AND recorded_at <= $9
    AND payload ? 'state'
  ORDER BY seq DESC
  LIMIT 1
) e ON true
ORDER BY h.id
"""


def writable_values(
    *,
    external_id: str | None,
    url: str,
    revision: str | None,
    licence: str | None,
    gated: bool,
    disabled: bool,
    status: str,
    downloads: int | None,
    downloads_at: datetime | None,
    documentation: dict[str, dict[str, object]],
) -> list[object]:
    """A hosting's writable columns in ``WRITABLE`` order."""
    values: list[object] = [
        external_id,
        url,
        revision,
        licence,
        gated,
        disabled,
        status,
        downloads,
        downloads_at,
    ]
    for kind in ("model_card", "safety_testing", "risk_analysis", "use_guidance"):
        values += [documentation[kind]["present"], documentation[kind]["url"]]
    return values


async def insert_hosting(
    conn: asyncpg.Connection,
    *,
    model_id: UUID,
    platform_id: UUID,
    external_id: str | None,
    url: str,
    revision: str | None,
    licence: str | None,
    gated: bool,
    disabled: bool,
    status: str,
    downloads: int | None,
    downloads_at: datetime | None,
    documentation: dict[str, dict[str, object]],
    name: str,
) -> asyncpg.Record | None:
    """The new record, or None when the platform already hosts the model (or the external
    id, or a hosting of that name)."""
    values = writable_values(
        external_id=external_id,
        url=url,
        revision=revision,
        licence=licence,
        gated=gated,
        disabled=disabled,
        status=status,
        downloads=downloads,
        downloads_at=downloads_at,
        documentation=documentation,
    )
    return await conn.fetchrow(INSERT, model_id, platform_id, *values, name)


async def update_hosting(
    conn: asyncpg.Connection, *, hosting_id: UUID, values: list[object]
) -> asyncpg.Record:
    """The record after the change; ``values`` as ``writable_values`` orders them."""
    row = await conn.fetchrow(UPDATE, hosting_id, *values)
    if row is None:
        raise LookupError(f"hosting {hosting_id} vanished inside its transaction")
    return row


async def update_hostings(
    conn: asyncpg.Connection, changes: list[tuple[UUID, list[object]]]
) -> list[asyncpg.Record]:
    """Apply many changes at once, each ``(hosting id, values)`` with values as
    ``writable_values`` orders them, each hosting at most once; the records after the change, in
    no particular order."""
    columns: list[list[object]] = [[hosting_id for hosting_id, _ in changes]]
    columns += [list(column) for column in zip(*(values for _, values in changes), strict=True)]
    return list(await conn.fetch(UPDATE_MANY, *columns))


async def select_hosting(
    conn: asyncpg.Connection,
    *,
    hosting_id: UUID,
    platform_id: UUID | None,
    for_update: bool = False,
) -> asyncpg.Record | None:
    """One hosting; with ``platform_id``, only if that platform hosts it."""
    sql = SELECT_ONE_FOR_UPDATE if for_update else SELECT_ONE
    return await conn.fetchrow(sql, hosting_id, platform_id)


async def select_hostings(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID | None,
    model_id: UUID | None,
    status: str | None,
    licence: str | None,
    min_downloads: int | None,
    missing: str | None,
    after: UUID | None,
    limit: int,
    as_of: datetime | None = None,
) -> list[dict[str, Any]]:
    """The hostings matching every filter, each a row of ``COLUMNS``; with ``as_of``, each
    one's state recorded then instead (``SELECT_MANY_AS_OF``), those with none left out."""
    args = (platform_id, model_id, status, licence, min_downloads, missing, after, limit)
    if as_of is None:
        return [dict(r) for r in await conn.fetch(SELECT_MANY, *args)]
    rows = await conn.fetch(SELECT_MANY_AS_OF, *args, as_of)
    return [r["state"] for r in rows if isinstance(r["state"], dict)]


# Found by the hosting's own name (the model's, unless the platform renamed it); lock
# order is that name, as every other path that locks several hostings uses.
SELECT_MANY_OF_MODELS_FOR_UPDATE = f"""
SELECT {COLUMNS} {FROM}
WHERE h.platform_id = $1
  AND lower(h.name) = ANY (ARRAY(SELECT lower(n) FROM unnest($2::text[]) AS n))
ORDER BY h.name
FOR UPDATE OF h
"""

SELECT_BY_EXTERNAL_ID_FOR_UPDATE = f"""
SELECT {COLUMNS} {FROM}
WHERE h.platform_id = $1 AND h.external_id = $2
FOR UPDATE OF h
"""

RENAME = f"""
WITH h AS (
  UPDATE hostings SET (name, url, external_id, updated_at) = ($2, $3, $4, now())
  WHERE id = $1
  {_RETURNING}
)
{_AS_RECORD}
"""


async def select_hostings_of(
    conn: asyncpg.Connection, *, platform_id: UUID, models: list[str]
) -> list[asyncpg.Record]:
    """``platform_id``'s hostings of the models named, locked in name order; a model it
    does not host is left out."""
    return list(await conn.fetch(SELECT_MANY_OF_MODELS_FOR_UPDATE, platform_id, models))


async def select_hosting_by_external_id(
    conn: asyncpg.Connection, *, platform_id: UUID, external_id: str
) -> asyncpg.Record | None:
    """``platform_id``'s hosting with the platform's own id ``external_id``, locked."""
    return await conn.fetchrow(SELECT_BY_EXTERNAL_ID_FOR_UPDATE, platform_id, external_id)


async def rename_hosting(
    conn: asyncpg.Connection, *, hosting_id: UUID, name: str, url: str, external_id: str | None
) -> asyncpg.Record | None:
    """The record under its new name and URL; None when the platform has another hosting
    of that name already."""
    try:
        async with conn.transaction():
            return await conn.fetchrow(RENAME, hosting_id, name, url, external_id)
    except asyncpg.UniqueViolationError:
        return None


# The hostings not removed of many models (a lineage family), on one platform or all.
SELECT_LIVE_OF_MODELS = f"""
SELECT {COLUMNS} {FROM}
WHERE h.model_id = ANY ($1::uuid[]) AND h.status <> 'removed'
  AND ($2::uuid IS NULL OR h.platform_id = $2)
ORDER BY h.model_id, p.slug, h.id
"""


async def select_live_hostings_of_models(
    conn: asyncpg.Connection, *, model_ids: list[UUID], platform_id: UUID | None
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_LIVE_OF_MODELS, model_ids, platform_id))
