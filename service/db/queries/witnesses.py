"""SQL for witnesses: the cosignatures they returned and the size each last cosigned."""

from __future__ import annotations

import asyncpg

__all__ = [
    "insert_cosignature",
    "select_cosignatures",
    "select_latest_checkpoint",
    "select_progress",
    "upsert_progress",
]

LATEST_CHECKPOINT = "SELECT tree_size, note FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1"

PROGRESS = "SELECT tree_size FROM witness_progress WHERE witness = $1"

UPSERT_PROGRESS = """
INSERT INTO witness_progress (witness, tree_size) VALUES ($1, $2)
ON CONFLICT (witness) DO UPDATE SET tree_size = excluded.tree_size, updated_at = now()
"""

INSERT_COSIGNATURE = """
INSERT INTO witness_cosignatures (tree_size, witness, line) VALUES ($1, $2, $3)
ON CONFLICT (tree_size, witness) DO UPDATE SET line = excluded.line, created_at = now()
"""

COSIGNATURES = """
SELECT line FROM witness_cosignatures WHERE tree_size = $1 ORDER BY witness
"""


async def select_latest_checkpoint(conn: asyncpg.Connection) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(LATEST_CHECKPOINT)
    return row


async def select_progress(conn: asyncpg.Connection, *, witness: str) -> int:
    size = await conn.fetchval(PROGRESS, witness)
    return 0 if size is None else int(size)


async def upsert_progress(conn: asyncpg.Connection, *, witness: str, tree_size: int) -> None:
    await conn.execute(UPSERT_PROGRESS, witness, tree_size)


async def insert_cosignature(
    conn: asyncpg.Connection, *, tree_size: int, witness: str, line: str
) -> None:
    await conn.execute(INSERT_COSIGNATURE, tree_size, witness, line)


async def select_cosignatures(conn: asyncpg.Connection, *, tree_size: int) -> list[str]:
    return [r["line"] for r in await conn.fetch(COSIGNATURES, tree_size)]
