"""``/v1/incidents``: incident reports from authenticated principals, triage, and reading.

Admins triage (transitions, corrections, authority reports, notes, duplicates); every role
may report and read, each within its scope (see ``service.domain.incidents``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from service.api.auth import ADMIN, ANY_ROLE, allow
from service.api.deps import Caller, Db
from service.api.pagination import Cursor, Limit, decode_uuid_cursor, paginate
from service.api.problems import problem_responses
from service.domain import incident_lists, incident_notes, reporters, triage
from service.domain import incidents as domain
from service.schemas.incidents import (
    AliasesIn,
    AuthorityReportIn,
    Category,
    Channel,
    IncidentIn,
    IncidentPage,
    IncidentPatch,
    IncidentStatus,
    IncidentView,
    Note,
    NoteIn,
    ReporterOut,
    Severity,
    TransitionIn,
)
from service.settings import Settings

__all__ = ["IncidentController", "IncidentList", "NoteList"]


class IncidentList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[IncidentView]


class NoteList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Note]


class IncidentController(Controller):
    path = "/v1/incidents"
    tags = ["incidents"]

    @post(
        operation_id="reportIncident",
        summary="Report an incident (a platform key may name only its own hostings)",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 409, 413, 415, 422),
    )
    async def create(self, data: JSONBody[IncidentIn], db: Db, principal: Caller) -> IncidentView:
        incident, _ = await domain.record_incident(
            db,
            data=data,
            channel="api",
            reporter_platform_id=principal.platform_id,
            reporter_principal_id=principal.id,
            actor_id=principal.id,
        )
        return domain.to_view(incident, now=datetime.now(UTC))

    @get(
        operation_id="listIncidents",
        summary="List incidents; with model_id, also those on its lineage (flagged inherited)",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 422),
    )
    async def index(
        self,
        db: Db,
        principal: Caller,
        status: FromQuery[IncidentStatus | None] = None,
        category: FromQuery[Category | None] = None,
        severity: FromQuery[Severity | None] = None,
        serious: FromQuery[bool | None] = None,
        overdue: Annotated[
            bool | None,
            Parameter(
                description="Serious incidents past their Article 73 deadline with no "
                "initial report to the authority (true), or all others (false)."
            ),
        ] = None,
        channel: FromQuery[Channel | None] = None,
        model_id: FromQuery[UUID | None] = None,
        include_lineage: Annotated[
            bool,
            Parameter(
                description="With model_id: include incidents on its ancestors and "
                "descendants, flagged `inherited`."
            ),
        ] = True,
        alias: Annotated[
            str | None,
            Parameter(
                description="The incident holding this alias in another incident database: "
                "`scheme:value` (schemes aiid, oecd, avid, cve) or a self-describing id such "
                "as `CVE-2026-12345`, `AVID-2023-V001`, `AIID-123`. At most one incident "
                "answers (if you may read it); the other filters and the cursor are not "
                "applied. Not an alias: 422.",
                max_length=300,
            ),
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> IncidentPage:
        now = datetime.now(UTC)
        scope = await domain.scope_for(db, principal=principal, now=now)
        if alias is not None:
            found = await incident_lists.find_by_alias(db, alias=alias, scope=scope, now=now)
            return IncidentPage(items=found, next_cursor=None)
        items = await incident_lists.list_incidents(
            db,
            scope=scope,
            now=now,
            status=status,
            category=category,
            severity=severity,
            serious=serious,
            overdue=overdue,
            channel=channel,
            model_id=model_id,
            include_lineage=include_lineage,
            after=decode_uuid_cursor(cursor),
            limit=limit + 1,
        )
        page, next_cursor = paginate(items, limit, lambda i: i.id)
        return IncidentPage(items=page, next_cursor=next_cursor)

    @get(
        "/{incident_id:uuid}",
        operation_id="getIncident",
        summary="One incident, with its Article 73 clock and response metrics",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read(
        self,
        incident_id: FromPath[UUID],
        db: Db,
        principal: Caller,
        as_of: Annotated[
            datetime | None,
            Parameter(
                description="RFC 3339 moment: the incident as the registry recorded it then, "
                "its Article 73 clock read at that moment."
            ),
        ] = None,
    ) -> IncidentView:
        now = datetime.now(UTC)
        scope = await domain.scope_for(db, principal=principal, now=now)
        incident = await domain.get_incident(
            db, incident_id=incident_id, visible_to=scope, as_of=as_of
        )
        return domain.to_view(incident, now=as_of or now, redact_reporter=scope.redact_reporter)

    @get(
        "/{incident_id:uuid}/reporter",
        operation_id="getIncidentReporter",
        summary="Who reported an incident, with the salt of the commitment its events carry",
        guards=[allow("admin", "regulator")],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def reporter(self, incident_id: FromPath[UUID], db: Db) -> ReporterOut:
        incident = await domain.get_incident(db, incident_id=incident_id)
        return await reporters.get_reporter(db, incident=incident)

    @patch(
        "/{incident_id:uuid}",
        operation_id="updateIncident",
        summary="Correct an open incident's classification (the deadline follows)",
        guards=[allow(*ADMIN)],
        responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
    )
    async def update(
        self, incident_id: FromPath[UUID], data: JSONBody[IncidentPatch], db: Db, principal: Caller
    ) -> IncidentView:
        incident = await triage.update_incident(
            db, incident_id=incident_id, patch=data, actor_id=principal.id
        )
        return domain.to_view(incident, now=datetime.now(UTC))

    @post(
        "/{incident_id:uuid}/transitions",
        operation_id="transitionIncident",
        summary="Move an incident along the triage workflow (illegal moves are 409)",
        guards=[allow(*ADMIN)],
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
    )
    async def transition(
        self, incident_id: FromPath[UUID], data: JSONBody[TransitionIn], db: Db, principal: Caller
    ) -> IncidentView:
        incident = await triage.transition_incident(
            db, incident_id=incident_id, data=data, actor_id=principal.id
        )
        return domain.to_view(incident, now=datetime.now(UTC))

    @post(
        "/{incident_id:uuid}/authority-reports",
        operation_id="recordAuthorityReport",
        summary="Record the initial or complete report to the market surveillance authority",
        guards=[allow(*ADMIN)],
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
    )
    async def authority_report(
        self,
        incident_id: FromPath[UUID],
        data: JSONBody[AuthorityReportIn],
        db: Db,
        principal: Caller,
    ) -> IncidentView:
        incident = await triage.record_authority_report(
            db, incident_id=incident_id, data=data, actor_id=principal.id
        )
        return domain.to_view(incident, now=datetime.now(UTC))

    @post(
        "/{incident_id:uuid}/aliases",
        operation_id="addIncidentAliases",
        summary="Add identifiers from other incident databases (one held by another "
        "incident is 409)",
        guards=[allow(*ADMIN)],
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
    )
    async def add_aliases(
        self, incident_id: FromPath[UUID], data: JSONBody[AliasesIn], db: Db, principal: Caller
    ) -> IncidentView:
        incident = await triage.add_incident_aliases(
            db, incident_id=incident_id, aliases=data.aliases, actor_id=principal.id
        )
        return domain.to_view(incident, now=datetime.now(UTC))

    @get(
        "/{incident_id:uuid}/duplicates",
        operation_id="listLikelyDuplicates",
        summary="Open incidents on the same model and category reported within the window",
        guards=[allow(*ADMIN)],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def duplicates(self, incident_id: FromPath[UUID], db: Db, state: State) -> IncidentList:
        settings: Settings = state.settings
        items = await incident_lists.list_duplicate_candidates(
            db,
            incident_id=incident_id,
            window=timedelta(hours=settings.duplicate_window_hours),
            now=datetime.now(UTC),
            limit=50,
        )
        return IncidentList(items=items)

    @get(
        "/{incident_id:uuid}/notes",
        operation_id="listIncidentNotes",
        summary="Notes added by the reporter and by triage, oldest first",
        guards=[allow("admin", "regulator")],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def notes(self, incident_id: FromPath[UUID], db: Db) -> NoteList:
        await domain.get_incident(db, incident_id=incident_id)
        return NoteList(
            items=await incident_notes.list_notes(db, incident_id=incident_id, reporter_view=False)
        )

    @post(
        "/{incident_id:uuid}/notes",
        operation_id="addIncidentNote",
        summary="Add a triage note (shown to a confidential reporter if shared)",
        guards=[allow(*ADMIN)],
        responses=problem_responses(400, 401, 403, 404, 413, 415, 422),
    )
    async def add_note(
        self, incident_id: FromPath[UUID], data: JSONBody[NoteIn], db: Db, principal: Caller
    ) -> Note:
        incident = await domain.get_incident(db, incident_id=incident_id)
        return await incident_notes.add_note(
            db, incident=incident, author="registry", actor_id=principal.id, data=data
        )
