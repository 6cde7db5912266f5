"""SQL for catalogue syncs: the ``catalogue_syncs`` table, and the set-wise statements that
compare a platform's catalogue (COPYed into a temporary staging table) with its hostings.
The statements that write what the comparison found are in ``catalogue_writes``.

The whole catalogue is staged on the connection that checks it (``catalogue_all``, kept
until the sync's last transaction there); each transaction that applies a part has the
part's lines in ``catalogue_lines``, dropped with the transaction. A statement that may
touch every line of a catalogue is given the sync's own time limit (``timeout``), not the
request path's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import asyncpg

from service.db.queries.hostings import COLUMNS, FROM

__all__ = [
    "CHANGED",
    "GIVEN",
    "NEW",
    "STAGING_COLUMNS",
    "claim_sync",
    "copy_lines",
    "count_applying",
    "count_unchanged",
    "create_part",
    "create_whole",
    "drop_lines",
    "drop_whole",
    "fill_part",
    "find_changed",
    "find_gone",
    "find_new_hostings",
    "lock_chunk",
    "lock_sync",
    "record_checks",
    "record_part",
    "reject_conflicts",
    "select_chunk_bounds",
    "select_parts",
    "select_sync",
    "set_summary",
    "start_work",
    "sum_parts",
    "unlock_sync",
]

#: The staging table's columns, in the order ``copy_lines`` takes them. ``given`` says which
#: optional fields the line gave (``GIVEN`` bits): an absent one keeps the recorded value.
STAGING_COLUMNS = (
    "line",
    "model",
    "url",
    "given",
    "external_id",
    "revision",
    "licence",
    "gated",
    "downloads",
    "model_card_present",
    "model_card_url",
    "safety_testing_present",
    "safety_testing_url",
    "risk_analysis_present",
    "risk_analysis_url",
    "use_guidance_present",
    "use_guidance_url",
    "base_model",
    "derivation",
)

#: The bit of ``given`` for each optional field.
GIVEN = {
    "external_id": 1,
    "revision": 2,
    "licence": 4,
    "gated": 8,
    "downloads": 16,
    "model_card": 32,
    "safety_testing": 64,
    "risk_analysis": 128,
    "use_guidance": 256,
}

_LINE_COLUMNS = """
  line int PRIMARY KEY, model text NOT NULL, url text NOT NULL, given int NOT NULL,
  external_id text, revision text, licence text, gated boolean, downloads bigint,
  model_card_present boolean, model_card_url text,
  safety_testing_present boolean, safety_testing_url text,
  risk_analysis_present boolean, risk_analysis_url text,
  use_guidance_present boolean, use_guidance_url text,
  base_model text, derivation text"""

# Every transaction of a sync: no statement limit (a statement may touch every line), and
# sorts and hashes over a whole catalogue in memory.
WORK_SETTINGS = "SET LOCAL statement_timeout = 0; SET LOCAL work_mem = '64MB'"

# The whole catalogue, on the connection that checks it (``catalogue_all``), with the
# names of rejected lines (``catalogue_kept``): kept across that connection's transactions
# of one sync (checking, then removing what a complete catalogue leaves out), dropped at
# its end (``drop_whole``).
CREATE_WHOLE = f"""
DROP TABLE IF EXISTS catalogue_all, catalogue_kept;
CREATE TEMP TABLE catalogue_all ({_LINE_COLUMNS});
CREATE TEMP TABLE catalogue_kept (folded text PRIMARY KEY);
"""

# One transaction's work tables: a part's lines, the work found for them, the models to
# register. Dropped when the transaction ends.
CREATE_PART = f"""
CREATE TEMP TABLE catalogue_lines ({_LINE_COLUMNS}) ON COMMIT DROP;
CREATE TEMP TABLE catalogue_work (
  step text NOT NULL, line int NOT NULL, id uuid, PRIMARY KEY (step, line)
) ON COMMIT DROP;
CREATE TEMP TABLE catalogue_new_models (folded text PRIMARY KEY, name text NOT NULL,
  base_model text, derivation text) ON COMMIT DROP;
"""

# A part's lines (those whose number modulo ``$1`` is ``$2``) from the whole catalogue.
FILL_PART = """
INSERT INTO catalogue_lines SELECT * FROM catalogue_all WHERE line % $1 = $2
"""

# A line's new value for a column: the line's when it gave the field, else the recorded one.
NEW = {
    "url": "s.url",
    "external_id": "CASE WHEN s.given & 1 <> 0 THEN s.external_id ELSE h.external_id END",
    "revision": "CASE WHEN s.given & 2 <> 0 THEN s.revision ELSE h.revision END",
    "licence": "CASE WHEN s.given & 4 <> 0 THEN s.licence ELSE h.licence END",
    "gated": "CASE WHEN s.given & 8 <> 0 THEN s.gated ELSE h.gated END",
    "status": "'hosted'",
    "downloads": "CASE WHEN s.given & 16 <> 0 THEN s.downloads ELSE h.downloads END",
    **{
        f"{kind}_{part}": f"CASE WHEN s.given & {bit} <> 0 THEN s.{kind}_{part} "
        f"ELSE h.{kind}_{part} END"
        for kind, bit in (
            ("model_card", 32),
            ("safety_testing", 64),
            ("risk_analysis", 128),
            ("use_guidance", 256),
        )
        for part in ("present", "url")
    },
}
CHANGED = (
    "(" + ", ".join(NEW.values()) + ") IS DISTINCT FROM (" + ", ".join(f"h.{c}" for c in NEW) + ")"
)

# Lines naming what they may not: a model named on an earlier line, an external id given
# on an earlier line or held by another of the platform's hostings, a model the platform
# hosts under another name. Each is taken out of the staging table and reported. (Lines
# are grouped by their names' bytes, "C": the same groups as in the database's collation,
# which is deterministic, sorted several times faster.)
REJECT_CONFLICTS = """
WITH by_model AS (
  SELECT line, model,
         first_value(line) OVER (PARTITION BY lower(model) COLLATE "C" ORDER BY line) AS first_line
  FROM catalogue_all
), by_external AS (
  SELECT line, external_id,
         first_value(line) OVER (PARTITION BY external_id COLLATE "C" ORDER BY line) AS first_line
  FROM catalogue_all WHERE given & 1 <> 0 AND external_id IS NOT NULL
), bad AS (
  SELECT line, 'names ' || model || ' again (first on line ' || first_line || ')' AS reason
  FROM by_model WHERE first_line < line
  UNION ALL
  SELECT line, 'external_id ' || external_id || ' is given on line ' || first_line || ' too'
  FROM by_external WHERE first_line < line
  UNION ALL
  SELECT s.line, 'external_id ' || s.external_id || ' is that of this platform''s hosting '
                 || h.name
  FROM catalogue_all s JOIN hostings h
    ON h.platform_id = $1 AND h.external_id = s.external_id AND lower(h.name) <> lower(s.model)
  WHERE s.given & 1 <> 0
  UNION ALL
  SELECT s.line, 'this platform hosts ' || m.name || ' under the name ' || h.name
                 || '; name it so'
  FROM catalogue_all s JOIN models m ON lower(m.name) = lower(s.model)
  JOIN hostings h ON h.platform_id = $1 AND h.model_id = m.id
  WHERE lower(h.name) <> lower(s.model)
    AND NOT EXISTS (SELECT 1 FROM hostings o
                    WHERE o.platform_id = $1 AND lower(o.name) = lower(s.model))
), first AS (
  SELECT DISTINCT ON (line) line, reason FROM bad ORDER BY line, reason
), gone AS (
  DELETE FROM catalogue_all s USING first WHERE s.line = first.line
  RETURNING s.line, lower(s.model) AS folded
), kept AS (
  INSERT INTO catalogue_kept SELECT DISTINCT folded FROM gone ON CONFLICT DO NOTHING
)
SELECT first.line, first.reason FROM first ORDER BY first.line
"""


# The platform's hostings a line would change, by line.
FIND_CHANGED = f"""
INSERT INTO catalogue_work (step, line, id)
SELECT 'changed', s.line, h.id
FROM catalogue_lines s JOIN hostings h ON h.platform_id = $1 AND lower(h.name) = lower(s.model)
WHERE {CHANGED}
"""

# The lines naming no hosting of the platform: new hostings.
FIND_NEW = """
INSERT INTO catalogue_work (step, line)
SELECT 'new', s.line FROM catalogue_lines s
WHERE NOT EXISTS (SELECT 1 FROM hostings h
                  WHERE h.platform_id = $1 AND lower(h.name) = lower(s.model))
"""

# The platform's hostings not removed that the catalogue does not name (nor a line of it
# that was rejected), numbered in name order.
FIND_GONE = """
INSERT INTO catalogue_work (step, line, id)
SELECT 'gone', row_number() OVER (ORDER BY h.name), h.id
FROM hostings h
WHERE h.platform_id = $1 AND h.status <> 'removed'
  AND NOT EXISTS (SELECT 1 FROM catalogue_all s WHERE lower(s.model) = lower(h.name))
  AND NOT EXISTS (SELECT 1 FROM catalogue_kept k WHERE k.folded = lower(h.name))
"""

COUNT_UNCHANGED = """
SELECT count(*) FROM catalogue_lines s
WHERE NOT EXISTS (SELECT 1 FROM catalogue_work w
                  WHERE w.step IN ('changed', 'new') AND w.line = s.line)
"""

# The last line of every ``$2``-th work item of a step: the ends of its chunks.
CHUNK_BOUNDS = """
SELECT line FROM (
  SELECT line, row_number() OVER (ORDER BY line) AS n, count(*) OVER () AS total
  FROM catalogue_work WHERE step = $1
) w
WHERE n % $2 = 0 OR n = total
ORDER BY line
"""

# A chunk's hostings, locked in name order as every path that locks several does.
LOCK_CHUNK = f"""
SELECT {COLUMNS} {FROM}
JOIN catalogue_work w ON w.id = h.id
WHERE w.step = $1 AND w.line > $2 AND w.line <= $3
ORDER BY h.name
FOR UPDATE OF h
"""

CLAIM = """
INSERT INTO catalogue_syncs (platform_id, delivery_id, format, complete, body_sha256,
                             body_bytes, summary, parts)
VALUES ($1, $2, $3, $4, $5, $6, '{}', $7)
ON CONFLICT (platform_id, delivery_id) DO NOTHING
RETURNING id, received_at, state, parts
"""

SELECT_SYNC = """
SELECT id, received_at, state, parts, body_sha256, summary
FROM catalogue_syncs WHERE platform_id = $1 AND delivery_id = $2
"""

SELECT_PARTS = "SELECT part FROM catalogue_sync_parts WHERE sync_id = $1 ORDER BY part"

# What the whole sync did: the sum of its transactions' records.
SUM_PARTS = """
SELECT coalesce(sum(registered), 0)::int AS registered, coalesce(sum(added), 0)::int AS added,
       coalesce(sum(changed), 0)::int AS changed, coalesce(sum(unchanged), 0)::int AS unchanged,
       coalesce(sum(events), 0)::int AS events
FROM catalogue_sync_parts WHERE sync_id = $1
"""

# What a transaction of a sync did, committed with it: a part is applied once. The checking
# transaction (part -1) runs at every attempt and adds its registrations to those of
# earlier ones.
RECORD_PART = """
INSERT INTO catalogue_sync_parts (sync_id, part, registered, added, changed, unchanged, events)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
RECORD_CHECKS = """
INSERT INTO catalogue_sync_parts (sync_id, part, registered, added, changed, unchanged, events)
VALUES ($1, -1, $2, 0, 0, 0, $2)
ON CONFLICT (sync_id, part) DO UPDATE SET
  registered = catalogue_sync_parts.registered + excluded.registered,
  events = catalogue_sync_parts.events + excluded.events,
  applied_at = excluded.applied_at
"""

SET_SUMMARY = "UPDATE catalogue_syncs SET summary = $2, state = 'done' WHERE id = $1"

# A sync is applied by one request at a time: the one holding this lock, for its session.
LOCK = "SELECT pg_try_advisory_lock(hashtextextended('catalogue sync ' || $1::uuid::text, 0))"
UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('catalogue sync ' || $1::uuid::text, 0))"


async def count_applying(conn: asyncpg.Connection) -> int:
    """Syncs not applied whole (``state`` ``applying``)."""
    return int(await conn.fetchval("SELECT count(*) FROM catalogue_syncs WHERE state = 'applying'"))


async def start_work(conn: asyncpg.Connection, *, seconds: float) -> None:
    """At the start of each of a sync's transactions: its settings."""
    await conn.execute(WORK_SETTINGS, timeout=seconds)


async def create_whole(conn: asyncpg.Connection, *, seconds: float) -> None:
    """The whole catalogue's tables, on the connection that checks it."""
    await conn.execute(CREATE_WHOLE, timeout=seconds)


async def drop_whole(conn: asyncpg.Connection, *, seconds: float) -> None:
    await conn.execute("DROP TABLE IF EXISTS catalogue_all, catalogue_kept", timeout=seconds)


async def create_part(conn: asyncpg.Connection, *, seconds: float) -> None:
    """The transaction's work tables (see ``CREATE_PART``)."""
    await conn.execute(CREATE_PART, timeout=seconds)


async def fill_part(conn: asyncpg.Connection, *, parts: int, part: int, seconds: float) -> None:
    """A part's lines, on the connection holding the whole catalogue."""
    await conn.execute(FILL_PART, parts, part, timeout=seconds)


async def drop_lines(conn: asyncpg.Connection, lines: list[int], *, seconds: float) -> None:
    """Lines rejected by the whole catalogue's checks, out of a part's lines."""
    await conn.execute(
        "DELETE FROM catalogue_lines WHERE line = ANY ($1::int[])", lines, timeout=seconds
    )


async def lock_sync(conn: asyncpg.Connection, *, sync_id: UUID, seconds: float) -> bool:
    """Whether this connection now applies the sync (no other request is applying it)."""
    return bool(await conn.fetchval(LOCK, sync_id, timeout=seconds))


async def unlock_sync(conn: asyncpg.Connection, *, sync_id: UUID, seconds: float) -> None:
    await conn.execute(UNLOCK, sync_id, timeout=seconds)


async def select_parts(conn: asyncpg.Connection, *, sync_id: UUID, seconds: float) -> set[int]:
    """The parts of the sync applied (-1: its checks committed at least once)."""
    return {r["part"] for r in await conn.fetch(SELECT_PARTS, sync_id, timeout=seconds)}


async def sum_parts(conn: asyncpg.Connection, *, sync_id: UUID, seconds: float) -> asyncpg.Record:
    """``registered``, ``added``, ``changed``, ``unchanged`` and ``events`` of the whole sync."""
    row = await conn.fetchrow(SUM_PARTS, sync_id, timeout=seconds)
    assert row is not None  # noqa: S101 - an aggregate yields one row
    return row


async def record_part(
    conn: asyncpg.Connection,
    *,
    sync_id: UUID,
    part: int,
    registered: int,
    added: int,
    changed: int,
    unchanged: int,
    events: int,
    seconds: float,
) -> None:
    await conn.execute(
        RECORD_PART, sync_id, part, registered, added, changed, unchanged, events, timeout=seconds
    )


async def record_checks(
    conn: asyncpg.Connection, *, sync_id: UUID, registered: int, seconds: float
) -> None:
    """The checking transaction's registrations (each with its event), added to earlier
    attempts'."""
    await conn.execute(RECORD_CHECKS, sync_id, registered, timeout=seconds)


async def copy_lines(
    conn: asyncpg.Connection, rows: Iterable[tuple[Any, ...]], *, table: str, seconds: float
) -> None:
    """COPY staging rows (``STAGING_COLUMNS`` order) into ``catalogue_all`` or
    ``catalogue_lines``."""
    await conn.copy_records_to_table(
        table, records=rows, columns=list(STAGING_COLUMNS), timeout=seconds
    )


async def keep_names(conn: asyncpg.Connection, names: list[str], *, seconds: float) -> None:
    """Names of rejected lines, which a complete catalogue does not remove."""
    await conn.execute(
        "INSERT INTO catalogue_kept SELECT DISTINCT lower(n) FROM unnest($1::text[]) AS n "
        "ON CONFLICT DO NOTHING",
        names,
        timeout=seconds,
    )


async def reject_conflicts(
    conn: asyncpg.Connection, *, platform_id: UUID, seconds: float
) -> list[asyncpg.Record]:
    """Take out the lines in conflict (see ``REJECT_CONFLICTS``): ``(line, reason)`` rows."""
    await conn.execute("ANALYZE catalogue_all", timeout=seconds)
    return list(await conn.fetch(REJECT_CONFLICTS, platform_id, timeout=seconds))


async def find_changed(conn: asyncpg.Connection, *, platform_id: UUID, seconds: float) -> int:
    status = await conn.execute(FIND_CHANGED, platform_id, timeout=seconds)
    return int(status.split()[-1])


async def find_new_hostings(conn: asyncpg.Connection, *, platform_id: UUID, seconds: float) -> int:
    status = await conn.execute(FIND_NEW, platform_id, timeout=seconds)
    return int(status.split()[-1])


async def find_gone(conn: asyncpg.Connection, *, platform_id: UUID, seconds: float) -> int:
    status = await conn.execute(FIND_GONE, platform_id, timeout=seconds)
    return int(status.split()[-1])


async def count_unchanged(conn: asyncpg.Connection, *, seconds: float) -> int:
    return int(await conn.fetchval(COUNT_UNCHANGED, timeout=seconds))


async def select_chunk_bounds(
    conn: asyncpg.Connection, *, step: str, size: int, seconds: float
) -> list[int]:
    """The last line of each chunk of ``size`` work items of ``step``, in order."""
    return [int(r["line"]) for r in await conn.fetch(CHUNK_BOUNDS, step, size, timeout=seconds)]


async def lock_chunk(
    conn: asyncpg.Connection, *, step: str, after: int, upto: int, seconds: float
) -> list[asyncpg.Record]:
    return list(await conn.fetch(LOCK_CHUNK, step, after, upto, timeout=seconds))


async def claim_sync(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID,
    delivery_id: str,
    format: str,
    complete: bool,
    body_sha256: bytes,
    body_bytes: int,
    parts: int,
    seconds: float,
) -> asyncpg.Record | None:
    """The new sync's ``(id, received_at, state, parts)``, or None when the delivery id is
    taken."""
    return await conn.fetchrow(
        CLAIM,
        platform_id,
        delivery_id,
        format,
        complete,
        body_sha256,
        body_bytes,
        parts,
        timeout=seconds,
    )


async def select_sync(
    conn: asyncpg.Connection, *, platform_id: UUID, delivery_id: str, seconds: float
) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_SYNC, platform_id, delivery_id, timeout=seconds)


async def set_summary(
    conn: asyncpg.Connection, *, sync_id: UUID, summary: Any, seconds: float
) -> None:
    await conn.execute(SET_SUMMARY, sync_id, summary, timeout=seconds)
