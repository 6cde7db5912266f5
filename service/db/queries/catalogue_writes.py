"""SQL that writes what a catalogue sync found: the models it registers, the hostings it
adds, changes and removes, and, for the first two, their ledger events.

The events of registered models and new hostings are built here, in the statement that
writes them, rather than row by row in Python: their payloads are the records' states
exactly as ``service.domain.ledger.to_state`` gives them (every field, UUIDs as strings,
timestamps as msgspec writes them: RFC 3339 in UTC with a ``Z``, microseconds only when not
zero), so their ledger leaves are the bytes the service's own encoder would have produced.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from service.db.queries.catalogue import CHANGED, NEW
from service.db.queries.hostings import _AS_RECORD, _RETURNING, WRITABLE

__all__ = [
    "insert_hostings",
    "register_models",
    "remove_hostings",
    "update_hostings",
]


def _timestamp(column: str, *, usually: str | None = None) -> str:
    """A ``timestamptz`` column as JSON text, as msgspec encodes the datetime. ``usually``:
    the value the column has in most rows, constant within the statement (``now()``, a
    parameter), formatted once for the statement rather than once a row."""
    formatted = (
        f"CASE WHEN {column} IS NULL THEN NULL "
        f"WHEN extract(microseconds FROM {column})::bigint % 1000000 = 0 "
        f"""THEN to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') """
        f"""ELSE to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END"""
    )
    if usually is None:
        return formatted
    return (
        f"CASE WHEN {column} = {usually} THEN (SELECT {_timestamp(usually)}) ELSE {formatted} END"
    )


# The states are rows turned into jsonb by one ``to_jsonb``, each nested object a row of
# the row: about 40% cheaper here than nested ``jsonb_build_object`` calls, each of which
# decodes the objects within it and encodes them again. The laterals below follow the FROM
# items they read and name the row ``state``; jsonb orders keys itself, so a row's column
# order does not matter, only its names and values.

# A model's state (``Model``): ``m`` the model, ``b`` its base model or NULLs.
MODEL_STATE = f"""
CROSS JOIN LATERAL (SELECT m.weights_openness AS weights, m.code_openness AS code,
                           m.data_openness AS data, m.model_card_openness AS model_card) o
CROSS JOIN LATERAL (
  SELECT m.id, m.name, m.provider, m.modalities, m.tasks, m.base_model_id, b.name AS base_model,
         m.derivation, o AS openness, {_timestamp("m.created_at", usually="now()")} AS created_at,
         {_timestamp("m.updated_at", usually="now()")} AS updated_at) state"""

# A hosting's state (``Hosting``): ``h`` the hosting, ``m`` its model, ``{platform}`` its
# platform's slug (a query of the statement's one platform, run once, rather than a join).
_HOSTING_STATE = """
CROSS JOIN LATERAL (SELECT h.model_card_present AS present, h.model_card_url AS url) mc
CROSS JOIN LATERAL (SELECT h.safety_testing_present AS present, h.safety_testing_url AS url) st
CROSS JOIN LATERAL (SELECT h.risk_analysis_present AS present, h.risk_analysis_url AS url) ra
CROSS JOIN LATERAL (SELECT h.use_guidance_present AS present, h.use_guidance_url AS url) ug
CROSS JOIN LATERAL (SELECT mc AS model_card, st AS safety_testing, ra AS risk_analysis,
                           ug AS use_guidance) d
CROSS JOIN LATERAL (
  SELECT h.id, h.model_id, m.name AS model, h.name, h.platform_id, {platform} AS platform,
         h.external_id, h.url, h.revision, h.licence, h.gated, h.disabled, h.status,
         h.downloads, {downloads_at} AS downloads_at, d AS documentation,
         {created_at} AS created_at, {updated_at} AS updated_at) state"""


def hosting_state(platform: str, downloads_at: str) -> str:
    """The laterals of a hosting's state, its platform's slug given by ``platform``, and
    ``downloads_at`` the time most of the hostings were counted."""
    return _HOSTING_STATE.format(
        platform=platform,
        downloads_at=_timestamp("h.downloads_at", usually=downloads_at),
        created_at=_timestamp("h.created_at", usually="now()"),
        updated_at=_timestamp("h.updated_at", usually="now()"),
    )


# New models: each model a line names that the registry does not know and the platform
# does not host under that name; then each base model of those it does not know either.
_NEW_MODELS = """
WITH wanted AS (
  SELECT DISTINCT ON (lower(s.model)) s.model, s.base_model, s.derivation
  FROM {lines} s
  WHERE NOT EXISTS (SELECT 1 FROM models m WHERE lower(m.name) = lower(s.model))
    AND NOT EXISTS (SELECT 1 FROM hostings h
                    WHERE h.platform_id = $1 AND lower(h.name) = lower(s.model)){only}
  ORDER BY lower(s.model), s.line
)
INSERT INTO catalogue_new_models (folded, name, base_model, derivation)
SELECT lower(model), model,
       CASE WHEN lower(base_model) <> lower(model) THEN base_model END,
       CASE WHEN lower(base_model) <> lower(model) THEN derivation END
FROM wanted
"""
# Of a part's lines.
NEW_MODELS = _NEW_MODELS.format(lines="catalogue_lines", only="")
# Of the whole catalogue, before its parts: the new models another line names as its base
# (a part registers only models no other part needs) ...
NEW_BASE_MODELS = _NEW_MODELS.format(
    lines="catalogue_all",
    only="""
    AND EXISTS (SELECT 1 FROM catalogue_all d
                WHERE lower(d.base_model) = lower(s.model) AND lower(d.model) <> lower(s.model))""",
)
# ... and the unknown base models no line names.
NEW_LINE_BASES = """
INSERT INTO catalogue_new_models (folded, name, base_model, derivation)
SELECT DISTINCT ON (lower(s.base_model)) lower(s.base_model), s.base_model, NULL, NULL
FROM catalogue_all s
WHERE s.base_model IS NOT NULL AND lower(s.base_model) <> lower(s.model)
  AND NOT EXISTS (SELECT 1 FROM models m WHERE lower(m.name) = lower(s.base_model))
ON CONFLICT (folded) DO NOTHING
"""

NEW_BASES = """
INSERT INTO catalogue_new_models (folded, name, base_model, derivation)
SELECT DISTINCT ON (lower(n.base_model)) lower(n.base_model), n.base_model, NULL, NULL
FROM catalogue_new_models n
WHERE n.base_model IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM models m WHERE lower(m.name) = lower(n.base_model))
ON CONFLICT (folded) DO NOTHING
"""

# One round of registration: the new models whose base is known by now (or who have none),
# each with its ``model.registered`` event, in name order (``$2`` the platform, ``$3`` the
# time); a chain of new models takes one round per link. With ``$1`` the rest go in without
# base. A base is a model the statement sees (it takes no base registered by itself), so
# the event's base name is read from ``models`` as the insert found it.
# ``{on_conflict}``: a round first runs as a plain INSERT, about a quarter cheaper here than with ON
# CONFLICT (whose speculative insertion checks the name index twice a row); only a model
# another writer registered meanwhile makes it fail, and the round then runs again with
# ON CONFLICT DO NOTHING, which leaves that model to its writer (``register_models``).
_REGISTER_ROUND = f"""
WITH ins AS (
  INSERT INTO models (name, base_model_id, derivation)
  SELECT n.name, b.id, CASE WHEN b.id IS NOT NULL THEN coalesce(n.derivation, 'other') END
  FROM catalogue_new_models n LEFT JOIN models b ON lower(b.name) = lower(n.base_model)
  WHERE NOT EXISTS (SELECT 1 FROM models m WHERE lower(m.name) = n.folded)
    AND ($1 OR n.base_model IS NULL OR b.id IS NOT NULL)
  ORDER BY n.folded
  {{on_conflict}}
  RETURNING id, name, provider, modalities, tasks, base_model_id, derivation, weights_openness,
            code_openness, data_openness, model_card_openness, created_at, updated_at
), recorded AS (
  INSERT INTO events (stage, kind, subject_type, subject_id, model_id, platform_id, actor_id,
                      occurred_at, payload)
  SELECT 'prevent', 'model.registered', 'model', m.id, m.id, $2, NULL, $3, to_jsonb(payload)
  FROM ins m LEFT JOIN models b ON b.id = m.base_model_id
  {MODEL_STATE}
  CROSS JOIN LATERAL (SELECT state) payload
  ORDER BY lower(m.name)
)
SELECT count(*) FROM ins
"""
REGISTER_ROUND_PLAIN = _REGISTER_ROUND.format(on_conflict="")
REGISTER_ROUND = _REGISTER_ROUND.format(on_conflict="ON CONFLICT ((lower(name))) DO NOTHING")

# Before another round, the models registered leave ``catalogue_new_models``, so that the
# round reads only the rest. (A catalogue without a chain of new models needs one round,
# and then not this.)
PRUNE_REGISTERED = """
DELETE FROM catalogue_new_models n
WHERE EXISTS (SELECT 1 FROM models m WHERE lower(m.name) = n.folded)
"""


# A chunk of changed hostings takes its lines' values, worked out again from the hostings
# as locked; one that would not change after all is left alone.
UPDATE_CHANGED = f"""
WITH h AS (
  UPDATE hostings h SET ({WRITABLE}, updated_at) = (
    {NEW["external_id"]}, s.url, {NEW["revision"]}, {NEW["licence"]}, {NEW["gated"]},
    h.disabled, 'hosted', {NEW["downloads"]},
    CASE WHEN ({NEW["downloads"]}) IS NOT DISTINCT FROM h.downloads THEN h.downloads_at
         WHEN ({NEW["downloads"]}) IS NULL THEN NULL ELSE $3::timestamptz END,
    {NEW["model_card_present"]}, {NEW["model_card_url"]},
    {NEW["safety_testing_present"]}, {NEW["safety_testing_url"]},
    {NEW["risk_analysis_present"]}, {NEW["risk_analysis_url"]},
    {NEW["use_guidance_present"]}, {NEW["use_guidance_url"]}, now())
  FROM catalogue_work w JOIN catalogue_lines s ON s.line = w.line
  WHERE w.step = 'changed' AND w.id = h.id AND w.line > $1 AND w.line <= $2 AND {CHANGED}
  RETURNING h.id, h.model_id, h.name, h.platform_id, {
    ", ".join("h." + c.strip() for c in WRITABLE.split(","))
}, h.created_at, h.updated_at
)
{_AS_RECORD}
"""

# A chunk of new hostings, each with its ``hosting.recorded`` event (the sync's link and the
# hosting's state, as ``to_state`` gives it), in line order: ``(id, model_id)`` of each.
# ``{{on_conflict}}``: as a registration round, first a plain INSERT (about 15% cheaper here
# than with ON CONFLICT, which checks the four unique indexes of ``hostings`` before each
# row), then, if another writer added one of the hostings meanwhile, ON CONFLICT DO NOTHING.
_INSERT_NEW = f"""
WITH h AS (
  INSERT INTO hostings (model_id, platform_id, {WRITABLE}, name)
  SELECT m.id, $1, s.external_id, s.url, s.revision, s.licence, coalesce(s.gated, false),
         false, 'hosted', s.downloads, CASE WHEN s.downloads IS NOT NULL THEN $4::timestamptz END,
         coalesce(s.model_card_present, false), s.model_card_url,
         coalesce(s.safety_testing_present, false), s.safety_testing_url,
         coalesce(s.risk_analysis_present, false), s.risk_analysis_url,
         coalesce(s.use_guidance_present, false), s.use_guidance_url, s.model
  FROM catalogue_work w JOIN catalogue_lines s ON s.line = w.line
  JOIN models m ON lower(m.name) = lower(s.model)
  WHERE w.step = 'new' AND w.line > $2 AND w.line <= $3
  ORDER BY s.line
  {{on_conflict}}
  {_RETURNING}
), recorded AS (
  INSERT INTO events (stage, kind, subject_type, subject_id, model_id, platform_id, actor_id,
                      occurred_at, payload)
  SELECT 'prevent', 'hosting.recorded', 'hosting', h.id, h.model_id, h.platform_id, NULL, $4,
         to_jsonb(payload)
  FROM h JOIN catalogue_lines s ON s.model = h.name AND s.line > $2 AND s.line <= $3
  JOIN models m ON m.id = h.model_id
  {hosting_state("(SELECT p.slug FROM platforms p WHERE p.id = $1)", "$4::timestamptz")}
  CROSS JOIN LATERAL (SELECT $5::uuid AS id, $6::text AS delivery_id) link
  CROSS JOIN LATERAL (SELECT link AS catalogue, state) payload
  ORDER BY s.line
)
SELECT h.id, h.model_id FROM h
"""
INSERT_NEW_PLAIN = _INSERT_NEW.format(on_conflict="")
INSERT_NEW = _INSERT_NEW.format(on_conflict="ON CONFLICT DO NOTHING")


REMOVE_GONE = f"""
WITH h AS (
  UPDATE hostings h SET (status, updated_at) = ('removed', now())
  FROM catalogue_work w
  WHERE w.step = 'gone' AND w.id = h.id AND w.line > $1 AND w.line <= $2
    AND h.status <> 'removed'
  RETURNING h.id, h.model_id, h.name, h.platform_id, {
    ", ".join("h." + c.strip() for c in WRITABLE.split(","))
}, h.created_at, h.updated_at
)
{_AS_RECORD}
"""


async def register_models(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID,
    occurred_at: datetime,
    bases: bool,
    seconds: float,
) -> int:
    """Register every model (and base) a part's lines need and the registry does not know,
    each with its ``model.registered`` event; with ``bases``, those of the whole catalogue
    that some line takes as its base (``NEW_BASE_MODELS``, ``NEW_LINE_BASES``). Returns how
    many."""
    if bases:
        wanted = _count(await conn.execute(NEW_BASE_MODELS, platform_id, timeout=seconds))
        wanted += _count(await conn.execute(NEW_LINE_BASES, timeout=seconds))
    else:
        wanted = _count(await conn.execute(NEW_MODELS, platform_id, timeout=seconds))
        wanted += _count(await conn.execute(NEW_BASES, timeout=seconds))
    args = (platform_id, occurred_at, seconds)
    total, last = 0, False
    while True:  # rounds while they register some, then one with ``last``
        added = await _register_round(conn, last, *args)
        total += added
        if last or total == wanted:
            return total
        await conn.execute(PRUNE_REGISTERED, timeout=seconds)
        last = added == 0


def _count(status: str) -> int:
    """The rows a statement's status (``INSERT 0 5``) says it wrote."""
    return int(status.split()[-1])


async def _register_round(
    conn: asyncpg.Connection, last: bool, platform_id: UUID, at: datetime, seconds: float
) -> int:
    """One round, as a plain INSERT in a savepoint; again with ON CONFLICT DO NOTHING if a
    model of the same name was registered by another transaction since the round read.
    A sync takes a few savepoints (one per round), far below the 64 subtransactions a
    backend can keep before every snapshot in the cluster gets slower."""
    try:
        async with conn.transaction():
            added = await conn.fetchval(
                REGISTER_ROUND_PLAIN, last, platform_id, at, timeout=seconds
            )
    except asyncpg.UniqueViolationError:
        added = await conn.fetchval(REGISTER_ROUND, last, platform_id, at, timeout=seconds)
    return int(added)


async def update_hostings(
    conn: asyncpg.Connection, *, after: int, upto: int, occurred_at: datetime, seconds: float
) -> list[asyncpg.Record]:
    return list(await conn.fetch(UPDATE_CHANGED, after, upto, occurred_at, timeout=seconds))


async def insert_hostings(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID,
    after: int,
    upto: int,
    occurred_at: datetime,
    sync_id: UUID,
    delivery_id: str,
    plain: bool,
    seconds: float,
) -> list[asyncpg.Record]:
    """Insert the new hostings of lines ``after < line <= upto``, each with its event;
    ``plain``: without ON CONFLICT (a hosting added meanwhile is a ``UniqueViolationError``)."""
    return list(
        await conn.fetch(
            INSERT_NEW_PLAIN if plain else INSERT_NEW,
            platform_id,
            after,
            upto,
            occurred_at,
            sync_id,
            delivery_id,
            timeout=seconds,
        )
    )


async def remove_hostings(
    conn: asyncpg.Connection, *, after: int, upto: int, seconds: float
) -> list[asyncpg.Record]:
    return list(await conn.fetch(REMOVE_GONE, after, upto, timeout=seconds))
