"""The outbox: notices to platforms, written in the transaction of the change they announce.

A notice goes to every endpoint of the platform subscribed to its event type, as one row
per endpoint. Its id is the ``webhook-id`` of every attempt to deliver it, and its body is
rebuilt byte for byte from the stored payload each time, so a receiver can drop a copy it
has already processed. The delivery worker (``service.domain.delivery_worker``) sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import endpoints as eq
from service.db.queries import outbox as q
from service.domain.ledger import record_event, to_state
from service.errors import Conflict, NotFound
from service.schemas.endpoints import Attempt, Endpoint, Notification

__all__ = [
    "encode_body",
    "enqueue",
    "get_notification",
    "list_attempts",
    "list_attempts_of",
    "list_notifications",
    "redeliver",
    "send_test_notice",
]

_encoder = msgspec.json.Encoder()


def encode_body(*, message_id: UUID, event_type: str, created_at: datetime, payload: Any) -> bytes:
    """The Standard Webhooks payload: ``{"type", "timestamp", "data"}``, plus the notice id."""
    return _encoder.encode(
        {"type": event_type, "timestamp": created_at, "id": message_id, "data": payload}
    )


async def enqueue(
    conn: asyncpg.Connection,
    *,
    event_type: str,
    decommission_id: UUID | None,
    platform_ids: list[UUID],
    payload_for: Callable[[UUID], dict[str, Any]],
) -> list[UUID]:
    """Queue one notice per subscribed endpoint of each platform; returns the notice ids."""
    if not platform_ids:
        return []
    endpoints = await eq.select_subscribed(
        conn, platform_ids=list(dict.fromkeys(platform_ids)), event_type=event_type
    )
    return await q.insert_messages(
        conn,
        event_type=event_type,
        decommission_id=decommission_id,
        endpoint_ids=[e["id"] for e in endpoints],
        platform_ids=[e["platform_id"] for e in endpoints],
        payloads=[payload_for(e["platform_id"]) for e in endpoints],
    )


async def get_notification(
    conn: asyncpg.Connection, *, message_id: UUID, visible_to: UUID | None = None
) -> Notification:
    row = await q.select_message(conn, message_id=message_id, platform_id=visible_to)
    if row is None:
        raise NotFound(f"no notification {message_id}")
    return msgspec.convert(dict(row), Notification)


async def list_notifications(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID | None,
    endpoint_id: UUID | None = None,
    decommission_id: UUID | None = None,
    status: str | None = None,
    after: UUID | None = None,
    limit: int,
) -> list[Notification]:
    rows = await q.select_messages(
        conn,
        platform_id=platform_id,
        endpoint_id=endpoint_id,
        decommission_id=decommission_id,
        status=status,
        after=after,
        limit=limit,
    )
    return [msgspec.convert(dict(r), Notification) for r in rows]


async def list_attempts(
    conn: asyncpg.Connection,
    *,
    message_id: UUID,
    visible_to: UUID | None = None,
    after: UUID | None = None,
    limit: int,
) -> list[Attempt]:
    await get_notification(conn, message_id=message_id, visible_to=visible_to)
    rows = await q.select_attempts(conn, message_id=message_id, after=after, limit=limit)
    return [msgspec.convert(dict(r), Attempt) for r in rows]


async def list_attempts_of(
    conn: asyncpg.Connection, *, notifications: list[Notification], limit: int
) -> dict[UUID, list[Attempt]]:
    """The first ``limit`` attempts of each of ``notifications`` (already read, so already
    seen to be the reader's), in one query rather than two per notification."""
    found: dict[UUID, list[Attempt]] = {n.id: [] for n in notifications}
    rows = await q.select_attempts_of(conn, message_ids=list(found), limit=limit)
    for r in rows:
        found[r["message_id"]].append(msgspec.convert(dict(r), Attempt))
    return found


async def redeliver(
    conn: asyncpg.Connection,
    *,
    message_id: UUID,
    actor_id: UUID | None,
    visible_to: UUID | None = None,
) -> Notification:
    """Queue a notice again, now, with a fresh retry schedule and the same ``webhook-id``.

    Waits for a worker that is sending it to finish, so the two never overlap.
    """
    row = await q.select_message(
        conn, message_id=message_id, platform_id=visible_to, for_update=True
    )
    if row is None:
        raise NotFound(f"no notification {message_id}")
    if await eq.select_endpoint(conn, endpoint_id=row["endpoint_id"], platform_id=None) is None:
        raise Conflict(f"the endpoint of notification {message_id} was deleted")
    await q.redeliver(conn, message_id=message_id)
    notification = await get_notification(conn, message_id=message_id)
    await record_event(
        conn,
        stage="respond",
        kind="notification.redelivery_requested",
        subject_type="notification",
        subject_id=message_id,
        platform_id=notification.platform_id,
        actor_id=actor_id,
        state=to_state(notification),
    )
    return notification


async def send_test_notice(
    conn: asyncpg.Connection, *, endpoint: Endpoint, actor_id: UUID | None
) -> Notification:
    """Queue an ``endpoint.test`` notice for one endpoint, signed and retried like any other.

    Its attempts (``/v1/notifications/{id}/attempts``) show whether the receiver works. One
    test notice at a time per endpoint: while one is pending, ask for its redelivery.
    The caller holds the endpoint's row lock, so two requests cannot both queue one.
    """
    if endpoint.disabled_at is not None:
        raise Conflict(f"endpoint {endpoint.id} is disabled: enable it to receive a test notice")
    pending = await q.select_pending_test(conn, endpoint_id=endpoint.id)
    if pending is not None:
        raise Conflict(
            f"test notice {pending} to this endpoint is still pending: "
            "redeliver it, or wait for it to be delivered"
        )
    payload: dict[str, Any] = {
        "endpoint_id": str(endpoint.id),
        "platform": endpoint.platform,
        "url": endpoint.url,
        "note": "A test notice the platform asked for; there is nothing to act on.",
    }
    (message_id,) = await q.insert_messages(
        conn,
        event_type="endpoint.test",
        decommission_id=None,
        endpoint_ids=[endpoint.id],
        platform_ids=[endpoint.platform_id],
        payloads=[payload],
    )
    notification = await get_notification(conn, message_id=message_id)
    await record_event(
        conn,
        stage="respond",
        kind="notification.test_requested",
        subject_type="notification",
        subject_id=message_id,
        platform_id=endpoint.platform_id,
        actor_id=actor_id,
        state=to_state(notification),
    )
    return notification
