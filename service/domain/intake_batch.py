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

from service.db.queries import deliveries as q
from service.domain import hostings
from service.domain.intake import Delivery, link, patch_of
from service.domain.ledger import record_linked_events
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
    takes several each: lock their hostings, claim their ids, write the hostings (through
    ``hostings.apply_patches``, which also flags a hosting hosted again under a decision in
    force), append the events, link them to the deliveries.

    Each delivery gets its acknowledgement, or None when it is not that simple here: one of
    its hostings does not exist yet, it names one hosting twice, an earlier delivery in the
    batch names one of its hostings, it names another platform, or its id was claimed
    before. Such a delivery is left untouched, for the caller to put through ``ingest`` on
    its own once this transaction has ended, so that every rule lives in one place.
    """
    locked: dict[tuple[UUID, str], Hosting] = {}
    names: dict[UUID, set[str]] = {}
    for delivery, message in batch:
        names.setdefault(delivery.platform_id, set()).update(_models(message))
    for platform_id in sorted(names):  # platforms in one order, models in name order
        found = await hostings.lock_hostings_of(
            conn, platform_id=platform_id, models=sorted(names[platform_id])
        )
        locked.update({(platform_id, model): hosting for model, hosting in found.items()})

    taken: set[UUID] = set()
    ids: set[tuple[UUID, str]] = set()
    simple: list[tuple[int, Delivery, Batchable, list[Hosting]]] = []
    for i, (delivery, message) in enumerate(batch):
        platform = message.data.platform
        key = (delivery.platform_id, delivery.delivery_id)
        if key in ids or (platform is not None and platform != delivery.platform_slug):
            continue
        found_all = [locked.get((delivery.platform_id, model)) for model in _models(message)]
        own = {hosting.id for hosting in found_all if hosting is not None}
        if len(own) != len(found_all) or own & taken:
            continue  # a hosting missing, named twice, or written by an earlier member
        taken |= own
        ids.add(key)
        simple.append((i, delivery, message, [h for h in found_all if h is not None]))
    acks: list[DeliveryAck | None] = [None] * len(batch)
    if not simple:
        return acks

    claimed = await q.claim_deliveries(
        conn,
        [
            (
                d.platform_id,
                d.delivery_id,
                d.source,
                d.event_type,
                hashlib.sha256(d.body).digest(),
                d.body,
                d.headers,
            )
            for _, d, _, _ in simple
        ],
    )
    applied: list[tuple[int, Delivery, UUID, int]] = []  # with how many changes each makes
    changes: list[tuple[Hosting, HostingPatch, dict[str, Any] | None]] = []
    for i, d, m, found_hostings in simple:
        row_id = claimed.get((d.platform_id, d.delivery_id))
        if row_id is None:
            continue
        own_changes = _changes(m, found_hostings, link(d, row_id))
        applied.append((i, d, row_id, len(own_changes)))
        changes += own_changes
    # The events are linked to their deliveries as they are appended.
    seqs = iter(
        await hostings.apply_patches(
            conn, changes=changes, actor_id=None, append=record_linked_events
        )
    )
    for i, d, _, count in applied:
        events = [seq for seq in (next(seqs) for _ in range(count)) if seq is not None]
        acks[i] = DeliveryAck(delivery_id=d.delivery_id, duplicate=False, events=events)
    return acks
