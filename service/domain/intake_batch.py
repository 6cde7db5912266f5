"""Group-commit intake: many simple deliveries applied in one transaction, a few statements
for all of them.

A delivery is simple here when it only changes hostings the platform records: a single
``model.updated``, ``model.hosted``, ``model.removed`` or ``model.restricted`` of one
hosting, or a ``model.downloads`` batch naming each of its hostings once. Each makes the
same patches and ledger events as on the regular path (``intake.patch_of``, one download
count each in name order as ``intake`` writes them), so a platform cannot tell which path
took it. Anything less simple is left for the regular path (``intake.ingest``), where every
rule and every error answer lives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import intake as q
from service.domain import hostings
from service.domain.intake import Delivery, link, patch_of
from service.domain.ledger import NewEvent, event_row
from service.schemas.hostings import Hosting, HostingPatch
from service.schemas.webhooks import (
    DeliveryAck,
    ModelDownloads,
    ModelHosted,
    ModelRemoved,
    ModelRestricted,
    ModelUpdated,
    WebhookMessage,
)

__all__ = ["Batchable", "batchable", "ingest_batch"]

#: The messages a group commit may take: each changes hostings the platform records (one
#: it does not record yet is left to the regular path, which creates it or refuses).
Batchable = ModelUpdated | ModelHosted | ModelRemoved | ModelRestricted | ModelDownloads


def batchable(messages: Sequence[WebhookMessage]) -> Batchable | None:
    """The message of a delivery ``ingest_batch`` may take: a single ``model.updated``,
    ``model.hosted``, ``model.removed``, ``model.restricted`` or ``model.downloads``."""
    if len(messages) == 1 and isinstance(
        messages[0], ModelUpdated | ModelHosted | ModelRemoved | ModelRestricted | ModelDownloads
    ):
        return messages[0]
    return None


def _models(message: Batchable) -> list[str]:
    """The names of the hostings a message changes, as given."""
    if isinstance(message, ModelDownloads):
        return [count.model for count in message.data.counts]
    return [message.data.model]


def _changes(
    message: Batchable, found: list[Hosting], extra: dict[str, Any]
) -> list[tuple[Hosting, HostingPatch, dict[str, Any]]]:
    """The patches a simple message makes to its (locked) hostings, in the order the
    regular path writes them."""
    if isinstance(message, ModelDownloads):
        counts = {c.model: c.downloads for c in message.data.counts}
        by_name = dict(zip([c.model for c in message.data.counts], found, strict=True))
        return [
            (
                by_name[name],
                HostingPatch(downloads=counts[name], occurred_at=message.timestamp),
                extra,
            )
            for name in sorted(counts)
        ]
    return [(found[0], *patch_of(message, extra))]


async def ingest_batch(
    conn: asyncpg.Connection, batch: Sequence[tuple[Delivery, Batchable]]
) -> list[DeliveryAck | None]:
    """Apply many deliveries that only change hostings the platform records (``Batchable``)
    in the caller's transaction, with a few statements for all of them where ``ingest``
    takes several each: lock their hostings and claim their ids (one statement), write the
    hostings (through ``hostings.apply_patches``, which also flags a hosting hosted again
    under a decision in force), append the events and link them to the deliveries (one
    statement).

    Each delivery gets its acknowledgement, or None when it is not that simple here: one of
    its hostings does not exist yet, it names one hosting twice, an earlier delivery in the
    batch names one of its hostings, it names another platform, or its id was claimed
    before. Such a delivery is left untouched, for the caller to put through ``ingest`` on
    its own once this transaction has ended, so that every rule lives in one place.
    """
    # Which deliveries may be tried, before asking the database: each names its own
    # platform, a delivery id and hostings no earlier one names (hosting names are unique
    # per platform, in any case).
    candidates: list[tuple[int, Delivery, Batchable, list[str]]] = []
    ids: set[tuple[UUID, str]] = set()
    named: set[tuple[UUID, str]] = set()
    for i, (delivery, message) in enumerate(batch):
        platform = message.data.platform
        key = (delivery.platform_id, delivery.delivery_id)
        if key in ids or (platform is not None and platform != delivery.platform_slug):
            continue
        models = _models(message)
        folded = {(delivery.platform_id, model.lower()) for model in models}
        if len(folded) != len(models) or folded & named:
            continue  # a hosting named twice, or by an earlier delivery
        named |= folded
        ids.add(key)
        candidates.append((i, delivery, message, models))
    acks: list[DeliveryAck | None] = [None] * len(batch)
    if not candidates:
        return acks

    # One statement locks the hostings and claims the deliveries whose hostings all exist.
    rows = await q.claim_with_hostings(
        conn,
        names=[
            (n, d.platform_id, model)
            for n, (_, d, _, models) in enumerate(candidates)
            for model in models
        ],
        claims=[
            (
                n,
                d.platform_id,
                d.delivery_id,
                d.source,
                d.event_type,
                hashlib.sha256(d.body).digest(),
                d.body,
                d.headers,
            )
            for n, (_, d, _, _) in enumerate(candidates)
        ],
    )
    claimed: dict[int, UUID] = {}
    found: dict[tuple[int, str], Hosting] = {}
    now = None
    for row in rows:
        if row["row_id"] is not None:
            fields = dict(row)
            n, given, claimed[n] = fields.pop("member"), fields.pop("given"), fields.pop("row_id")
            now = fields.pop("at")
            found[n, given] = msgspec.convert(fields, Hosting)

    applied: list[tuple[int, Delivery, int]] = []  # with how many changes each makes
    changes: list[tuple[Hosting, HostingPatch, dict[str, Any] | None]] = []
    for n, (i, d, m, models) in enumerate(candidates):
        row_id = claimed.get(n)
        if row_id is None:
            continue  # a hosting missing, or delivered before: the regular path answers
        own_changes = _changes(m, [found[n, model] for model in models], link(d, row_id))
        applied.append((i, d, len(own_changes)))
        changes += own_changes
    if now is None:
        return acks

    async def write(
        rows: list[tuple[UUID, list[object]]], events: list[NewEvent]
    ) -> tuple[int, list[int]]:
        # The hostings, their events, and each delivery's list of them: one statement.
        return await q.write_batch(conn, hostings=rows, events=[event_row(e) for e in events])

    seqs = iter(
        await hostings.apply_patches_at(conn, changes=changes, now=now, actor_id=None, write=write)
    )
    for i, d, count in applied:
        events = [seq for seq in (next(seqs) for _ in range(count)) if seq is not None]
        acks[i] = DeliveryAck(delivery_id=d.delivery_id, duplicate=False, events=events)
    return acks
