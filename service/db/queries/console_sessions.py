"""SQL for ``console_sessions``: web console sign-ins, found by the hash of their cookie."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

__all__ = [
    "delete_idle_sessions",
    "delete_session",
    "insert_session",
    "select_session",
    "touch_session",
]

INSERT = """
INSERT INTO console_sessions (token_hash, key_id, csrf_token) VALUES ($1, $2, $3)
"""

# A session whose key was revoked, or that sat idle past the cut-off, is not found.
SELECT = """
SELECT s.csrf_token, s.last_seen_at, k.id AS key_id, p.id, p.name, p.role, p.platform_id
FROM console_sessions s
JOIN api_keys k ON k.id = s.key_id
JOIN principals p ON p.id = k.principal_id
WHERE s.token_hash = $1 AND k.revoked_at IS NULL AND s.last_seen_at > $2
"""

TOUCH = "UPDATE console_sessions SET last_seen_at = now() WHERE token_hash = $1"

DELETE = "DELETE FROM console_sessions WHERE token_hash = $1"

DELETE_IDLE = "DELETE FROM console_sessions WHERE last_seen_at <= $1"


async def insert_session(
    conn: asyncpg.Connection, *, token_hash: bytes, key_id: UUID, csrf_token: str
) -> None:
    await conn.execute(INSERT, token_hash, key_id, csrf_token)


async def select_session(
    conn: asyncpg.Connection, *, token_hash: bytes, seen_after: datetime
) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT, token_hash, seen_after)


async def touch_session(conn: asyncpg.Connection, *, token_hash: bytes) -> None:
    await conn.execute(TOUCH, token_hash)


async def delete_session(conn: asyncpg.Connection, *, token_hash: bytes) -> None:
    await conn.execute(DELETE, token_hash)


async def delete_idle_sessions(conn: asyncpg.Connection, *, seen_before: datetime) -> None:
    await conn.execute(DELETE_IDLE, seen_before)
