"""Decommissioning decisions: proposal, four-eyes approval, notification, withdrawal.

Workflow (anything else is a Conflict)::

    proposed -> approved -> notified -> executed
    proposed | approved | notified -> withdrawn

Approval needs a second person (four-eyes; Forbidden otherwise): an admin who is not the
proposer, not a principal the proposer created (directly or through principals it
created), and not a principal created after the proposal. Every notice names who proposed
and who approved, with the ledger seqs of those two events. The
decision's targets are the hostings in its scope: of the model and, with derivatives
included, of every descendant, on the platforms named (or any). They are taken when the
decision is proposed and refreshed on approval and notification. What happens to them
after that (late targets, confirmations, overdue platforms) is in
``service.domain.decommission_targets``. Every step appends one ``respond`` ledger event
with the decision's full state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import audits as audits_q
from service.db.queries import decommissions as q
from service.db.queries import incidents as incidents_q
from service.db.queries import keys as keys_q
from service.db.queries import policies as policies_q
from service.domain import notices, outbox
from service.domain.as_of import state_as_of
from service.domain.decommission_impact import impact_of, resolve_platforms
from service.domain.ledger import diff, record_event, to_state
from service.domain.models import resolve_model_id
from service.errors import Conflict, Forbidden, InvalidInput, NotFound
from service.schemas.decommissions import Decision, DecisionIn, Target

__all__ = [
    "IN_FORCE",
    "TRANSITIONS",
    "add_targets",
    "approve_decision",
    "get_decision",
    "list_decisions",
    "notify_decision",
    "propose_decision",
    "record_decision_event",
    "withdraw_decision",
]

#: Decisions that platforms must follow: a hosting in their scope is told of them.
IN_FORCE = frozenset({"notified", "executed"})

TRANSITIONS: dict[str, frozenset[str]] = {
    "proposed": frozenset({"approved", "withdrawn"}),
    "approved": frozenset({"notified", "withdrawn"}),
    "notified": frozenset({"executed", "withdrawn"}),
    "executed": frozenset(),
    "withdrawn": frozenset(),
}


async def get_decision(
    conn: asyncpg.Connection,
    *,
    decision_id: UUID,
    visible_to: UUID | None = None,
    as_of: datetime | None = None,
    for_update: bool = False,
) -> Decision:
    """One decision; a platform (``visible_to``) sees only notified decisions targeting it.

    With ``as_of``, the decision, its targets and their confirmations as the registry
    recorded them then; a platform sees the past only of decisions it could see then.
    """
    if as_of is not None:
        then = await state_as_of(
            conn, subject_type="decommission", subject_id=decision_id, as_of=as_of, record=Decision
        )
        if then is None or not _visible(then, visible_to):
            raise NotFound(
                f"no decommission decision {decision_id} was recorded at {as_of.isoformat()}"
            )
        return _seen_by(then, visible_to)
    row = await q.select_decision(conn, decision_id=decision_id, for_update=for_update)
    if row is None:
        raise NotFound(f"no decommission decision {decision_id}")
    targets = [
        msgspec.convert(dict(t), Target)
        for t in await q.select_targets(conn, decision_id=decision_id)
    ]
    decision = msgspec.convert({**dict(row), "targets": targets}, Decision)
    if not _visible(decision, visible_to):
        raise NotFound(f"no decommission decision {decision_id}")
    return _seen_by(decision, visible_to)


def _seen_by(decision: Decision, platform_id: UUID | None) -> Decision:
    """The decision as a platform (``platform_id``) may read it: its own targets only, and of
    the platforms named in the scope only itself, so that other platforms' hosting ids and
    names do not leak. Other roles see it whole."""
    if platform_id is None:
        return decision
    return msgspec.structs.replace(
        decision,
        targets=[t for t in decision.targets if t.platform_id == platform_id],
        platform_ids=None
        if decision.platform_ids is None
        else [p for p in decision.platform_ids if p == platform_id],
    )


def _visible(decision: Decision, platform_id: UUID | None) -> bool:
    """Platforms see only notified decisions that target them; other roles see all."""
    return platform_id is None or (
        decision.notified_at is not None
        and any(t.platform_id == platform_id for t in decision.targets)
    )


async def list_decisions(
    conn: asyncpg.Connection,
    *,
    status: str | None = None,
    model_id: UUID | None = None,
    platform_id: UUID | None = None,
    after: UUID | None = None,
    limit: int,
    as_of: datetime | None = None,
) -> list[Decision]:
    """Decisions by filter; with ``as_of``, each as recorded then, leaving out those not
    proposed yet (the filters select by today's values)."""
    if as_of is not None:
        if as_of.tzinfo is None:
            raise InvalidInput("as_of must carry a time zone offset (RFC 3339)", key="as_of")
        # The list and each decision's state then in one statement.
        states = await q.select_decisions_as_of(
            conn,
            status=status,
            model_id=model_id,
            platform_id=platform_id,
            after=after,
            limit=limit,
            as_of=as_of,
        )
        then = [msgspec.convert(state, Decision) for state in states]
        return [_seen_by(d, platform_id) for d in then if _visible(d, platform_id)]
    # Every listed decision with its targets in one query, not one query (and a re-read) each.
    rows = await q.select_decisions_with_targets(
        conn, status=status, model_id=model_id, platform_id=platform_id, after=after, limit=limit
    )
    decisions = [msgspec.convert(dict(r), Decision) for r in rows]
    return [_seen_by(d, platform_id) for d in decisions if _visible(d, platform_id)]


async def record_decision_event(
    conn: asyncpg.Connection,
    decision: Decision,
    *,
    kind: str,
    actor_id: UUID | None,
    occurred_at: datetime | None = None,
    before: Decision | None = None,
    extra: dict[str, Any] | None = None,
) -> int:
    """Append the ``respond`` ledger event of a step, with the decision's full state."""
    return await record_event(
        conn,
        stage="respond",
        kind=kind,
        subject_type="decommission",
        subject_id=decision.id,
        model_id=decision.model_id,
        actor_id=actor_id,
        occurred_at=occurred_at,
        state=to_state(decision),
        changes=None if before is None else diff(to_state(before), to_state(decision)),
        extra=extra,
    )


#: A query returning which of the ids it is given name a record.
_Existing = Callable[..., Awaitable[set[UUID]]]


async def _check_exist(
    conn: asyncpg.Connection, existing: _Existing, ids: list[UUID], key: str
) -> None:
    if not ids:
        return
    found = await existing(conn, ids=ids)
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise InvalidInput(f"no such record: {', '.join(missing)}", key=key)


async def add_targets(conn: asyncpg.Connection, *, decision_id: UUID, late: bool) -> list[UUID]:
    """Add the hostings in the decision's scope that are not yet its targets; their ids."""
    rows = await q.select_scope_hostings(conn, decision_id=decision_id)
    return await q.insert_targets(conn, decision_id=decision_id, rows=rows, late=late)


async def propose_decision(
    conn: asyncpg.Connection,
    *,
    data: DecisionIn,
    actor_id: UUID | None,
    kind: str = "decommission.proposed",
    extra: dict[str, Any] | None = None,
) -> Decision:
    """Record a proposed decision and the hostings it would apply to now."""
    if data.action == "deprecate" and data.sunset_at is None:
        raise InvalidInput("a deprecation needs its sunset_at", key="sunset_at")
    if data.action == "licence_change" and data.new_licence is None:
        raise InvalidInput("a licence change needs its new_licence", key="new_licence")
    model_id = await resolve_model_id(conn, name=data.model, role="model")
    successor_id = None
    if data.successor_model is not None:
        successor_id = await resolve_model_id(
            conn, name=data.successor_model, role="successor_model"
        )
        if successor_id == model_id:
            raise InvalidInput("a model cannot succeed itself", key="successor_model")
    platform_ids = await resolve_platforms(conn, data.platforms)
    incident_ids = list(dict.fromkeys(data.incident_ids))
    finding_ids = list(dict.fromkeys(data.finding_ids))
    await _check_exist(conn, incidents_q.select_existing, incident_ids, "incident_ids")
    await _check_exist(conn, audits_q.select_existing_findings, finding_ids, "finding_ids")
    clause = data.policy_clause
    if data.policy_id is not None:
        policy_clause = await policies_q.select_clause(conn, policy_id=data.policy_id)
        if policy_clause is None:
            raise InvalidInput(f"no policy {data.policy_id}", key="policy_id")
        clause = clause or policy_clause
    now = datetime.now(UTC)
    decision_id = await q.insert_decision(
        conn,
        values={
            "model_id": model_id,
            "revisions": list(dict.fromkeys(data.revisions)),
            "action": data.action,
            "reason": data.reason,
            "policy_id": data.policy_id,
            "policy_clause": clause,
            "include_derivatives": data.include_derivatives,
            "platform_ids": platform_ids,
            "effective_at": data.effective_at or now,
            "sunset_at": data.sunset_at,
            "successor_model_id": successor_id,
            "old_licence": data.old_licence,
            "new_licence": data.new_licence,
            "prohibited_uses": data.prohibited_uses,
            "confirm_by": data.confirm_by,
            "proposed_by": actor_id,
        },
    )
    await q.link_incidents(conn, decision_id=decision_id, incident_ids=incident_ids)
    await q.link_findings(conn, decision_id=decision_id, finding_ids=finding_ids)
    await add_targets(conn, decision_id=decision_id, late=False)
    decision = await get_decision(conn, decision_id=decision_id)
    # The proposal's event records the reach the approver is asked to weigh.
    impact = msgspec.to_builtins(await impact_of(conn, decision))
    await record_decision_event(
        conn, decision, kind=kind, actor_id=actor_id, extra={**(extra or {}), "impact": impact}
    )
    return decision


def _check_move(decision: Decision, to: str) -> None:
    if to not in TRANSITIONS[decision.status]:
        raise Conflict(f"a decision that is {decision.status} cannot become {to}")


async def approve_decision(
    conn: asyncpg.Connection,
    *,
    decision_id: UUID,
    actor_id: UUID,
    impact_digest: str | None = None,
) -> Decision:
    """Approve a proposal: only a second person may (see the module's docstring). An
    approval quoting the digest of the impact it was shown is refused if the reach has
    changed since; the approval's event records the digest approved and whether it was
    quoted."""
    before = await get_decision(conn, decision_id=decision_id, for_update=True)
    _check_move(before, "approved")
    await _check_second_person(conn, before, actor_id)
    impact = await impact_of(conn, before)
    if impact_digest is not None and impact_digest != impact.digest:
        raise Conflict(
            f"the decision's impact has changed since it was shown: the approval quotes"
            f" {impact_digest}, the impact is now {impact.digest}; review"
            f" GET /v1/decommissions/{decision_id}/impact and approve again"
        )
    await q.update_status(
        conn,
        decision_id=decision_id,
        status="approved",
        approved_by=actor_id,
        approved_at=datetime.now(UTC),
    )
    await add_targets(conn, decision_id=decision_id, late=False)
    after = await get_decision(conn, decision_id=decision_id)
    await record_decision_event(
        conn,
        after,
        kind="decommission.approved",
        actor_id=actor_id,
        before=before,
        extra={"impact_digest": impact.digest, "impact_quoted": impact_digest is not None},
    )
    return after


async def _check_second_person(
    conn: asyncpg.Connection, decision: Decision, approver_id: UUID
) -> None:
    """Forbidden unless the approver is a second person, not the proposer in another key."""
    if decision.proposed_by == approver_id:
        raise Forbidden("a decision needs a second admin: its proposer may not approve it")
    origin = await keys_q.select_principal_origin(
        conn, principal_id=approver_id, maker_id=decision.proposed_by
    )
    if origin is None:
        raise Forbidden("a decision needs a second admin: the approver is not a principal")
    if origin["made_by"]:
        raise Forbidden(
            "a decision needs a second admin: the approver's key was created by its proposer"
            " (directly or through a principal the proposer created)"
        )
    if origin["created_at"] > decision.proposed_at:
        raise Forbidden(
            "a decision needs a second admin: the approver was created after the proposal"
        )


async def notify_decision(
    conn: asyncpg.Connection,
    *,
    decision_id: UUID,
    actor_id: UUID | None,
    confirm_within: timedelta,
) -> Decision:
    """Queue a notice to every platform with a target; they must confirm by ``confirm_by``."""
    before = await get_decision(conn, decision_id=decision_id, for_update=True)
    _check_move(before, "notified")
    now = datetime.now(UTC)
    await add_targets(conn, decision_id=decision_id, late=False)
    await q.update_status(
        conn,
        decision_id=decision_id,
        status="notified",
        notified_at=now,
        confirm_by=before.confirm_by or now + confirm_within,
    )
    after = await get_decision(conn, decision_id=decision_id)
    platforms = list(dict.fromkeys(t.platform_id for t in after.targets))
    parts = await notices.notice_parts(conn, after)
    queued = await outbox.enqueue(
        conn,
        event_type="decommission.notice",
        decommission_id=after.id,
        platform_ids=platforms,
        payload_for=lambda p: notices.notice_for(parts, p),
    )
    await record_decision_event(
        conn,
        after,
        kind="decommission.notified",
        actor_id=actor_id,
        before=before,
        extra={"notifications": [str(m) for m in queued]},
    )
    return after


async def withdraw_decision(
    conn: asyncpg.Connection, *, decision_id: UUID, reason: str, actor_id: UUID | None
) -> Decision:
    """Withdraw a decision; platforms already notified are told."""
    before = await get_decision(conn, decision_id=decision_id, for_update=True)
    _check_move(before, "withdrawn")
    await q.update_status(
        conn,
        decision_id=decision_id,
        status="withdrawn",
        withdrawn_at=datetime.now(UTC),
        withdrawn_by=actor_id,
        withdrawn_reason=reason,
    )
    after = await get_decision(conn, decision_id=decision_id)
    queued: list[UUID] = []
    if before.status == "notified":
        parts = await notices.notice_parts(conn, after)
        queued = await outbox.enqueue(
            conn,
            event_type="decommission.withdrawn",
            decommission_id=after.id,
            platform_ids=[t.platform_id for t in after.targets],
            payload_for=lambda p: notices.withdrawal_for(parts, p, reason=reason),
        )
    await record_decision_event(
        conn,
        after,
        kind="decommission.withdrawn",
        actor_id=actor_id,
        before=before,
        extra={"reason": reason, "notifications": [str(m) for m in queued]},
    )
    return after
