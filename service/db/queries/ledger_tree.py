"""SQL for the sealed ledger: Merkle leaves and nodes, checkpoints, and point-in-time reads.

``ledger_leaves`` maps each leaf index (0, 1, 2, ...) to the event sealed there;
``ledger_nodes`` holds the hash of every complete subtree (level >= 1, aligned to its size);
``ledger_checkpoints`` keeps every signed checkpoint published.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

__all__ = [
    "EVENT_COLUMNS",
    "insert_checkpoint",
    "insert_leaves",
    "insert_nodes",
    "select_checkpoint",
    "select_checkpoint_lag",
    "select_checkpoints_before",
    "select_events_after",
    "select_hashes",
    "select_latest_checkpoint",
    "select_leaf_by_seq",
    "select_leaf_format_ranges",
    "select_leaves",
    "select_ledger_head",
    "select_recent_checkpoints",
    "select_snapshot",
    "select_state_as_of",
    "select_tree_head",
    "try_seal_lock",
]

#: The events columns that make up an entry of the tree, in the order of ``Event``.
EVENT_COLUMNS = (
    "seq, stage, kind, subject_type, subject_id, model_id, platform_id, actor_id, "
    "occurred_at, recorded_at, payload"
)

#: The same columns as the API serves them: the payload as the text PostgreSQL holds, to be
#: passed through rather than decoded and encoded again.
SERVED_EVENT_COLUMNS = EVENT_COLUMNS.replace("payload", "payload::text AS payload")

#: An arbitrary constant naming the sealer's advisory lock ("ledger" as ASCII).
SEAL_LOCK_KEY = 0x6C6564676572

#: A subject's newest state recorded by a moment: walks its events newest first, which stops
#: at the first match. Subjects are named by type and id: ids are unique within a type only.
STATE_AS_OF = """
SELECT payload -> 'state' AS state
FROM events
WHERE subject_id = $1 AND subject_type = $2 AND recorded_at <= $3 AND payload ? 'state'
ORDER BY seq DESC
LIMIT 1
"""

#: The same for many subjects, one lookup each. Written as a lateral lookup per id rather
#: than ``subject_id = ANY($1) ... DISTINCT ON``: a prepared statement's generic plan for
#: that form walked the whole ledger by ``recorded_at`` (the time bound looked selective
#: without its value), where a lookup per id can only use the subject's own events.
STATES_AS_OF = """
SELECT s.id AS subject_id, e.state
FROM unnest($1::uuid[]) AS s (id)
CROSS JOIN LATERAL (
  SELECT payload -> 'state' AS state
  FROM events
  WHERE subject_id = s.id AND subject_type = $2 AND recorded_at <= $3 AND payload ? 'state'
  ORDER BY seq DESC
  LIMIT 1
) AS e
"""

TRY_LOCK = "SELECT pg_try_advisory_xact_lock($1)"

HEAD = """
SELECT coalesce((SELECT leaf_index + 1 FROM ledger_leaves ORDER BY leaf_index DESC LIMIT 1), 0) AS size,
       coalesce((SELECT seq FROM ledger_leaves ORDER BY leaf_index DESC LIMIT 1), 0) AS last_seq
"""

EVENTS_AFTER = f"""
SELECT {EVENT_COLUMNS}
FROM events
WHERE seq > $1
ORDER BY seq
LIMIT $2
"""

INSERT_LEAVES = """
INSERT INTO ledger_leaves (leaf_index, seq, leaf_hash, format)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::smallint[])
"""

INSERT_NODES = """
INSERT INTO ledger_nodes (level, idx, hash)
SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
"""

HASHES = """
SELECT 0::smallint AS level, leaf_index AS idx, leaf_hash AS hash
FROM ledger_leaves WHERE leaf_index = ANY($1::bigint[])
UNION ALL
SELECT n.level, n.idx, n.hash
FROM ledger_nodes n JOIN unnest($2::smallint[], $3::bigint[]) AS w (level, idx)
  ON n.level = w.level AND n.idx = w.idx
"""

LEAVES = """
SELECT leaf_index, seq, leaf_hash, format
FROM ledger_leaves
WHERE leaf_index >= $1 AND leaf_index < $2
ORDER BY leaf_index
"""

LEAF_BY_SEQ = "SELECT leaf_index, seq, leaf_hash, format FROM ledger_leaves WHERE seq = $1"

#: Runs of consecutive leaves in one format (gaps-and-islands over the leaf index).
LEAF_FORMAT_RANGES = """
SELECT format, min(leaf_index) AS first_leaf, max(leaf_index) AS last_leaf
FROM (
  SELECT leaf_index, format,
         leaf_index - row_number() OVER (PARTITION BY format ORDER BY leaf_index) AS run
  FROM ledger_leaves
) AS l
GROUP BY format, run
ORDER BY first_leaf
"""

INSERT_CHECKPOINT = """
INSERT INTO ledger_checkpoints (tree_size, root_hash, last_seq, note)
VALUES ($1, $2, $3, $4)
ON CONFLICT (tree_size) DO NOTHING
"""

CHECKPOINT_COLUMNS = "tree_size, root_hash, last_seq, note, created_at"

LATEST_CHECKPOINT = f"""
SELECT {CHECKPOINT_COLUMNS} FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1
"""

CHECKPOINT = f"SELECT {CHECKPOINT_COLUMNS} FROM ledger_checkpoints WHERE tree_size = $1"

CHECKPOINTS_BEFORE = f"""
SELECT {CHECKPOINT_COLUMNS} FROM ledger_checkpoints
WHERE ($1::bigint IS NULL OR tree_size < $1)
ORDER BY tree_size DESC LIMIT $2
"""

RECENT_CHECKPOINTS = f"""
SELECT {CHECKPOINT_COLUMNS} FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT $1
"""


async def select_state_as_of(
    conn: asyncpg.Connection, *, subject_type: str, subject_id: UUID, as_of: datetime
) -> dict[str, Any] | None:
    state = await conn.fetchval(STATE_AS_OF, subject_id, subject_type, as_of)
    return state if isinstance(state, dict) else None


async def select_states_as_of(
    conn: asyncpg.Connection, *, subject_type: str, subject_ids: list[UUID], as_of: datetime
) -> dict[UUID, dict[str, Any]]:
    """Each subject's newest recorded state at ``as_of``; subjects not yet recorded are absent."""
    rows = await conn.fetch(STATES_AS_OF, list(dict.fromkeys(subject_ids)), subject_type, as_of)
    return {r["subject_id"]: r["state"] for r in rows if isinstance(r["state"], dict)}


async def try_seal_lock(conn: asyncpg.Connection) -> bool:
    """Take the sealer's transaction-scoped advisory lock, if no other sealer holds it."""
    return bool(await conn.fetchval(TRY_LOCK, SEAL_LOCK_KEY))


async def select_tree_head(conn: asyncpg.Connection) -> tuple[int, int]:
    """The number of sealed leaves and the seq of the last one (0 when none)."""
    row = await conn.fetchrow(HEAD)
    assert row is not None  # noqa: S101 - a SELECT without FROM always yields a row
    return int(row["size"]), int(row["last_seq"])


async def select_events_after(
    conn: asyncpg.Connection, *, after_seq: int, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(EVENTS_AFTER, after_seq, limit))


async def insert_leaves(
    conn: asyncpg.Connection,
    *,
    indexes: list[int],
    seqs: list[int],
    hashes: list[bytes],
    formats: list[int],
) -> None:
    await conn.execute(INSERT_LEAVES, indexes, seqs, hashes, formats)


async def select_leaf_format_ranges(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """``(format, first_leaf, last_leaf)`` for each run of leaves sealed in one format."""
    return list(await conn.fetch(LEAF_FORMAT_RANGES))


async def insert_nodes(conn: asyncpg.Connection, *, nodes: list[tuple[int, int, bytes]]) -> None:
    if nodes:
        levels, idxs, hashes = zip(*nodes, strict=True)
        await conn.execute(INSERT_NODES, list(levels), list(idxs), list(hashes))


async def select_hashes(
    conn: asyncpg.Connection, *, wanted: set[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    """The stored hashes of the complete subtrees ``(level, index)`` asked for."""
    leaves = [idx for level, idx in wanted if level == 0]
    inner = [(level, idx) for level, idx in wanted if level > 0]
    rows = await conn.fetch(
        HASHES, leaves, [level for level, _ in inner], [idx for _, idx in inner]
    )
    return {(int(r["level"]), int(r["idx"])): bytes(r["hash"]) for r in rows}


async def select_leaves(conn: asyncpg.Connection, *, start: int, end: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(LEAVES, start, end))


async def select_leaf_by_seq(conn: asyncpg.Connection, *, seq: int) -> asyncpg.Record | None:
    return await conn.fetchrow(LEAF_BY_SEQ, seq)


async def insert_checkpoint(
    conn: asyncpg.Connection, *, tree_size: int, root_hash: bytes, last_seq: int, note: str
) -> None:
    await conn.execute(INSERT_CHECKPOINT, tree_size, root_hash, last_seq, note)


async def select_latest_checkpoint(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow(LATEST_CHECKPOINT)


async def select_recent_checkpoints(
    conn: asyncpg.Connection, *, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(RECENT_CHECKPOINTS, limit))


async def select_checkpoints_before(
    conn: asyncpg.Connection, *, before: int | None, limit: int
) -> list[asyncpg.Record]:
    """Checkpoints smaller than ``before`` (all when None), newest first."""
    return list(await conn.fetch(CHECKPOINTS_BEFORE, before, limit))


async def select_checkpoint(conn: asyncpg.Connection, *, tree_size: int) -> asyncpg.Record | None:
    return await conn.fetchrow(CHECKPOINT, tree_size)


LEDGER_HEAD = "SELECT coalesce(max(seq), 0) FROM events"

#: Events after the newest checkpoint (counted up to a cap) and the age of the oldest one;
#: an index lookup and a bounded scan, cheap on any ledger size.
CHECKPOINT_LAG = """
WITH sealed AS (
  SELECT coalesce(
    (SELECT last_seq FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1), 0
  ) AS last_seq
)
SELECT
  (SELECT count(*) FROM (
     SELECT 1 FROM events, sealed WHERE events.seq > sealed.last_seq LIMIT 1000000
   ) AS pending) AS events,
  coalesce(extract(epoch FROM now() - (
     SELECT recorded_at FROM events, sealed
     WHERE events.seq > sealed.last_seq ORDER BY events.seq LIMIT 1
  )), 0)::float8 AS seconds
"""

SNAPSHOT = """
SELECT pg_snapshot_xmin(s)::text::bigint AS xmin, pg_snapshot_xmax(s)::text::bigint AS xmax,
       s::text AS snapshot
FROM pg_current_snapshot() AS s
"""


async def select_ledger_head(conn: asyncpg.Connection) -> int:
    """The newest event's seq, sealed or not (0 on an empty ledger)."""
    return int(await conn.fetchval(LEDGER_HEAD))


async def select_checkpoint_lag(conn: asyncpg.Connection) -> tuple[int, float]:
    """Events not yet sealed (up to a cap), and seconds since the oldest of them was recorded."""
    row = await conn.fetchrow(CHECKPOINT_LAG)
    assert row is not None  # noqa: S101 - a SELECT without FROM always yields a row
    return int(row["events"]), float(row["seconds"])


async def select_snapshot(conn: asyncpg.Connection) -> tuple[int, int, str]:
    """The ``xmin`` and ``xmax`` of the transaction's snapshot, and the whole snapshot as
    text (``xmin:xmax:xip,...``)."""
    row = await conn.fetchrow(SNAPSHOT)
    assert row is not None  # noqa: S101 - a function in FROM yields one row
    return int(row["xmin"]), int(row["xmax"]), str(row["snapshot"])
