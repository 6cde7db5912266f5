"""Triage: moving incidents through the workflow, merging duplicates, reclassifying, and
recording reports to the market surveillance authority. Admins do all of it.

Workflow (anything else is a 409)::

    received -> triaged -> investigating -> mitigated -> closed
    received | triaged | investigating -> rejected   (with a reason)
    received | triaged | investigating -> duplicate  (pointing at the surviving incident)

``triaged_at``, ``mitigated_at`` and ``closed_at`` record when each step happened (a
rejection or a merge also sets ``closed_at``); the response metrics derive from them.

Merging keeps the duplicate as a record of its own: its reporter's follow-up keeps working
and shows the survivor's status. The survivor gains the duplicate's models, hostings and
evidence, but keeps its own classification and Article 73 clock (triage reclassifies it if
the duplicate told of something more serious). A duplicate or rejected incident cannot be a
survivor; a duplicate's own clock stops.

Aliases (identifiers in other incident databases) may be added in any status: a CVE is
often assigned after an incident is closed.

Every move is a ``detect`` ledger event with its actor and time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import incidents as q
from service.domain.deadlines import compute_deadline
from service.domain.incident_aliases import add_aliases
from service.domain.incidents import check_seriousness, get_incident, record_incident_event
from service.domain.ledger import diff, to_state
from service.domain.policies import propose_for_incident
from service.domain.times import check_claimed
from service.errors import Conflict, InvalidInput, NotFound
from service.schemas.incidents import (
    Alias,
    AuthorityReportIn,
    Incident,
    IncidentPatch,
    TransitionIn,
)

__all__ = [
    "TRANSITIONS",
    "add_incident_aliases",
    "record_authority_report",
    "transition_incident",
    "update_incident",
]

#: Legal moves of the triage workflow.
TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset({"triaged", "rejected", "duplicate"}),
    "triaged": frozenset({"investigating", "rejected", "duplicate"}),
    "investigating": frozenset({"mitigated", "rejected", "duplicate"}),
    "mitigated": frozenset({"closed"}),
    "closed": frozenset(),
    "duplicate": frozenset(),
    "rejected": frozenset(),
}
_FINAL = frozenset({"closed", "duplicate", "rejected"})


async def transition_incident(
    conn: asyncpg.Connection, *, incident_id: UUID, data: TransitionIn, actor_id: UUID | None
) -> Incident:
    """Move an incident along the workflow; an illegal move is a Conflict."""
    at = data.at or datetime.now(UTC)
    if data.to == "duplicate":
        if data.duplicate_of is None:
            raise InvalidInput("name the surviving incident in duplicate_of", key="duplicate_of")
        return await _merge(
            conn, incident_id=incident_id, survivor_id=data.duplicate_of, at=at, actor_id=actor_id
        )
    if data.duplicate_of is not None:
        raise InvalidInput("duplicate_of is only for a move to duplicate", key="duplicate_of")
    if data.to == "rejected" and data.reason is None:
        raise InvalidInput("say why the incident is rejected", key="reason")
    before = await get_incident(conn, incident_id=incident_id, for_update=True)
    _check_move(before, data.to)
    previous = max(t for t in (before.reported_at, before.triaged_at, before.mitigated_at) if t)
    check_claimed(
        at,
        key="at",
        follows=previous,
        follows_what="the report" if previous == before.reported_at else "the previous step",
    )
    await q.update_status(
        conn,
        incident_id=before.id,
        status=data.to,
        duplicate_of=None,
        rejection_reason=data.reason if data.to == "rejected" else None,
        triaged_at=at if data.to == "triaged" else before.triaged_at,
        mitigated_at=at if data.to == "mitigated" else before.mitigated_at,
        closed_at=at if data.to in ("closed", "rejected") else before.closed_at,
    )
    after = await get_incident(conn, incident_id=before.id)
    await record_incident_event(
        conn,
        after,
        kind=f"incident.{data.to}",
        actor_id=actor_id,
        occurred_at=at,
        changes=diff(to_state(before), to_state(after)),
        extra=None if data.reason is None else {"reason": data.reason},
    )
    if data.to == "investigating":
        # Decommission policies are checked now, in this transaction; they only propose.
        await propose_for_incident(conn, incident_id=after.id, actor_id=actor_id)
    return after


def _check_move(incident: Incident, to: str) -> None:
    if to not in TRANSITIONS[incident.status]:
        raise Conflict(f"an incident that is {incident.status} cannot become {to}")


async def _merge(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    survivor_id: UUID,
    at: datetime,
    actor_id: UUID | None,
) -> Incident:
    if survivor_id == incident_id:
        raise InvalidInput("an incident cannot be a duplicate of itself", key="duplicate_of")
    # Lock both rows in id order, so two merges of the same pair cannot deadlock.
    locked = {}
    for key in sorted((incident_id, survivor_id)):
        try:
            locked[key] = await get_incident(conn, incident_id=key, for_update=True)
        except NotFound as exc:
            if key == survivor_id:
                raise InvalidInput(f"no incident {survivor_id}", key="duplicate_of") from exc
            raise
    before, survivor = locked[incident_id], locked[survivor_id]
    _check_move(before, "duplicate")
    if survivor.status in ("duplicate", "rejected"):
        raise Conflict(f"the survivor is {survivor.status}: merge into a live incident")
    check_claimed(at, key="at", follows=before.reported_at, follows_what="the report")

    await q.update_status(
        conn,
        incident_id=before.id,
        status="duplicate",
        duplicate_of=survivor.id,
        rejection_reason=None,
        triaged_at=before.triaged_at,
        mitigated_at=before.mitigated_at,
        closed_at=at,
    )
    merged = await get_incident(conn, incident_id=before.id)
    await record_incident_event(
        conn,
        merged,
        kind="incident.merged",
        actor_id=actor_id,
        occurred_at=at,
        changes=diff(to_state(before), to_state(merged)),
        extra={"survivor_id": str(survivor.id)},
    )
    await q.link_models(conn, incident_id=survivor.id, model_ids=before.model_ids)
    await q.link_hostings(conn, incident_id=survivor.id, hosting_ids=before.hosting_ids)
    await q.update_evidence(conn, incident_id=survivor.id, evidence_urls=before.evidence_urls)
    grown = await get_incident(conn, incident_id=survivor.id)
    await record_incident_event(
        conn,
        grown,
        kind="incident.duplicate_absorbed",
        actor_id=actor_id,
        occurred_at=at,
        changes=diff(to_state(survivor), to_state(grown)),
        extra={"duplicate_id": str(before.id)},
    )
    return merged


async def update_incident(
    conn: asyncpg.Connection, *, incident_id: UUID, patch: IncidentPatch, actor_id: UUID | None
) -> Incident:
    """Correct an open incident's classification; the Article 73 deadline follows."""
    before = await get_incident(conn, incident_id=incident_id, for_update=True)
    if before.status in _FINAL:
        raise Conflict(f"an incident that is {before.status} is no longer changed")
    values = {
        name: getattr(before, name)
        if getattr(patch, name) is msgspec.UNSET
        else getattr(patch, name)
        for name in patch.__struct_fields__
    }
    check_seriousness(
        serious=values["serious"], serious_kind=values["serious_kind"], death=values["death"]
    )
    deadline = compute_deadline(
        serious=values["serious"],
        serious_kind=values["serious_kind"],
        death=values["death"],
        widespread=values["widespread"],
        aware_at=before.aware_at,
    )
    await q.update_fields(
        conn,
        incident_id=before.id,
        report_due_at=None if deadline is None else deadline.due_at,
        **values,
    )
    after = await get_incident(conn, incident_id=before.id)
    changes = diff(to_state(before), to_state(after))
    if changes:
        await record_incident_event(
            conn, after, kind="incident.updated", actor_id=actor_id, changes=changes
        )
    return after


async def record_authority_report(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    data: AuthorityReportIn,
    actor_id: UUID | None,
) -> Incident:
    """Record that the authority got the initial (or the complete) Article 73 report."""
    before = await get_incident(conn, incident_id=incident_id, for_update=True)
    if not before.serious:
        raise Conflict("only serious incidents are reported to the authority")
    at = check_claimed(
        data.at or datetime.now(UTC),
        key="at",
        follows=before.aware_at,
        follows_what="aware_at, when the provider became aware of the incident",
    )
    initial, complete = before.authority_initial_report_at, before.authority_complete_report_at
    if data.kind == "initial":
        if initial is not None:
            raise Conflict("the initial report is recorded already")
        initial = at
    else:
        if complete is not None:
            raise Conflict("the complete report is recorded already")
        if initial is not None and at < initial:
            raise InvalidInput("the complete report cannot precede the initial one", key="at")
        complete = at
        # A complete report sent first also serves as the initial one.
        initial = initial or at
    await q.update_authority_reports(
        conn, incident_id=before.id, initial_at=initial, complete_at=complete
    )
    after = await get_incident(conn, incident_id=before.id)
    await record_incident_event(
        conn,
        after,
        kind="incident.authority_notified",
        actor_id=actor_id,
        occurred_at=at,
        changes=diff(to_state(before), to_state(after)),
        extra={"report": data.kind},
    )
    return after


async def add_incident_aliases(
    conn: asyncpg.Connection, *, incident_id: UUID, aliases: list[Alias], actor_id: UUID | None
) -> Incident:
    """Add aliases to an incident; one ledger event if any is new (repeats change nothing)."""
    before = await get_incident(conn, incident_id=incident_id, for_update=True)
    added = await add_aliases(conn, incident_id=before.id, aliases=aliases)
    if not added:
        return before
    after = await get_incident(conn, incident_id=before.id)
    await record_incident_event(
        conn,
        after,
        kind="incident.aliases_added",
        actor_id=actor_id,
        changes=diff(to_state(before), to_state(after)),
        extra={"aliases": [f"{a.scheme}:{a.value}" for a in added]},
    )
    return after
