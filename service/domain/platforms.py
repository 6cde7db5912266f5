"""Hosting platforms."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import platforms as q
from service.domain.ledger import diff, record_event, to_state
from service.domain.purls import check_purl_type, refresh_purls
from service.errors import Conflict, NotFound
from service.schemas.platforms import Platform, PlatformIn, PlatformPatch

__all__ = [
    "PlatformScope",
    "create_platform",
    "get_platform",
    "list_platforms",
    "platform_scope",
    "update_platform",
]


class PlatformScope(msgspec.Struct, frozen=True, kw_only=True):
    """The platform a listing is narrowed to, as the caller may see it."""

    #: Only records of this platform; None for every platform.
    platform_id: UUID | None = None
    #: The caller named a platform it cannot see (or none exists): nothing matches.
    empty: bool = False


async def create_platform(
    conn: asyncpg.Connection, *, data: PlatformIn, actor_id: UUID | None
) -> Platform:
    row = await q.insert_platform(
        conn,
        slug=data.slug,
        name=data.name,
        kind=data.kind,
        purl_type=check_purl_type(data.purl_type),
    )
    if row is None:
        raise Conflict(f"a platform with slug {data.slug!r} exists already")
    platform = msgspec.convert(dict(row), Platform)
    await record_event(
        conn,
        stage="prevent",
        kind="platform.registered",
        subject_type="platform",
        subject_id=platform.id,
        platform_id=platform.id,
        actor_id=actor_id,
        state=to_state(platform),
    )
    return platform


async def get_platform(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID | None = None,
    slug: str | None = None,
    visible_to: UUID | None = None,
) -> Platform:
    """One platform; with ``visible_to`` (a platform principal's own id), only that one."""
    row = await q.select_platform(conn, platform_id=platform_id, slug=slug)
    if row is None or (visible_to is not None and row["id"] != visible_to):
        raise NotFound(f"no platform {slug or platform_id}")
    return msgspec.convert(dict(row), Platform)


async def platform_scope(
    conn: asyncpg.Connection, *, slug: str | None, visible_to: UUID | None
) -> PlatformScope:
    """Narrow a listing to the platform ``slug`` names, within what the caller sees.

    A platform principal (``visible_to``, its own id) sees its own platform's records only,
    named or not; naming another platform, or one that does not exist, matches nothing:
    an empty page, not a 404, so a listing does not tell which platforms exist.
    """
    if slug is None:
        return PlatformScope(platform_id=visible_to)
    try:
        found = await get_platform(conn, slug=slug, visible_to=visible_to)
    except NotFound:
        return PlatformScope(empty=True)
    return PlatformScope(platform_id=found.id)


async def list_platforms(
    conn: asyncpg.Connection,
    *,
    kind: str | None,
    visible_to: UUID | None,
    after: UUID | None,
    limit: int,
    text: str | None = None,
) -> list[Platform]:
    """Platforms in id order; ``visible_to`` keeps a platform key to its own, ``text``
    keeps those whose slug or name holds it (ignoring case)."""
    rows = await q.select_platforms(
        conn, kind=kind, only_id=visible_to, after=after, limit=limit, text=text
    )
    return [msgspec.convert(dict(row), Platform) for row in rows]


async def update_platform(
    conn: asyncpg.Connection, *, slug: str, patch: PlatformPatch, actor_id: UUID | None
) -> Platform:
    before = await get_platform(conn, slug=slug)
    name = before.name if patch.name is msgspec.UNSET else patch.name
    kind = before.kind if patch.kind is msgspec.UNSET else patch.kind
    purl_type = (
        before.purl_type if patch.purl_type is msgspec.UNSET else check_purl_type(patch.purl_type)
    )
    row = await q.update_platform(
        conn, platform_id=before.id, name=name, kind=kind, purl_type=purl_type
    )
    after = msgspec.convert(dict(row), Platform)
    if after.purl_type != before.purl_type:
        # Every hosting's purl follows its platform's type, in the same transaction.
        await refresh_purls(conn, platform_id=after.id)
    changes = diff(to_state(before), to_state(after))
    if changes:
        await record_event(
            conn,
            stage="prevent",
            kind="platform.updated",
            subject_type="platform",
            subject_id=after.id,
            platform_id=after.id,
            actor_id=actor_id,
            state=to_state(after),
            changes=changes,
        )
    return after
