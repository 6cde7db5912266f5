"""Platforms' notification endpoints: where notices go, and the secret that signs them.

Each endpoint has its own Standard Webhooks secret, shown once at creation and once at each
rotation. An endpoint whose host is, or resolves to, a non-public address is refused
(``destinations``). An endpoint that answers 410 Gone is disabled by the delivery worker; its
queued notices wait until its platform or an admin enables it again. A deleted endpoint is
kept for its notices' record but is no longer read, subscribed or delivered to. Every change
appends a ``respond`` ledger event (without the secret).

Functions taking ``visible_to`` (a platform principal's own platform id) act only on that
platform's endpoints; another platform's is "not found", as if it did not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import endpoints as q
from service.domain.destinations import Network, check_endpoint_url
from service.domain.ledger import diff, record_event, to_state
from service.domain.platforms import platform_scope
from service.domain.vault import Vault, endpoint_context
from service.errors import Conflict, NotFound
from service.platforms.standard import new_secret
from service.schemas.endpoints import CreatedEndpoint, Endpoint, EndpointIn, EndpointPatch

__all__ = [
    "MAX_ENDPOINTS_PER_PLATFORM",
    "create_endpoint",
    "delete_endpoint",
    "disable_endpoint",
    "get_endpoint",
    "list_endpoints",
    "rotate_secret",
    "update_endpoint",
]


async def _event(
    conn: asyncpg.Connection,
    endpoint: Endpoint,
    *,
    kind: str,
    actor_id: UUID | None,
    before: Endpoint | None = None,
) -> None:
    await record_event(
        conn,
        stage="respond",
        kind=kind,
        subject_type="notification_endpoint",
        subject_id=endpoint.id,
        platform_id=endpoint.platform_id,
        actor_id=actor_id,
        state=to_state(endpoint),
        changes=None if before is None else diff(to_state(before), to_state(endpoint)),
    )


#: Endpoints a platform may have at once: each decision queues a notice for every one.
MAX_ENDPOINTS_PER_PLATFORM = 20


async def create_endpoint(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID,
    data: EndpointIn,
    actor_id: UUID | None,
    vault: Vault,
    allowed: tuple[Network, ...] = (),
) -> CreatedEndpoint:
    """Register an endpoint; one whose host is not public (and not ``allowed``) is refused.
    Its secret is stored sealed (``vault``) and returned here only."""
    if await q.count_for_platform(conn, platform_id=platform_id) >= MAX_ENDPOINTS_PER_PLATFORM:
        raise Conflict(
            f"a platform may have at most {MAX_ENDPOINTS_PER_PLATFORM} endpoints: "
            "delete one it no longer uses first"
        )
    await check_endpoint_url(data.url, allowed=allowed)
    secret = new_secret()
    endpoint_id = await q.insert_endpoint(
        conn,
        platform_id=platform_id,
        url=data.url,
        event_types=list(dict.fromkeys(data.event_types)),
        description=data.description,
        sealed=vault.seal(secret, context=endpoint_context(platform_id)),
        created_by=actor_id,
    )
    endpoint = await get_endpoint(conn, endpoint_id=endpoint_id)
    await _event(conn, endpoint, kind="endpoint.created", actor_id=actor_id)
    return CreatedEndpoint(endpoint=endpoint, secret=secret)


async def get_endpoint(
    conn: asyncpg.Connection,
    *,
    endpoint_id: UUID,
    visible_to: UUID | None = None,
    for_update: bool = False,
) -> Endpoint:
    """One endpoint; with ``visible_to`` (a platform's id), only one of that platform's."""
    row = await q.select_endpoint(
        conn, endpoint_id=endpoint_id, platform_id=visible_to, for_update=for_update
    )
    if row is None:
        raise NotFound(f"no endpoint {endpoint_id}")
    return msgspec.convert(dict(row), Endpoint)


async def list_endpoints(
    conn: asyncpg.Connection,
    *,
    platform: str | None = None,
    visible_to: UUID | None = None,
    after: UUID | None,
    limit: int,
) -> list[Endpoint]:
    """Endpoints, of one platform if ``platform`` names one; a platform sees its own only."""
    scope = await platform_scope(conn, slug=platform, visible_to=visible_to)
    if scope.empty:
        return []
    rows = await q.select_endpoints(conn, platform_id=scope.platform_id, after=after, limit=limit)
    return [msgspec.convert(dict(r), Endpoint) for r in rows]


async def update_endpoint(
    conn: asyncpg.Connection,
    *,
    endpoint_id: UUID,
    patch: EndpointPatch,
    actor_id: UUID | None,
    visible_to: UUID | None = None,
    allowed: tuple[Network, ...] = (),
) -> Endpoint:
    if patch.url is not msgspec.UNSET:
        await check_endpoint_url(patch.url, allowed=allowed)
    before = await get_endpoint(
        conn, endpoint_id=endpoint_id, visible_to=visible_to, for_update=True
    )
    disabled_at, disabled_reason = before.disabled_at, before.disabled_reason
    if patch.disabled is not msgspec.UNSET:
        if patch.disabled and disabled_at is None:
            by = "an admin" if visible_to is None else "the platform"
            disabled_at, disabled_reason = datetime.now(UTC), f"disabled by {by}"
        elif not patch.disabled:
            disabled_at, disabled_reason = None, None
    await q.update_endpoint(
        conn,
        endpoint_id=endpoint_id,
        url=before.url if patch.url is msgspec.UNSET else patch.url,
        event_types=list(
            before.event_types
            if patch.event_types is msgspec.UNSET
            else dict.fromkeys(patch.event_types)
        ),
        description=before.description if patch.description is msgspec.UNSET else patch.description,
        disabled_at=disabled_at,
        disabled_reason=disabled_reason,
    )
    after = await get_endpoint(conn, endpoint_id=endpoint_id)
    if before != after:
        kind = "endpoint.updated"
        if before.disabled_at is None and after.disabled_at is not None:
            kind = "endpoint.disabled"
        elif before.disabled_at is not None and after.disabled_at is None:
            kind = "endpoint.enabled"
        await _event(conn, after, kind=kind, actor_id=actor_id, before=before)
    return after


async def rotate_secret(
    conn: asyncpg.Connection,
    *,
    endpoint_id: UUID,
    overlap: timedelta,
    actor_id: UUID | None,
    vault: Vault,
    visible_to: UUID | None = None,
) -> CreatedEndpoint:
    """Give an endpoint a new signing secret, returned here only.

    For ``overlap`` the old secret signs too (each notice carries both signatures), so a
    receiver may switch over at leisure; with no overlap it stops at once (a leaked secret).
    Rotating again during an overlap ends the earlier secret's. Both are stored sealed.
    """
    endpoint = await get_endpoint(
        conn, endpoint_id=endpoint_id, visible_to=visible_to, for_update=True
    )
    context = endpoint_context(endpoint.platform_id)
    current = await q.select_secret(conn, endpoint_id=endpoint.id)
    if current is None:
        raise NotFound("no such endpoint")
    # A row from before sealing holds its secret in plaintext: the previous one is sealed
    # here, so the rotation writes no plaintext whatever the row held.
    previous = current["secret_sealed"] or vault.seal(str(current["secret"]), context=context)
    secret = new_secret()
    await q.update_secret(
        conn,
        endpoint_id=endpoint.id,
        sealed=vault.seal(secret, context=context),
        previous_sealed=previous,
        overlap=overlap,
    )
    after = await get_endpoint(conn, endpoint_id=endpoint.id)
    await _event(conn, after, kind="endpoint.secret_rotated", actor_id=actor_id)
    return CreatedEndpoint(endpoint=after, secret=secret)


async def delete_endpoint(
    conn: asyncpg.Connection,
    *,
    endpoint_id: UUID,
    actor_id: UUID | None,
    visible_to: UUID | None = None,
) -> None:
    """Delete an endpoint: its pending notices are failed, its record of them is kept."""
    endpoint = await get_endpoint(conn, endpoint_id=endpoint_id, visible_to=visible_to)
    if await q.delete_endpoint(conn, endpoint_id=endpoint.id):
        await _event(conn, endpoint, kind="endpoint.deleted", actor_id=actor_id)


async def disable_endpoint(conn: asyncpg.Connection, *, endpoint_id: UUID, reason: str) -> bool:
    """Disable an endpoint on the receiver's word (410 Gone); False if it already was."""
    before = await get_endpoint(conn, endpoint_id=endpoint_id)
    if not await q.disable_endpoint(conn, endpoint_id=endpoint_id, reason=reason):
        return False
    after = await get_endpoint(conn, endpoint_id=endpoint_id)
    await _event(conn, after, kind="endpoint.disabled", actor_id=None, before=before)
    return True
