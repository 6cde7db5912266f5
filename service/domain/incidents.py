"""Incidents: recording reports from every channel and reading them back.

Who reads what: admins and regulators read every incident; a platform reads the incidents
it reported and those naming one of its hostings; an auditor reads the incidents on models
it holds an active grant for, without the reporter's identity. Reporters' contact details
are never part of an incident (see ``service.domain.reports``). Triage (the workflow,
merging, reclassification, authority reports) is in ``service.domain.triage``.

Every change appends one ``detect`` ledger event with the incident's full state, its first
model as ``model_id`` and every model id in the payload.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import incident_aliases as alias_q
from service.db.queries import incidents as q
from service.domain import reporters
from service.domain.as_of import state_as_of, states_as_of
from service.domain.deadlines import compute_deadline, is_overdue, remaining_seconds
from service.domain.incident_aliases import add_aliases, parse_alias
from service.domain.ledger import record_event, to_state
from service.domain.models import resolve_model_id
from service.domain.times import check_claimed
from service.errors import Forbidden, InvalidInput, NotFound
from service.schemas.incidents import (
    Incident,
    IncidentIn,
    IncidentView,
    Note,
    NoteIn,
    ResponseMetrics,
)
from service.schemas.keys import Principal

__all__ = [
    "Scope",
    "add_note",
    "check_seriousness",
    "find_by_alias",
    "get_incident",
    "list_duplicate_candidates",
    "list_incidents",
    "list_notes",
    "new_ref",
    "record_incident",
    "record_incident_event",
    "scope_for",
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


def _to_incident(row: asyncpg.Record) -> Incident:
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


def _reporter(row: asyncpg.Record) -> dict[str, Any]:
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
            kept_apart=None if now_row is None else _reporter(now_row),
        )
        if then is None:
            raise NotFound(f"no incident {incident_id} was recorded at {as_of.isoformat()}")
        incident = then
    else:
        row = await q.select_incident(conn, incident_id=incident_id, ref=ref, for_update=for_update)
        if row is None:
            raise NotFound(f"no incident {ref or incident_id}")
        incident = _to_incident(row)
    if visible_to is not None:
        await _check_visible(conn, incident=incident, scope=visible_to)
    return incident


async def list_incidents(
    conn: asyncpg.Connection,
    *,
    scope: Scope,
    now: datetime,
    status: str | None = None,
    category: str | None = None,
    severity: str | None = None,
    serious: bool | None = None,
    overdue: bool | None = None,
    channel: str | None = None,
    model_id: UUID | None = None,
    include_lineage: bool = True,
    after: UUID | None = None,
    limit: int,
    text: str | None = None,
    newest_first: bool = False,
    as_of: datetime | None = None,
    sort: QueueSort | None = None,
    sort_key: datetime | int | None = None,
    backwards: bool = False,
) -> list[IncidentView]:
    """Incidents by filter; with ``model_id``, also those on its ancestors and descendants
    (flagged ``inherited``) unless ``include_lineage`` is false; with ``text``, only those
    whose title or description holds it (ignoring case). Oldest first unless
    ``newest_first``; ``after`` continues from an id in the same order.

    With ``as_of``, each incident as recorded then and its clock read at that moment, leaving
    out those not reported yet; the filters select by today's values.

    ``sort`` orders the triage queue (see ``QueueSort``); its keyset is ``(sort_key, after)``
    with ``sort_key`` from ``queue_key`` of the last item shown. ``backwards`` reads the page
    before that item instead, still in the queue's order."""
    rows = await q.select_incidents(
        conn,
        status=status,
        category=category,
        severity=severity,
        serious=serious,
        overdue=overdue,
        channel=channel,
        visible_platform=scope.platform_id,
        visible_models=scope.model_ids,
        model_id=model_id,
        include_lineage=include_lineage,
        now=now,
        after=after,
        limit=limit,
        text=text,
        newest_first=newest_first,
        sort=sort,
        sort_key=sort_key,
        backwards=backwards,
    )
    if backwards:
        rows.reverse()
    if as_of is not None:
        ids = [row["id"] for row in rows]
        then = await states_as_of(
            conn,
            subject_type="incident",
            subject_ids=ids,
            as_of=as_of,
            record=Incident,
            kept_apart={row["id"]: _reporter(row) for row in rows},
        )
        return [
            to_view(
                then[row["id"]],
                now=as_of,
                inherited=row["inherited"],
                redact_reporter=scope.redact_reporter,
            )
            for row in rows
            if row["id"] in then
        ]
    return [
        to_view(
            _to_incident(row),
            now=now,
            inherited=row["inherited"],
            redact_reporter=scope.redact_reporter,
        )
        for row in rows
    ]


async def find_by_alias(
    conn: asyncpg.Connection, *, alias: str, scope: Scope, now: datetime
) -> list[IncidentView]:
    """The incident holding ``alias`` (``scheme:value`` or ``CVE-…``, ``AVID-…``,
    ``AIID-…``), if the scope reaches it: a list of one, or empty."""
    wanted = parse_alias(alias)
    incident_id = await alias_q.select_incident_by_alias(
        conn, scheme=wanted.scheme, value=wanted.value
    )
    if incident_id is None:
        return []
    try:
        incident = await get_incident(conn, incident_id=incident_id, visible_to=scope)
    except NotFound:
        return []
    return [to_view(incident, now=now, redact_reporter=scope.redact_reporter)]


#: The triage queue's orders: by report (oldest or newest first), by the pending Article 73
#: deadline (soonest first, those with none last) or by severity (critical first); ties by report.
QueueSort = Literal["oldest", "newest", "deadline", "severity"]
_SEVERITY_RANK = {"critical": 1, "high": 2, "medium": 3, "low": 4}


def queue_key(incident: Incident, sort: QueueSort) -> datetime | int | None:
    """The value ``sort`` orders ``incident`` by beside its id (``None``: the id alone, or no
    pending deadline), as the queue's SQL computes it."""
    if sort == "severity":
        return _SEVERITY_RANK[incident.severity]
    if sort == "deadline":
        pending = (
            incident.serious
            and incident.deadline is not None
            and incident.authority_initial_report_at is None
            and incident.status not in ("duplicate", "rejected")
        )
        return incident.deadline.due_at if pending and incident.deadline else None
    return None


async def list_duplicate_candidates(
    conn: asyncpg.Connection, *, incident_id: UUID, window: timedelta, now: datetime, limit: int
) -> list[IncidentView]:
    """Open incidents naming one of the same models (registered, or unlisted by the same
    name), in the same category, reported within ``window`` either side of this one: likely
    duplicates, offered for merging."""
    incident = await get_incident(conn, incident_id=incident_id)
    rows = await q.select_duplicate_candidates(
        conn,
        incident_id=incident.id,
        category=incident.category,
        since=incident.reported_at - window,
        until=incident.reported_at + window,
        unlisted_models=incident.unlisted_models,
        limit=limit,
    )
    return [to_view(_to_incident(row), now=now) for row in rows]


async def add_note(
    conn: asyncpg.Connection,
    *,
    incident: Incident,
    author: str,
    actor_id: UUID | None,
    data: NoteIn,
) -> Note:
    """Add information to an incident: from its reporter, or from the registry's triage."""
    row = await q.insert_note(
        conn,
        incident_id=incident.id,
        author=author,
        actor_id=actor_id,
        body=data.body,
        evidence_urls=list(data.evidence_urls),
        share_with_reporter=data.share_with_reporter or author == "reporter",
    )
    note = msgspec.convert(dict(row), Note)
    await record_event(
        conn,
        stage="detect",
        kind="incident.note_added",
        subject_type="incident_note",
        subject_id=note.id,
        model_id=incident.model_ids[0] if incident.model_ids else None,
        actor_id=actor_id,
        occurred_at=note.created_at,
        state=to_state(note),
        extra={"incident_id": str(incident.id), "model_ids": [str(m) for m in incident.model_ids]},
    )
    return note


async def list_notes(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    reporter_view: bool,
    as_of: datetime | None = None,
) -> list[Note]:
    """Notes oldest first; the reporter's view holds its own notes and those shared with it.
    With ``as_of``, only the notes the ledger had recorded by then."""
    rows = await q.select_notes(conn, incident_id=incident_id, reporter_view=reporter_view)
    notes = [msgspec.convert(dict(row), Note) for row in rows]
    if as_of is not None:
        then = await states_as_of(
            conn,
            subject_type="incident_note",
            subject_ids=[n.id for n in notes],
            as_of=as_of,
            record=Note,
        )
        notes = [n for n in notes if n.id in then]
    return notes
