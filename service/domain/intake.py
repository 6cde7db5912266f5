"""Webhook intake: turning a verified delivery into records and ledger events, once.

A delivery is claimed by inserting its id under the platform's UNIQUE constraint
(``INSERT ... ON CONFLICT DO NOTHING``), never by looking first. A copy that finds the id
taken writes nothing: it is a duplicate if its body hashes the same, a conflict otherwise.
A delivery refused for what it says (a download batch naming a model the platform does not
host, say) rolls back with its claim, so its id stays free for the corrected resend.
Every ledger event a delivery produces carries a link back to the stored delivery, whose
row keeps the raw body and headers and lists those events' sequence numbers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import deliveries as q
from service.domain import hostings, incidents, models
from service.domain.decommission_targets import record_confirmation
from service.domain.times import check_claimed
from service.errors import Conflict, Forbidden, InvalidInput, NotFound
from service.schemas.hostings import Hosting, HostingIn, HostingPatch, HostingStatus
from service.schemas.models import ModelIn
from service.schemas.webhooks import (
    DecommissionExecuted,
    DeliveryAck,
    IncidentReported,
    ModelDownloads,
    ModelHosted,
    ModelHostedData,
    ModelRemoved,
    ModelRenamed,
    ModelRestricted,
    ModelUpdated,
    ModelUpdatedData,
    WebhookMessage,
)

__all__ = ["Delivery", "ingest", "link", "log_refusal", "patch_of"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified delivery, as received."""

    platform_id: UUID
    platform_slug: str
    source: str
    delivery_id: str
    event_type: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Context:
    platform_id: UUID
    platform_slug: str
    link: dict[str, Any]


async def ingest(
    conn: asyncpg.Connection, *, delivery: Delivery, messages: Sequence[WebhookMessage]
) -> DeliveryAck:
    """Claim the delivery id and apply its messages, in the caller's transaction."""
    digest = hashlib.sha256(delivery.body).digest()
    row_id = await q.claim_delivery(
        conn,
        platform_id=delivery.platform_id,
        delivery_id=delivery.delivery_id,
        source=delivery.source,
        event_type=delivery.event_type,
        body_sha256=digest,
        body=delivery.body,
        headers=delivery.headers,
    )
    if row_id is None:
        existing = await q.select_claimed(
            conn, platform_id=delivery.platform_id, delivery_id=delivery.delivery_id
        )
        if existing is None:  # pragma: no cover - a claimed id is never deleted
            raise Conflict("the delivery id is being processed; retry")
        if bytes(existing["body_sha256"]) != digest:
            raise Conflict(
                f"delivery {delivery.delivery_id!r} was accepted before with a different body"
            )
        return DeliveryAck(
            delivery_id=delivery.delivery_id, duplicate=True, events=list(existing["events"])
        )
    ctx = _Context(
        platform_id=delivery.platform_id,
        platform_slug=delivery.platform_slug,
        link=link(delivery, row_id),
    )
    seqs: list[int] = []
    for message in messages:
        seqs += await _apply(conn, ctx, message)
    if seqs:
        await q.set_delivery_events(conn, row_id=row_id, events=seqs)
    return DeliveryAck(delivery_id=delivery.delivery_id, duplicate=False, events=seqs)


def patch_of(
    message: ModelUpdated | ModelHosted | ModelRemoved | ModelRestricted, link: dict[str, Any]
) -> tuple[HostingPatch, dict[str, Any]]:
    """What a message changes in a hosting the platform records, and the extra its event
    carries: the one rule for both the regular path and the batch."""
    if isinstance(message, ModelUpdated):
        return _update_patch(message), link
    if isinstance(message, ModelHosted):
        # Hosted again (or re-announced): only the fields sent change; an explicit null clears.
        patch = HostingPatch(
            **{name: getattr(message.data, name) for name in _HOSTED_FIELDS},
            status="hosted",
            occurred_at=message.timestamp,
        )
        return patch, link
    status: HostingStatus = "removed" if isinstance(message, ModelRemoved) else "restricted"
    patch = HostingPatch(status=status, occurred_at=message.timestamp)
    return patch, {**link, "reason": message.data.reason}


def link(delivery: Delivery, row_id: UUID) -> dict[str, Any]:
    """What every ledger event of a delivery carries: the way back to the stored delivery."""
    return {
        "delivery": {
            "id": str(row_id),
            "delivery_id": delivery.delivery_id,
            "source": delivery.source,
        }
    }


async def log_refusal(
    conn: asyncpg.Connection,
    *,
    platform_id: UUID,
    source: str,
    delivery_id: str | None,
    outcome: str,
    status: int,
    reason: str,
    event_type: str | None,
) -> None:
    """Note a delivery that wrote nothing, so the platform can see why in its log."""
    await q.insert_rejection(
        conn,
        platform_id=platform_id,
        delivery_id=None if delivery_id is None else delivery_id[:200],
        source=source,
        outcome=outcome,
        status=status,
        reason=reason[:2000],
        event_type=None if event_type is None else event_type[:100],
    )


async def _apply(conn: asyncpg.Connection, ctx: _Context, message: WebhookMessage) -> list[int]:
    if isinstance(message, ModelHosted):
        return await _hosted(conn, ctx, message)
    if isinstance(message, ModelUpdated):
        return await _updated(conn, ctx, message)
    if isinstance(message, ModelRemoved | ModelRestricted):
        _own(ctx, message.data.platform)
        hosting = await _own_hosting(conn, ctx, model=message.data.model)
        return (await _patch(conn, hosting, *patch_of(message, ctx.link)))[1]
    if isinstance(message, ModelDownloads):
        _own(ctx, message.data.platform)
        return await _downloads(conn, ctx, message)
    if isinstance(message, ModelRenamed):
        return await _renamed(conn, ctx, message)
    if isinstance(message, DecommissionExecuted):
        return await _decommission_executed(conn, ctx, message)
    if isinstance(message, IncidentReported):
        return await _incident_reported(conn, ctx, message)
    raise InvalidInput(f"events of this type are not accepted: {type(message).__name__}")


def _own(ctx: _Context, platform: str | None) -> None:
    if platform is not None and platform != ctx.platform_slug:
        raise Forbidden("a platform may only write about its own hostings")


async def _find_hosting(conn: asyncpg.Connection, ctx: _Context, *, model: str) -> Hosting | None:
    """The platform's hosting of ``model``, locked for the change about to be made."""
    return await hostings.lock_hosting_of(conn, platform_id=ctx.platform_id, model=model)


async def _own_hosting(conn: asyncpg.Connection, ctx: _Context, *, model: str) -> Hosting:
    hosting = await _find_hosting(conn, ctx, model=model)
    if hosting is None:
        raise _no_hosting(model)
    return hosting


def _no_hosting(model: str) -> InvalidInput:
    return InvalidInput(f"this platform records no hosting of {model!r}", key="model")


async def _patch(
    conn: asyncpg.Connection, hosting: Hosting, patch: HostingPatch, extra: dict[str, Any]
) -> tuple[Hosting, list[int]]:
    after, seq = await hostings.apply_patch(
        conn, before=hosting, patch=patch, actor_id=None, extra=extra
    )
    return after, [] if seq is None else [seq]


async def _downloads(conn: asyncpg.Connection, ctx: _Context, message: ModelDownloads) -> list[int]:
    """All the counts in a few statements: lock the hostings (in name order, as every path
    that locks several does), write them, append their events. A model named more than
    once takes its counts in the order given, one round per repetition."""
    counts_given = message.data.counts
    found = await hostings.lock_hostings_of(
        conn, platform_id=ctx.platform_id, models=sorted({c.model for c in counts_given})
    )
    refused = [(i, c.model) for i, c in enumerate(counts_given) if c.model not in found]
    if refused:
        # The whole batch is refused, and its delivery id left unclaimed: the platform
        # resends the corrected batch (or this one, once the hostings exist) under the
        # same webhook-id.
        raise InvalidInput(
            f"{len(refused)} of {len(counts_given)} counts name a model this platform "
            "records no hosting of; nothing was written: "
            + ", ".join(f"counts[{i}] {model!r}" for i, model in refused[:20])
            + (" ..." if len(refused) > 20 else ""),
            errors=[
                (f"data.counts[{i}].model", f"this platform records no hosting of {model!r}")
                for i, model in refused
            ],
        )
    rounds: list[dict[str, int]] = []
    for count in counts_given:
        # One hosting once per round: names differing only in case are one model.
        fresh = next((r for r in rounds if count.model.lower() not in {k.lower() for k in r}), None)
        if fresh is None:
            rounds.append(fresh := {})
        fresh[count.model] = count.downloads
    seqs: list[int] = []
    for n, counts in enumerate(rounds):
        names = sorted(counts)
        # The first round writes the hostings as locked above; a later one reads them again.
        locked = (
            found
            if n == 0
            else await hostings.lock_hostings_of(conn, platform_id=ctx.platform_id, models=names)
        )
        written = await hostings.apply_patches(
            conn,
            changes=[
                (
                    locked[name],
                    HostingPatch(downloads=counts[name], occurred_at=message.timestamp),
                    ctx.link,
                )
                for name in names
            ],
            actor_id=None,
        )
        seqs += [seq for seq in written if seq is not None]
    return seqs


async def _renamed(conn: asyncpg.Connection, ctx: _Context, message: ModelRenamed) -> list[int]:
    """The hosting named ``model`` (or, failing that, known by ``external_id``) takes the
    new name and URL; renaming it to the name it has already changes nothing. A rename of
    a hosting the platform does not record is refused, unless a hub's own webhook sent it."""
    data = message.data
    _own(ctx, data.platform)
    hosting = await _find_hosting(conn, ctx, model=data.model)
    if hosting is None and data.external_id is not None:
        hosting = await hostings.lock_hosting_by_external_id(
            conn, platform_id=ctx.platform_id, external_id=data.external_id
        )
    if hosting is None:
        hosting = await _find_hosting(conn, ctx, model=data.name)
    if hosting is None:
        if ctx.link["delivery"]["source"] == "standard":
            raise _no_hosting(data.model)
        # A hub's own webhooks cover every repository of an owner: one the registry has not
        # heard of yet is recorded under its new name, as the hub's other events would.
        fields = {"model": data.name, "url": data.url, "external_id": data.external_id}
        update = ModelUpdated(
            timestamp=message.timestamp, data=msgspec.convert(fields, ModelUpdatedData)
        )
        return await _updated(conn, ctx, update)
    _, seq = await hostings.rename_hosting(
        conn,
        before=hosting,
        name=data.name,
        url=data.url,
        external_id=data.external_id,
        occurred_at=message.timestamp,
        actor_id=None,
        extra=ctx.link,
    )
    return [] if seq is None else [seq]


async def _ensure_model(
    conn: asyncpg.Connection, ctx: _Context, *, name: str, base: str | None, at: datetime
) -> list[int]:
    """Register ``name`` (and its base) if the registry does not know it yet."""
    seqs: list[int] = []
    if await _model_exists(conn, name):
        return seqs
    if base is not None and base.lower() != name.lower():
        seqs += await _ensure_model(conn, ctx, name=base, base=None, at=at)
    try:
        _, seq = await models.register_model(
            conn,
            data=ModelIn(
                name=name, base_model=base if base and base.lower() != name.lower() else None
            ),
            actor_id=None,
            platform_id=ctx.platform_id,
            occurred_at=at,
        )
    except Conflict:
        # Registered by a concurrent delivery that committed first: that is fine.
        return seqs
    return [*seqs, seq]


async def _model_exists(conn: asyncpg.Connection, name: str) -> bool:
    try:
        await models.resolve_model_id(conn, name=name, role="model")
    except InvalidInput:
        return False
    return True


async def _create_hosting(conn: asyncpg.Connection, ctx: _Context, data: HostingIn) -> list[int]:
    _, seq = await hostings.record_hosting(
        conn, data=data, platform_id=ctx.platform_id, actor_id=None, extra=ctx.link
    )
    return [seq]


async def _hosted(conn: asyncpg.Connection, ctx: _Context, message: ModelHosted) -> list[int]:
    data = message.data
    _own(ctx, data.platform)
    # The hosting first: one the platform renamed is named by it, not by its model.
    existing = await _find_hosting(conn, ctx, model=data.model)
    seqs: list[int] = []
    if existing is None:
        seqs = await _ensure_model(
            conn, ctx, name=data.model, base=data.base_model, at=message.timestamp
        )
        hosting_in = _new_hosting(data, _HOSTED_FIELDS, at=message.timestamp)
        return seqs + await _create_hosting(conn, ctx, hosting_in)
    return seqs + (await _patch(conn, existing, *patch_of(message, ctx.link)))[1]


#: What a ``model.hosted`` may say about the hosting, besides its model.
_HOSTED_FIELDS = (
    "url",
    "external_id",
    "revision",
    "licence",
    "gated",
    "downloads",
    "documentation",
)


def _new_hosting(
    data: ModelHostedData | ModelUpdatedData, names: Sequence[str], *, at: datetime
) -> HostingIn:
    """A new hosting from the fields a message gives; an omitted one takes its default."""
    fields = {
        name: getattr(data, name)
        for name in names
        if name != "documentation" and getattr(data, name) is not msgspec.UNSET
    }
    if data.documentation is not msgspec.UNSET:
        fields["documentation"] = {
            k: v
            for k, v in msgspec.structs.asdict(data.documentation).items()
            if v is not msgspec.UNSET
        }
    hosting_in = msgspec.convert({**msgspec.to_builtins(fields), "model": data.model}, HostingIn)
    return msgspec.structs.replace(hosting_in, occurred_at=at)


_PATCH_FIELDS = (
    "url",
    "external_id",
    "revision",
    "licence",
    "gated",
    "disabled",
    "status",
    "downloads",
    "documentation",
)


async def _updated(conn: asyncpg.Connection, ctx: _Context, message: ModelUpdated) -> list[int]:
    data = message.data
    _own(ctx, data.platform)
    existing = await _find_hosting(conn, ctx, model=data.model)
    if existing is None:
        if data.url is msgspec.UNSET:
            raise InvalidInput(
                f"this platform records no hosting of {data.model!r}; send model.hosted first",
                key="model",
            )
        seqs = await _ensure_model(conn, ctx, name=data.model, base=None, at=message.timestamp)
        hosting_in = _new_hosting(data, _PATCH_FIELDS, at=message.timestamp)
        return seqs + await _create_hosting(conn, ctx, hosting_in)
    return (await _patch(conn, existing, *patch_of(message, ctx.link)))[1]


def _update_patch(message: ModelUpdated) -> HostingPatch:
    """What a ``model.updated`` changes in a hosting that exists: the fields it gives."""
    return HostingPatch(
        **{name: getattr(message.data, name) for name in _PATCH_FIELDS},
        occurred_at=message.timestamp,
    )


async def _decommission_executed(
    conn: asyncpg.Connection, ctx: _Context, message: DecommissionExecuted
) -> list[int]:
    data = message.data
    hosting = await _own_hosting(conn, ctx, model=data.model)
    executed_at = check_claimed(data.executed_at or message.timestamp, key="executed_at")
    record, seqs = await _patch(
        conn,
        hosting,
        HostingPatch(status=data.outcome, occurred_at=executed_at),
        {**ctx.link, "decision_id": str(data.decision_id)},
    )
    try:
        confirmed = await record_confirmation(
            conn,
            decision_id=data.decision_id,
            platform_id=ctx.platform_id,
            model_id=record.model_id,
            outcome=data.outcome,
            occurred_at=executed_at,
            actor_id=None,
        )
    except NotFound as exc:
        raise InvalidInput(
            f"no decommission decision {data.decision_id}", key="decision_id"
        ) from exc
    except InvalidInput as exc:
        if exc.extra.get("key") != "decision_id":
            raise  # e.g. an outcome that does not carry out what was asked, or a bad time
        # The decision exists but is not about this platform's hosting of the model.
        raise Forbidden(exc.detail) from exc
    return [*seqs, *confirmed]


async def _incident_reported(
    conn: asyncpg.Connection, ctx: _Context, message: IncidentReported
) -> list[int]:
    _, seq = await incidents.record_incident(
        conn,
        data=message.data,
        channel="webhook",
        reporter_platform_id=ctx.platform_id,
        reporter_principal_id=None,
        actor_id=None,
        extra=ctx.link,
    )
    return [seq]
