"""Audit grants: an admin lets an auditor principal see named components of one model for a
time window ``[valid_from, valid_until)``, until it ends or is revoked.

Outside an active grant an auditor sees a model's *public metadata* only: its name,
provider, modalities, tasks, base model and derivation, and the openness level of each
component (see ``PublicModel``). Inside one it also sees, per granted component:

* ``weights``, ``code``, ``data``: where each platform hosts the model (URL, revision,
  external id, licence, gating);
* ``documentation``: the documentation evidence each platform holds (model card, safety
  testing, risk analysis, use guidance);

and, with any component granted, the incidents on the model (without who reported them),
and it may record audits of the model covering the granted components.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import grants as q
from service.domain.hostings import list_hostings
from service.domain.ledger import record_event, to_state
from service.domain.models import get_model, resolve_model_id
from service.errors import Conflict, InvalidInput, NotFound
from service.schemas.audits import (
    AuditGrant,
    AuditGrantIn,
    HostingAccess,
    ModelAccess,
    PublicModel,
)
from service.schemas.keys import Principal

__all__ = [
    "active_components",
    "active_model_ids",
    "create_grant",
    "get_grant",
    "get_model_access",
    "list_grants",
    "revoke_grant",
]

_LOCATION_COMPONENTS = frozenset({"weights", "code", "data"})


async def create_grant(
    conn: asyncpg.Connection, *, data: AuditGrantIn, actor_id: UUID
) -> AuditGrant:
    role = await q.select_principal_role(conn, principal_id=data.auditor_id)
    if role != "auditor":
        raise InvalidInput("grants are for auditor principals", key="auditor_id")
    model_id = await resolve_model_id(conn, name=data.model, role="model")
    valid_from = data.valid_from or datetime.now(UTC)
    if data.valid_until <= valid_from:
        raise InvalidInput("valid_until must be after valid_from", key="valid_until")
    grant_id = await q.insert_grant(
        conn,
        auditor_id=data.auditor_id,
        model_id=model_id,
        components=sorted(set(data.components)),
        valid_from=valid_from,
        valid_until=data.valid_until,
        granted_by=actor_id,
    )
    grant = await get_grant(conn, grant_id=grant_id)
    await record_event(
        conn,
        stage="detect",
        kind="audit_grant.created",
        subject_type="audit_grant",
        subject_id=grant.id,
        model_id=grant.model_id,
        actor_id=actor_id,
        state=to_state(grant),
    )
    return grant


def _own_grants(caller: Principal | None) -> UUID | None:
    """An auditor sees its own grants only (its id); admins and regulators see them all."""
    return caller.id if caller is not None and caller.role == "auditor" else None


async def get_grant(
    conn: asyncpg.Connection, *, grant_id: UUID, visible_to: Principal | None = None
) -> AuditGrant:
    """One grant, if the caller (``visible_to``) may see it."""
    row = await q.select_grant(conn, grant_id=grant_id, auditor_id=_own_grants(visible_to))
    if row is None:
        raise NotFound(f"no audit grant {grant_id}")
    return msgspec.convert(dict(row), AuditGrant)


async def list_grants(
    conn: asyncpg.Connection,
    *,
    visible_to: Principal | None = None,
    auditor_id: UUID | None,
    model_id: UUID | None,
    active_at: datetime | None,
    after: UUID | None,
    limit: int,
) -> list[AuditGrant]:
    """Grants matching the filters; an auditor (``visible_to``) lists its own, whatever it
    asks for."""
    rows = await q.select_grants(
        conn,
        auditor_id=_own_grants(visible_to) or auditor_id,
        model_id=model_id,
        active_at=active_at,
        after=after,
        limit=limit,
    )
    return [msgspec.convert(dict(row), AuditGrant) for row in rows]


async def revoke_grant(conn: asyncpg.Connection, *, grant_id: UUID, actor_id: UUID) -> AuditGrant:
    await get_grant(conn, grant_id=grant_id)
    if not await q.revoke_grant(conn, grant_id=grant_id, at=datetime.now(UTC)):
        raise Conflict("the grant is revoked already")
    grant = await get_grant(conn, grant_id=grant_id)
    await record_event(
        conn,
        stage="detect",
        kind="audit_grant.revoked",
        subject_type="audit_grant",
        subject_id=grant.id,
        model_id=grant.model_id,
        actor_id=actor_id,
        state=to_state(grant),
    )
    return grant


async def active_model_ids(
    conn: asyncpg.Connection, *, auditor_id: UUID, at: datetime
) -> list[UUID]:
    """Models the auditor holds an active grant for at ``at``."""
    return await q.select_active_model_ids(conn, auditor_id=auditor_id, at=at)


async def active_components(
    conn: asyncpg.Connection, *, auditor_id: UUID, model_id: UUID, at: datetime
) -> tuple[set[str], list[AuditGrant]]:
    """The components of ``model_id`` granted to the auditor at ``at``, and the grants."""
    rows = await q.select_active_grants(conn, auditor_id=auditor_id, model_id=model_id, at=at)
    grants = [msgspec.convert(dict(row), AuditGrant) for row in rows]
    return {c for g in grants for c in g.components}, grants


async def get_model_access(
    conn: asyncpg.Connection,
    *,
    model_id: UUID,
    visible_to: Principal,
    at: datetime,
) -> ModelAccess:
    """What the caller sees of a model: an auditor what its grants in force at ``at`` open,
    an admin or a regulator everything."""
    auditor_id = _own_grants(visible_to)
    model = await get_model(conn, model_id=model_id)
    public = PublicModel(
        id=model.id,
        name=model.name,
        provider=model.provider,
        modalities=model.modalities,
        tasks=model.tasks,
        base_model=model.base_model,
        derivation=model.derivation,
        openness=model.openness,
    )
    if auditor_id is None:
        components: set[str] = {"weights", "code", "data", "documentation"}
        grants: list[AuditGrant] = []
    else:
        components, grants = await active_components(
            conn, auditor_id=auditor_id, model_id=model_id, at=at
        )
    hostings: list[HostingAccess] = []
    if components:
        locations = bool(components & _LOCATION_COMPONENTS)
        documents = "documentation" in components
        for h in await list_hostings(conn, model_id=model_id, limit=1000):
            hostings.append(
                HostingAccess(
                    hosting_id=h.id,
                    platform=h.platform,
                    url=h.url if locations else None,
                    revision=h.revision if locations else None,
                    external_id=h.external_id if locations else None,
                    licence=h.licence if locations else None,
                    gated=h.gated if locations else None,
                    documentation=h.documentation if documents else None,
                )
            )
    return ModelAccess(
        model=public,
        components=sorted(components),  # type: ignore[arg-type]
        grants=grants,
        hostings=hostings,
    )
