"""Webhook signing secrets: issuing, listing and retiring them.

A platform may have several active secrets; each verifies, so a rotation is "create the
new one, switch the sender over, retire the old one" with no delivery refused meanwhile.
Functions taking ``visible_to`` (a platform principal's own platform id) act only on that
platform; another platform's slug is "not found", as if it did not exist.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import webhook_secrets as q
from service.domain.ledger import record_event, to_state
from service.domain.platforms import get_platform
from service.domain.vault import Vault, webhook_context
from service.errors import NotFound
from service.platforms.standard import new_secret
from service.schemas.secrets import CreatedWebhookSecret, WebhookSecret

__all__ = ["create_secret", "get_secret", "list_secrets", "retire_secret"]


async def create_secret(
    conn: asyncpg.Connection,
    *,
    slug: str,
    actor_id: UUID | None,
    vault: Vault,
    visible_to: UUID | None = None,
) -> CreatedWebhookSecret:
    """A new active secret for the platform; its text is returned here and nowhere else,
    and stored sealed (``vault``)."""
    platform = await get_platform(conn, slug=slug, visible_to=visible_to)
    secret = new_secret()
    secret_id = await q.insert_secret(
        conn,
        platform_id=platform.id,
        sealed=vault.seal(secret, context=webhook_context(platform.id)),
        hint=secret[:10],
    )
    record = await get_secret(conn, secret_id=secret_id, platform_id=platform.id)
    await record_event(
        conn,
        stage="prevent",
        kind="webhook_secret.created",
        subject_type="webhook_secret",
        subject_id=record.id,
        platform_id=platform.id,
        actor_id=actor_id,
        state=to_state(record),
    )
    return CreatedWebhookSecret(secret=secret, webhook_secret=record)


async def get_secret(
    conn: asyncpg.Connection, *, secret_id: UUID, platform_id: UUID
) -> WebhookSecret:
    row = await q.select_secret(conn, secret_id=secret_id, platform_id=platform_id)
    if row is None:
        raise NotFound(f"no signing secret {secret_id} for this platform")
    return msgspec.convert(dict(row), WebhookSecret)


async def list_secrets(
    conn: asyncpg.Connection, *, slug: str, include_retired: bool, visible_to: UUID | None = None
) -> list[WebhookSecret]:
    platform = await get_platform(conn, slug=slug, visible_to=visible_to)
    rows = await q.select_secrets(conn, platform_id=platform.id, include_retired=include_retired)
    return [msgspec.convert(dict(row), WebhookSecret) for row in rows]


async def retire_secret(
    conn: asyncpg.Connection,
    *,
    slug: str,
    secret_id: UUID,
    actor_id: UUID | None,
    visible_to: UUID | None = None,
) -> WebhookSecret:
    """Stop a secret verifying; retiring one already retired changes nothing."""
    platform = await get_platform(conn, slug=slug, visible_to=visible_to)
    before = await get_secret(conn, secret_id=secret_id, platform_id=platform.id)
    if not await q.retire_secret(conn, secret_id=secret_id, platform_id=platform.id):
        return before
    after = await get_secret(conn, secret_id=secret_id, platform_id=platform.id)
    await record_event(
        conn,
        stage="prevent",
        kind="webhook_secret.retired",
        subject_type="webhook_secret",
        subject_id=after.id,
        platform_id=platform.id,
        actor_id=actor_id,
        state=to_state(after),
    )
    return after
