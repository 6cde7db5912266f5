"""A platform's delivery log: what became of each delivery (accepted, duplicate or rejected,
and why), and each accepted delivery as received."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import deliveries as q
from service.db.queries import events as events_q
from service.errors import NotFound
from service.schemas.webhooks import DeliveryLogEntry, DeliveryOutcome, StoredDelivery

__all__ = ["get_delivery", "list_deliveries"]


async def list_deliveries(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID,
    outcome: DeliveryOutcome | None,
    before: UUID | None,
    limit: int,
) -> list[DeliveryLogEntry]:
    """The platform's log, newest first, from before the entry ``before``."""
    rows = await q.select_log(
        conn, platform_id=platform_id, outcome=outcome, before=before, limit=limit
    )
    return [msgspec.convert(dict(row), DeliveryLogEntry) for row in rows]


async def get_delivery(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID,
    platform_slug: str,
    delivery_id: str,
    hide_reports: bool = False,
) -> StoredDelivery:
    """One accepted delivery with its raw body and headers and its ledger events.

    ``hide_reports``: a delivery that reported an incident looks absent (it names the
    reporting platform, which auditors are not shown)."""
    row = await q.select_delivery(conn, platform_id=platform_id, delivery_id=delivery_id)
    absent = NotFound(f"no accepted delivery {delivery_id!r} from {platform_slug!r}")
    if row is None:
        raise absent
    if hide_reports and await events_q.any_incident_event(conn, seqs=list(row["events"])):
        raise absent
    record = dict(row)
    record["body"] = bytes(record["body"]).decode("utf-8")
    return msgspec.convert(record, StoredDelivery)
