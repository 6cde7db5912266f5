"""Principals and API keys: issuing, checking and revoking them.

A key reads ``rr_<lookup>_<secret>``. The lookup part finds the row; only the SHA-256 of
the secret is stored, and it is compared in constant time. Secrets are 256 random bits,
so a fast hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import keys as q
from service.db.queries import platforms as platforms_q
from service.domain.ledger import record_event
from service.errors import InvalidInput, NotFound
from service.schemas.keys import ApiKey, ApiKeyIn, CreatedApiKey, Principal

__all__ = [
    "authenticate",
    "create_key",
    "ensure_first_admin_key",
    "get_key",
    "list_keys",
    "name_principals",
    "parse_key",
    "revoke_key",
]

PREFIX = "rr"
_DUMMY_HASH = hashlib.sha256(b"no such key").digest()
#: How stale last_used_at may get: recording every use would make each read a write.
TOUCH_EVERY = timedelta(minutes=1)


def parse_key(token: str) -> tuple[str, str] | None:
    """Split a presented key into (lookup, secret), or None if it is not of our form."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 16 or not parts[2]:
        return None
    return parts[1], parts[2]


async def create_key(
    conn: asyncpg.Connection, *, data: ApiKeyIn, actor_id: UUID | None
) -> CreatedApiKey:
    """A new principal with one key; the key's text is returned here and nowhere else."""
    platform_id: UUID | None = None
    if data.role == "platform":
        if data.platform is None:
            raise InvalidInput("a platform key needs the platform it belongs to")
        platform = await platforms_q.select_platform(conn, slug=data.platform)
        if platform is None:
            raise InvalidInput(f"no platform {data.platform!r}")
        platform_id = platform["id"]
    elif data.platform is not None:
        raise InvalidInput(f"a {data.role} key belongs to no platform")

    principal_id = await q.insert_principal(
        conn, name=data.name, role=data.role, platform_id=platform_id, created_by=actor_id
    )
    lookup = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    key_id = await q.insert_key(
        conn,
        principal_id=principal_id,
        lookup=lookup,
        secret_hash=hashlib.sha256(secret.encode()).digest(),
    )
    api_key = await get_key(conn, key_id=key_id)
    await record_event(
        conn,
        stage="prevent",
        kind="api_key.created",
        subject_type="api_key",
        subject_id=key_id,
        platform_id=platform_id,
        actor_id=actor_id,
        state=msgspec.to_builtins(api_key),
    )
    return CreatedApiKey(key=f"{PREFIX}_{lookup}_{secret}", api_key=api_key)


async def get_key(conn: asyncpg.Connection, *, key_id: UUID) -> ApiKey:
    row = await q.select_key(conn, key_id=key_id)
    if row is None:
        raise NotFound(f"no API key {key_id}")
    return msgspec.convert(dict(row), ApiKey)


async def list_keys(
    conn: asyncpg.Connection,
    *,
    role: str | None,
    include_revoked: bool,
    after: UUID | None,
    limit: int,
) -> list[ApiKey]:
    rows = await q.select_keys(
        conn, role=role, include_revoked=include_revoked, after=after, limit=limit
    )
    return [msgspec.convert(dict(row), ApiKey) for row in rows]


async def revoke_key(conn: asyncpg.Connection, *, key_id: UUID, actor_id: UUID | None) -> ApiKey:
    """Revoke a key; revoking one already revoked changes nothing and is not an error."""
    before = await get_key(conn, key_id=key_id)
    if await q.revoke_key(conn, key_id=key_id):
        after = await get_key(conn, key_id=key_id)
        await record_event(
            conn,
            stage="prevent",
            kind="api_key.revoked",
            subject_type="api_key",
            subject_id=key_id,
            actor_id=actor_id,
            state=msgspec.to_builtins(after),
        )
        return after
    return before


async def authenticate(conn: asyncpg.Connection, token: str) -> Principal | None:
    """The principal a presented key belongs to, or None for any key that is not valid."""
    parsed = parse_key(token)
    if parsed is None:
        return None
    lookup, secret = parsed
    row = await q.select_key_for_auth(conn, lookup=lookup)
    presented = hashlib.sha256(secret.encode()).digest()
    stored = _DUMMY_HASH if row is None else bytes(row["secret_hash"])
    if not hmac.compare_digest(presented, stored) or row is None:
        return None
    last_used = row["last_used_at"]
    if last_used is None or datetime.now(UTC) - last_used > TOUCH_EVERY:
        await q.touch_key(conn, key_id=row["key_id"])
    return Principal(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        platform_id=row["platform_id"],
        key_id=row["key_id"],
    )


async def ensure_first_admin_key(conn: asyncpg.Connection) -> CreatedApiKey | None:
    """On a registry with no admin key at all, create one; otherwise do nothing.

    Serialised with an advisory lock so two processes starting at once make one key.
    """
    await q.lock_first_admin(conn)
    if await q.count_admin_keys(conn) > 0:
        return None
    return await create_key(conn, data=ApiKeyIn(role="admin", name="first admin"), actor_id=None)


async def name_principals(
    conn: asyncpg.Connection, *, principal_ids: list[UUID]
) -> dict[UUID, str]:
    """``name (role)`` of each principal, for showing who acted in a timeline. Admins read
    principals' names through the key listing already; only they are shown these."""
    rows = await q.select_principal_names(conn, principal_ids=list(dict.fromkeys(principal_ids)))
    return {row["id"]: f"{row['name']} ({row['role']})" for row in rows}
