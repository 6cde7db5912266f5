"""Decommission policies: versioned data that proposes decisions, never approves them.

A policy's ``conditions`` describe incidents (categories, minimum severity, seriousness,
harm types); when an incident matching an active policy reaches ``investigating``, a
decision is proposed for each of its models, citing the policy version and its clause. An
open decision under the same policy for the same model gains the incident instead of a
second proposal. A second admin still has to approve it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import decommissions as dq
from service.db.queries import models as models_q
from service.db.queries import policies as q
from service.domain import decommissions
from service.domain.ledger import record_event, to_state
from service.errors import Conflict, InvalidInput, NotFound
from service.schemas.decommissions import Decision, DecisionIn
from service.schemas.incidents import Incident
from service.schemas.policies import Policy, PolicyIn, PolicyPatch, PolicyVersionIn

__all__ = [
    "create_policy",
    "create_version",
    "get_policy",
    "list_policies",
    "matches",
    "propose_for_incident",
    "set_policy_active",
]

_SEVERITY = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def _policy(row: asyncpg.Record) -> Policy:
    return msgspec.convert(dict(row), Policy)


async def _event(
    conn: asyncpg.Connection, policy: Policy, *, kind: str, actor_id: UUID | None
) -> None:
    await record_event(
        conn,
        stage="respond",
        kind=kind,
        subject_type="decommission_policy",
        subject_id=policy.id,
        actor_id=actor_id,
        state=to_state(policy),
    )


def _values(data: PolicyIn | PolicyVersionIn, name: str) -> dict[str, Any]:
    if data.action == "deprecate" and data.sunset_after_days is None:
        raise InvalidInput("a deprecation policy needs sunset_after_days", key="sunset_after_days")
    if data.action == "licence_change" and data.new_licence is None:
        raise InvalidInput("a licence-change policy needs new_licence", key="new_licence")
    values = msgspec.structs.asdict(data)
    values["name"] = name
    values["conditions"] = msgspec.to_builtins(data.conditions)
    return values


async def create_policy(conn: asyncpg.Connection, *, data: PolicyIn, actor_id: UUID) -> Policy:
    """Version 1 of a new policy; a name already taken is a Conflict."""
    if await q.count_name(conn, name=data.name):
        raise Conflict(f"a policy named {data.name!r} exists; add a version to it instead")
    try:
        async with conn.transaction():
            row = await q.insert_policy(conn, values=_values(data, data.name), created_by=actor_id)
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"a policy named {data.name!r} exists") from exc
    policy = _policy(row)
    await _event(conn, policy, kind="policy.created", actor_id=actor_id)
    return policy


async def create_version(
    conn: asyncpg.Connection, *, name: str, data: PolicyVersionIn, actor_id: UUID
) -> Policy:
    """The next version of ``name``; it becomes the active one, the previous is retired."""
    await q.lock_name(conn, name=name)
    if not await q.count_name(conn, name=name):
        raise NotFound(f"no policy named {name!r}")
    for retired_id in await q.retire_active(conn, name=name):
        await _event(
            conn,
            await get_policy(conn, policy_id=retired_id),
            kind="policy.retired",
            actor_id=actor_id,
        )
    row = await q.insert_policy(conn, values=_values(data, name), created_by=actor_id)
    policy = _policy(row)
    await _event(conn, policy, kind="policy.versioned", actor_id=actor_id)
    return policy


async def get_policy(conn: asyncpg.Connection, *, policy_id: UUID) -> Policy:
    row = await q.select_policy(conn, policy_id=policy_id)
    if row is None:
        raise NotFound(f"no policy {policy_id}")
    return _policy(row)


async def list_policies(
    conn: asyncpg.Connection,
    *,
    name: str | None = None,
    active: bool | None = None,
    after: UUID | None = None,
    limit: int,
) -> list[Policy]:
    rows = await q.select_policies(conn, name=name, active=active, after=after, limit=limit)
    return [_policy(r) for r in rows]


async def set_policy_active(
    conn: asyncpg.Connection, *, policy_id: UUID, patch: PolicyPatch, actor_id: UUID
) -> Policy:
    """Retire a version, or make it the active one of its name again."""
    before = await get_policy(conn, policy_id=policy_id)
    if before.active == patch.active:
        return before
    if patch.active:
        for retired_id in await q.retire_active(conn, name=before.name):
            await _event(
                conn,
                await get_policy(conn, policy_id=retired_id),
                kind="policy.retired",
                actor_id=actor_id,
            )
    row = await q.set_active(conn, policy_id=policy_id, active=patch.active)
    if row is None:
        raise NotFound(f"no policy {policy_id}")
    policy = _policy(row)
    await _event(
        conn,
        policy,
        kind="policy.activated" if patch.active else "policy.retired",
        actor_id=actor_id,
    )
    return policy


def matches(policy: Policy, incident: Incident) -> bool:
    """Whether every condition of the policy holds for the incident."""
    c = policy.conditions
    if c.categories and incident.category not in c.categories:
        return False
    if c.min_severity is not None and _SEVERITY[incident.severity] < _SEVERITY[c.min_severity]:
        return False
    if c.serious is not None and incident.serious != c.serious:
        return False
    return not (c.harm_types and not set(c.harm_types) & set(incident.harm_types))


async def propose_for_incident(
    conn: asyncpg.Connection, *, incident_id: UUID, actor_id: UUID | None
) -> list[Decision]:
    """Propose a decision for each model of the incident under each active policy it
    matches; returns the decisions proposed (an open one it joined is not among them).

    Called in the transaction that moves the incident to ``investigating``. Never approves.
    """
    # Imported here: the incidents domain calls this function, so it cannot be imported
    # at module level without a cycle.
    from service.domain.incidents import get_incident

    incident = await get_incident(conn, incident_id=incident_id)
    proposed: list[Decision] = []
    now = datetime.now(UTC)
    for row in await q.select_active(conn):
        policy = _policy(row)
        if not matches(policy, incident):
            continue
        for model_id in incident.model_ids:
            model = await models_q.select_name(conn, model_id=model_id)
            if model is None:  # an incident's models are kept by a foreign key
                raise NotFound(f"no model {model_id}")
            open_id = await dq.select_open_for_policy(conn, policy_id=policy.id, model_id=model_id)
            if open_id is not None:
                linked = await dq.link_incidents(
                    conn, decision_id=open_id, incident_ids=[incident.id]
                )
                if linked.endswith(" 1"):
                    decision = await decommissions.get_decision(conn, decision_id=open_id)
                    await record_event(
                        conn,
                        stage="respond",
                        kind="decommission.incident_linked",
                        subject_type="decommission",
                        subject_id=open_id,
                        model_id=model_id,
                        actor_id=actor_id,
                        state=to_state(decision),
                        extra={"incident_id": str(incident.id), "policy_id": str(policy.id)},
                    )
                continue
            sunset = (
                None
                if policy.sunset_after_days is None
                else now + timedelta(days=policy.sunset_after_days)
            )
            data = DecisionIn(
                model=model,
                action=policy.action,
                reason=(
                    f"Policy {policy.name} v{policy.version} applies to incident "
                    f"{incident.ref}: {incident.title}"
                ),
                incident_ids=[incident.id],
                policy_id=policy.id,
                policy_clause=policy.clause,
                include_derivatives=policy.include_derivatives,
                effective_at=now,
                sunset_at=sunset,
                new_licence=policy.new_licence,
                prohibited_uses=policy.prohibited_uses,
            )
            proposed.append(
                await decommissions.propose_decision(
                    conn,
                    data=data,
                    actor_id=actor_id,
                    extra={
                        "policy": {
                            "id": str(policy.id),
                            "name": policy.name,
                            "version": policy.version,
                        }
                    },
                )
            )
    return proposed
