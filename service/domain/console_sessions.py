"""Web console sessions: an API key pasted once, then a cookie.

The cookie holds 256 random bits; only their SHA-256 is stored. Each session carries its
own form token, which every form posts back (CSRF). A session is found only while its key
is not revoked and it has been used within the idle timeout, so revoking a key ends its
sessions on every replica at once. Its last use is recorded at most once a minute, so a
page view is not a write.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec

from service.db.queries import console_sessions as q
from service.domain.keys import authenticate
from service.schemas.keys import Principal

__all__ = ["ConsoleSession", "end_session", "find_session", "open_session"]

#: How stale last_seen_at may get before a page view records the use.
TOUCH_EVERY = timedelta(minutes=1)


class ConsoleSession(msgspec.Struct, frozen=True, kw_only=True):
    principal: Principal
    csrf_token: str


class OpenedSession(msgspec.Struct, frozen=True, kw_only=True):
    """Returned once, at sign-in: ``cookie`` is stored nowhere but in the browser."""

    cookie: str
    session: ConsoleSession


def _hash(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode()).digest()


async def open_session(
    conn: asyncpg.Connection, *, api_key: str, idle: timedelta
) -> OpenedSession | None:
    """Sign in with ``api_key``; None if it is not a valid key. Idle sessions are swept."""
    principal = await authenticate(conn, api_key.strip())
    if principal is None:
        return None
    await q.delete_idle_sessions(conn, seen_before=datetime.now(UTC) - idle)
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    await q.insert_session(conn, token_hash=_hash(cookie), key_id=principal.key_id, csrf_token=csrf)
    return OpenedSession(
        cookie=cookie, session=ConsoleSession(principal=principal, csrf_token=csrf)
    )


async def find_session(
    conn: asyncpg.Connection, *, cookie: str, idle: timedelta
) -> ConsoleSession | None:
    """The live session behind ``cookie``, or None (unknown, idle too long, key revoked)."""
    if not cookie or len(cookie) > 100:
        return None
    token_hash = _hash(cookie)
    now = datetime.now(UTC)
    row = await q.select_session(conn, token_hash=token_hash, seen_after=now - idle)
    if row is None:
        return None
    if now - row["last_seen_at"] > TOUCH_EVERY:
        await q.touch_session(conn, token_hash=token_hash)
    return ConsoleSession(
        principal=Principal(
            id=row["id"],
            name=row["name"],
            role=row["role"],
            platform_id=row["platform_id"],
            key_id=row["key_id"],
        ),
        csrf_token=row["csrf_token"],
    )


async def end_session(conn: asyncpg.Connection, *, cookie: str) -> None:
    """Sign out: the session is deleted, so the cookie opens nothing anywhere."""
    await q.delete_session(conn, token_hash=_hash(cookie))
