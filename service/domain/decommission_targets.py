"""A decision's targets after notification: hostings that come into its scope later, the
platforms' confirmations, and the platforms overdue with them.

While a decision is in force (notified, and still once executed), a hosting that comes
into its scope is added at once as a ``late`` target and its platform notified, and a
target whose hosting becomes ``hosted`` again after its platform confirmed is reopened as
late (``flag_hosted``, called from the one place a hosting's status is written), so a
recalled model hosted again is caught on every path. The decision is executed when every
target is confirmed; a late target added or reopened after that awaits its own
confirmation. A confirmation must carry out the action (``ACCEPTED_OUTCOMES``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import decommissions as q
from service.domain import notices, outbox
from service.domain.decommissions import (
    IN_FORCE,
    add_targets,
    get_decision,
    list_decisions,
    record_decision_event,
)
from service.domain.ledger import diff, record_event, to_state
from service.domain.times import check_claimed
from service.errors import Conflict, InvalidInput
from service.schemas.decommissions import Decision, OverduePlatform, Target

__all__ = [
    "ACCEPTED_OUTCOMES",
    "AwaitedConfirmation",
    "flag_hosted",
    "flag_new_hosting",
    "flag_untargeted",
    "list_awaited_confirmations",
    "list_overdue",
    "record_confirmation",
]


#: The confirmation outcomes that carry out each action: a recall is carried out only by
#: removing the model; the milder actions by restricting it, or by removing it.
ACCEPTED_OUTCOMES: dict[str, tuple[str, ...]] = {
    "recall": ("removed",),
    "restrict": ("restricted", "removed"),
    "licence_change": ("restricted", "removed"),
    "deprecate": ("restricted", "removed"),
}


async def _flag(
    conn: asyncpg.Connection,
    *,
    decision_id: UUID,
    actor_id: UUID | None,
    rehosted: Collection[UUID] = (),
) -> list[UUID]:
    """Add the decision's untargeted hostings in scope, and reopen the confirmed targets
    among ``rehosted`` (hostings that became ``hosted`` again), all as ``late`` targets;
    each platform concerned gets one notice listing all of its late hostings awaiting
    confirmation. Returns the hostings added or reopened."""
    before = await get_decision(conn, decision_id=decision_id, for_update=True)
    if before.status not in IN_FORCE:
        return []
    added = await add_targets(conn, decision_id=decision_id, late=True)
    reopened = await q.reopen_targets(conn, decision_id=decision_id, hosting_ids=list(rehosted))
    if not added and not reopened:
        return []
    after = await get_decision(conn, decision_id=decision_id)
    fresh = set(added) | set(reopened)
    platforms = list(dict.fromkeys(t.platform_id for t in after.targets if t.hosting_id in fresh))
    pending = {t.hosting_id for t in after.targets if t.late and t.confirmed_at is None}
    parts = await notices.notice_parts(conn, after)
    queued = await outbox.enqueue(
        conn,
        event_type="decommission.notice",
        decommission_id=after.id,
        platform_ids=platforms,
        payload_for=lambda p: notices.notice_for(parts, p, only=pending),
    )
    await record_decision_event(
        conn,
        after,
        kind="decommission.target_added",
        actor_id=actor_id,
        before=before,
        extra={
            "hosting_ids": [str(h) for h in added],
            "reopened_hosting_ids": [str(h) for h in reopened],
            "notifications": [str(m) for m in queued],
        },
    )
    return [*added, *reopened]


async def flag_hosted(
    conn: asyncpg.Connection,
    *,
    hostings: Sequence[tuple[UUID, UUID]],
    actor_id: UUID | None,
) -> list[UUID]:
    """Call whenever hostings, given as ``(hosting_id, model_id)``, were recorded or became
    ``hosted`` again, on whatever path: every decision in force (notified, or executed)
    covering one of their models, directly or as a descendant, takes them as ``late``
    targets: a hosting not yet its target is added, a target already confirmed is reopened
    and awaits a new confirmation. Each decision queues one notice per platform concerned.
    Returns the decisions' ids.

    An executed decision stays executed: its late targets await their own confirmation, and
    are overdue from the decision's deadline on, since a recalled model hosted again is out
    of compliance from the start."""
    by_model: dict[UUID, list[UUID]] = {}
    for hosting_id, model_id in hostings:
        by_model.setdefault(model_id, []).append(hosting_id)
    by_decision: dict[UUID, set[UUID]] = {}
    # One statement for all of them: a catalogue sync flags thousands at once.
    for row in await q.select_covering_many(conn, model_ids=list(by_model)):
        by_decision.setdefault(row["decision_id"], set()).update(by_model[row["model_id"]])
    flagged = []
    for decision_id in sorted(by_decision):  # one lock order for every path
        if await _flag(
            conn, decision_id=decision_id, actor_id=actor_id, rehosted=by_decision[decision_id]
        ):
            flagged.append(decision_id)
    return flagged


async def flag_new_hosting(
    conn: asyncpg.Connection, *, hosting_id: UUID, model_id: UUID, actor_id: UUID | None
) -> list[UUID]:
    """``flag_hosted`` for one hosting."""
    return await flag_hosted(conn, hostings=[(hosting_id, model_id)], actor_id=actor_id)


async def flag_untargeted(conn: asyncpg.Connection, *, limit: int = 100) -> list[UUID]:
    """The sweep behind ``flag_new_hosting``: flags every hosting in the scope of a decision
    in force that is not yet one of its targets, however it was recorded."""
    flagged = []
    for decision_id in await q.select_untargeted(conn, limit=limit):
        if await _flag(conn, decision_id=decision_id, actor_id=None):
            flagged.append(decision_id)
    return flagged


async def record_confirmation(
    conn: asyncpg.Connection,
    *,
    decision_id: UUID,
    platform_id: UUID,
    model_id: UUID,
    outcome: str,
    occurred_at: datetime | None,
    actor_id: UUID | None,
) -> list[int]:
    """A platform carried out the decision for its hostings of ``model_id``; returns the
    sequence numbers of the ledger events appended (none for a repeated confirmation).

    Marks those targets confirmed, appends a ``decommission.confirmed`` event, and moves
    the decision to ``executed`` once every target is confirmed. NotFound for an unknown
    decision; InvalidInput when the platform holds no target of the decision for the model
    (``key`` ``decision_id``), or when the outcome does not carry out the decision's action
    (``ACCEPTED_OUTCOMES``; ``key`` ``outcome``); Conflict when the decision was not (or no
    longer is) notified.
    """
    if outcome not in ("removed", "restricted"):
        raise InvalidInput("the outcome is removed or restricted", key="outcome")
    before = await get_decision(conn, decision_id=decision_id, for_update=True)
    mine = [t for t in before.targets if t.platform_id == platform_id and t.model_id == model_id]
    if not mine:
        raise InvalidInput(
            "the decision does not apply to this platform's hostings of that model",
            key="decision_id",
        )
    if before.status not in IN_FORCE:
        raise Conflict(f"a decision that is {before.status} cannot be confirmed")
    accepted = ACCEPTED_OUTCOMES[before.action]
    if outcome not in accepted:
        raise InvalidInput(
            f"a {before.action} is carried out by {' or '.join(accepted)}, not {outcome}",
            key="outcome",
        )
    # A platform may have acted before it was told (a recall it saw coming): a
    # confirmation follows the proposal, not the notice.
    at = check_claimed(
        occurred_at or datetime.now(UTC),
        key="executed_at",
        follows=before.proposed_at,
        follows_what="the decision's proposal",
    )
    confirmed = await q.confirm_targets(
        conn,
        decision_id=decision_id,
        platform_id=platform_id,
        model_id=model_id,
        confirmed_at=at,
        outcome=outcome,
    )
    if not confirmed:
        return []  # already confirmed: a repeated confirmation changes nothing
    after = await get_decision(conn, decision_id=decision_id)
    seqs = [
        await record_event(
            conn,
            stage="respond",
            kind="decommission.confirmed",
            subject_type="decommission",
            subject_id=decision_id,
            model_id=model_id,
            platform_id=platform_id,
            actor_id=actor_id,
            occurred_at=at,
            state=to_state(after),
            changes=diff(to_state(before), to_state(after)),
            extra={"outcome": outcome, "hosting_ids": [str(h) for h in confirmed]},
        )
    ]
    if after.status == "notified" and all(t.confirmed_at is not None for t in after.targets):
        await q.update_status(conn, decision_id=decision_id, status="executed", executed_at=at)
        executed = await get_decision(conn, decision_id=decision_id)
        seqs.append(
            await record_decision_event(
                conn,
                executed,
                kind="decommission.executed",
                actor_id=actor_id,
                occurred_at=at,
                before=after,
            )
        )
    return seqs


async def list_overdue(
    conn: asyncpg.Connection,
    *,
    now: datetime,
    platform_id: UUID | None = None,
    decision_id: UUID | None = None,
    limit: int = 200,
) -> list[OverduePlatform]:
    """Platforms that have not confirmed a decision in force by its ``confirm_by``."""
    rows = await q.select_overdue(
        conn, now=now, platform_id=platform_id, decision_id=decision_id, limit=limit
    )
    return [msgspec.convert(dict(r), OverduePlatform) for r in rows]


class AwaitedConfirmation(msgspec.Struct, frozen=True, kw_only=True):
    """A decision in force that a platform has still to confirm for some of its hostings."""

    decision: Decision
    targets: list[Target]
    confirm_by: datetime | None
    overdue: bool


async def list_awaited_confirmations(
    conn: asyncpg.Connection, *, platform_id: UUID, now: datetime, limit: int = 200
) -> list[AwaitedConfirmation]:
    """What a platform still has to confirm: each decision in force with this platform's
    unconfirmed targets, overdue when ``list_overdue`` counts the platform late on it."""
    overdue = {o.decision_id for o in await list_overdue(conn, now=now, platform_id=platform_id)}
    awaited = []
    for decision in await list_decisions(conn, platform_id=platform_id, limit=limit):
        if decision.status not in IN_FORCE:
            continue
        targets = [
            t for t in decision.targets if t.platform_id == platform_id and t.confirmed_at is None
        ]
        if targets:
            awaited.append(
                AwaitedConfirmation(
                    decision=decision,
                    targets=targets,
                    confirm_by=decision.confirm_by,
                    overdue=decision.id in overdue,
                )
            )
    return awaited
