"""Incidents: recording reports from every channel and reading one back.

Who reads what: admins and regulators read every incident; a platform reads the incidents
it reported and those naming one of its hostings; an auditor reads the incidents on models
it holds an active grant for, without the reporter's identity. Reporters' contact details
are never part of an incident (see ``service.domain.reports``). Triage (the workflow,
merging, reclassification, authority reports) is in ``service.domain.triage``; lists of
incidents (the register, the triage queue, by alias, likely duplicates) are in
``service.domain.incident_lists``, and notes in ``service.domain.incident_notes``.

Every change appends one ``detect`` ledger event with the incident's full state, its first
model as ``model_id`` and every model id in the payload.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import incidents as q
from service.domain import reporters
from service.domain.as_of import state_as_of
from service.domain.deadlines import compute_deadline, is_overdue, remaining_seconds
from service.domain.incident_aliases import add_aliases
from service.domain.ledger import record_event, to_state
from service.domain.models import resolve_model_id
from service.domain.times import check_claimed
from service.errors import Forbidden, InvalidInput, NotFound
from service.schemas.incidents import (
    Incident,
    IncidentIn,
    IncidentView,
    ResponseMetrics,
)
from service.schemas.keys import Principal

__all__ = [
    "Scope",
    "check_seriousness",
    "get_incident",
    "new_ref",
    "record_incident",
    "record_incident_event",
    "reporter_fields",
    "scope_for",
    "to_incident",
    "to_view",
]


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """What part of the incident register a caller may read."""

    #: Only incidents this platform reported or that name one of its hostings.
    platform_id: UUID | None = None
    #: Only incidents on these models (an auditor's active grants).
    model_ids: list[UUID] | None = None
    #: Hide who reported (auditors see the incident, not the reporter).
    redact_reporter: bool = False


def new_ref() -> str:
    """A report reference: short, random, and meaningless on its own."""
    return "RR-" + secrets.token_hex(6).upper()


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else (end - start).total_seconds()


def to_incident(row: asyncpg.Record) -> Incident:
    """An incident row as the record, with its Article 73 deadline and response times."""
    values = dict(row)
    values["deadline"] = compute_deadline(
        serious=values["serious"],
        serious_kind=values["serious_kind"],
        death=values["death"],
        widespread=values["widespread"],
        aware_at=values["aware_at"],
    )
    values["metrics"] = ResponseMetrics(
        time_to_triage=_seconds(values["reported_at"], values["triaged_at"]),
        time_to_mitigation=_seconds(values["reported_at"], values["mitigated_at"]),
        time_to_close=_seconds(values["reported_at"], values["closed_at"]),
    )
    return msgspec.convert(values, Incident)


def reporter_fields(row: asyncpg.Record) -> dict[str, Any]:
    """The reporter fields of an incident row (never in its ledger events, never changed)."""
    return {field: row[field] for field in reporters.REPORTER_FIELDS}


def to_view(
    incident: Incident, *, now: datetime, inherited: bool = False, redact_reporter: bool = False
) -> IncidentView:
    """The incident as read at ``now``: its Article 73 clock and lineage flag."""
    fields = msgspec.structs.asdict(incident)
    if redact_reporter:
        fields["reporter_principal_id"] = None
        fields["reporter_platform_id"] = None
    deadline, clock = incident.deadline, incident.article73_clock
    initial = incident.authority_initial_report_at
    return IncidentView(
        **fields,
        remaining_seconds=remaining_seconds(
            deadline=deadline, clock=clock, initial_report_at=initial, now=now
        ),
        overdue=is_overdue(deadline=deadline, clock=clock, initial_report_at=initial, now=now),
        inherited=inherited,
    )


async def record_incident_event(
    conn: asyncpg.Connection,
    incident: Incident,
    *,
    kind: str,
    actor_id: UUID | None,
    occurred_at: datetime | None = None,
    changes: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> int:
    """Append an incident event, its reporter kept out of it (see ``domain.reporters``)."""
    payload = {k: v for k, v in (extra or {}).items() if k != "delivery"}
    if extra and isinstance(extra.get("delivery"), dict):
        # The delivery's own id and source would name the reporting platform.
        payload["delivery"] = {"id": extra["delivery"].get("id")}
    payload["model_ids"] = [str(m) for m in incident.model_ids]
    commitment = await reporters.commitment_for(
        conn,
        incident_id=incident.id,
        principal_id=incident.reporter_principal_id,
        platform_id=incident.reporter_platform_id,
    )
    if changes is not None:
        changes = {k: v for k, v in changes.items() if k not in reporters.REPORTER_FIELDS}
    # Who reported is the actor of the report itself (later steps are triage's).
    by_reporter = kind == "incident.reported" and actor_id == incident.reporter_principal_id
    return await record_event(
        conn,
        stage="detect",
        kind=kind,
        subject_type="incident",
        subject_id=incident.id,
        model_id=incident.model_ids[0] if incident.model_ids else None,
        platform_id=None,
        actor_id=None if by_reporter else actor_id,
        occurred_at=occurred_at,
        state=reporters.ledger_state(to_state(incident), commitment),
        changes=changes,
        extra=payload,
    )


def check_seriousness(*, serious: bool, serious_kind: str | None, death: bool) -> None:
    if serious and serious_kind is None:
        raise InvalidInput("a serious incident needs its serious_kind", key="serious_kind")
    if not serious and serious_kind is not None:
        raise InvalidInput("serious_kind is only for serious incidents", key="serious")
    if death and serious_kind != "death_or_serious_harm":
        raise InvalidInput(
            "a death is a serious incident of kind death_or_serious_harm", key="death"
        )


async def record_incident(
    conn: asyncpg.Connection,
    *,
    data: IncidentIn,
    channel: str,
    reporter_platform_id: UUID | None,
    reporter_principal_id: UUID | None,
    actor_id: UUID | None,
    extra: dict[str, Any] | None = None,
    followup_token_hash: bytes | None = None,
    allow_unlisted: bool = False,
) -> tuple[Incident, int]:
    """Record a new incident from any channel (``webhook``, ``api`` or ``public``); returns
    it and the seq of its ledger event.

    With ``reporter_platform_id`` every hosting named must be that platform's (Forbidden
    otherwise). Unknown model names are refused, except on the public channel
    (``allow_unlisted``), where they are kept as ``unlisted_models`` for triage.
    """
    now = datetime.now(UTC)
    check_seriousness(serious=data.serious, serious_kind=data.serious_kind, death=data.death)
    aware_at = check_claimed(data.aware_at or now, key="aware_at", now=now)
    if data.occurred_at is not None:
        check_claimed(data.occurred_at, key="occurred_at", now=now)
        if data.occurred_at > aware_at:
            raise InvalidInput("occurred_at is after aware_at", key="occurred_at")

    model_ids: list[UUID] = []
    unlisted: list[str] = []
    for name in dict.fromkeys(data.models):
        try:
            model_id = await resolve_model_id(conn, name=name, role="models")
            if model_id not in model_ids:  # a name given twice in different cases
                model_ids.append(model_id)
        except InvalidInput:
            if not allow_unlisted:
                raise
            unlisted.append(name)
    hosting_ids = list(dict.fromkeys(data.hostings))
    if hosting_ids:
        rows = {row["id"]: row for row in await q.select_hostings_of(conn, hosting_ids=hosting_ids)}
        missing = [str(h) for h in hosting_ids if h not in rows]
        if missing:
            raise InvalidInput(f"no hosting {', '.join(missing)}", key="hostings")
        if reporter_platform_id is not None and any(
            row["platform_id"] != reporter_platform_id for row in rows.values()
        ):
            raise Forbidden("a platform may only name its own platform's hostings")
        for hosting_id in hosting_ids:
            if rows[hosting_id]["model_id"] not in model_ids:
                model_ids.append(rows[hosting_id]["model_id"])
    if not model_ids and not unlisted:
        raise InvalidInput("name at least one model or hosting", key="models")

    deadline = compute_deadline(
        serious=data.serious,
        serious_kind=data.serious_kind,
        death=data.death,
        widespread=data.widespread,
        aware_at=aware_at,
    )
    incident_id = await q.insert_incident(
        conn,
        ref=new_ref(),
        title=data.title,
        description=data.description,
        category=data.category,
        subcategory=data.subcategory,
        harm_types=data.harm_types,
        affected_parties=data.affected_parties,
        severity=data.severity,
        serious=data.serious,
        serious_kind=data.serious_kind,
        death=data.death,
        widespread=data.widespread,
        channel=channel,
        reporter_principal_id=reporter_principal_id,
        reporter_platform_id=reporter_platform_id,
        followup_token_hash=followup_token_hash,
        evidence_urls=list(dict.fromkeys(data.evidence_urls)),
        occurred_at=data.occurred_at,
        aware_at=aware_at,
        reported_at=now,
        unlisted_models=unlisted,
        report_due_at=None if deadline is None else deadline.due_at,
    )
    await q.link_models(conn, incident_id=incident_id, model_ids=model_ids)
    await q.link_hostings(conn, incident_id=incident_id, hosting_ids=hosting_ids)
    await add_aliases(conn, incident_id=incident_id, aliases=data.aliases)
    incident = await get_incident(conn, incident_id=incident_id)
    seq = await record_incident_event(
        conn, incident, kind="incident.reported", actor_id=actor_id, occurred_at=now, extra=extra
    )
    return incident, seq


async def scope_for(conn: asyncpg.Connection, *, principal: Principal, now: datetime) -> Scope:
    """The part of the register ``principal`` may read."""
    if principal.role == "platform":
        return Scope(platform_id=principal.platform_id)
    if principal.role == "auditor":
        # Auditors read every incident, never who reported it.
        return Scope(redact_reporter=True)
    return Scope()


async def _check_visible(conn: asyncpg.Connection, *, incident: Incident, scope: Scope) -> None:
    """NotFound unless the scope reaches the incident (a hidden record looks absent)."""
    hidden = NotFound(f"no incident {incident.id}")
    if (
        scope.platform_id is not None
        and incident.reporter_platform_id != scope.platform_id
        and not await q.touches_platform(
            conn, incident_id=incident.id, platform_id=scope.platform_id
        )
    ):
        raise hidden
    if scope.model_ids is not None and not set(scope.model_ids) & set(incident.model_ids):
        raise hidden


async def get_incident(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID | None = None,
    ref: str | None = None,
    visible_to: Scope | None = None,
    as_of: datetime | None = None,
    for_update: bool = False,
) -> Incident:
    """One incident by id or reference; with ``visible_to``, only if that scope reaches it.

    With ``as_of``, the incident as the registry recorded it then (the state its newest event
    at or before that moment carried); the scope is applied to that state.
    """
    if as_of is not None:
        if incident_id is None:
            raise ValueError("a point-in-time read names the incident by id")
        now_row = await q.select_incident(conn, incident_id=incident_id, ref=None)
        then = await state_as_of(
            conn,
            subject_type="incident",
            subject_id=incident_id,
            as_of=as_of,
            record=Incident,
            kept_apart=None if now_row is None else reporter_fields(now_row),
        )
        if then is None:
            raise NotFound(f"no incident {incident_id} was recorded at {as_of.isoformat()}")
        incident = then
    else:
        row = await q.select_incident(conn, incident_id=incident_id, ref=ref, for_update=for_update)
        if row is None:
            raise NotFound(f"no incident {ref or incident_id}")
        incident = to_incident(row)
    if visible_to is not None:
        await _check_visible(conn, incident=incident, scope=visible_to)
    return incident
