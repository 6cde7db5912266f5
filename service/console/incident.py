"""``/console/incidents/{id}``: one incident, its ledger timeline, and triage actions.

Reads go through the same domain functions as ``GET /v1/incidents/{id}`` (scope, as-of,
view); actions through those of the transition, note, merge, alias and authority-report
routes, for admins only. Each action posts a form and is one transaction; a refused action rolls
back and answers with its 4xx.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import FormMultiDict, State
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from service.api.deps import Db
from service.console.web import Form, Viewer, form_body, page, require
from service.domain import incident_lists, incident_notes, triage
from service.domain import incidents as domain
from service.domain.decommissions import list_decisions
from service.domain.history import list_events
from service.domain.keys import name_principals
from service.errors import InvalidInput
from service.schemas.incidents import (
    Alias,
    AliasesIn,
    AuthorityReportIn,
    NoteIn,
    TransitionIn,
)
from service.settings import Settings

__all__ = ["ALIAS_SCHEMES", "IncidentPageController", "alias_url"]

#: The alias schemes, as the form offers them.
ALIAS_SCHEMES = {
    "aiid": "AI Incident Database",
    "oecd": "OECD AI Incidents Monitor",
    "avid": "AVID",
    "cve": "CVE",
}

#: Each database's public page for one of its ids, where it has a stable address form.
#: AVID's pages have none that its ids map to reliably: shown as text.
_ALIAS_PAGES = {
    "aiid": "https://incidentdatabase.ai/cite/{}",
    "oecd": "https://oecd.ai/en/incidents/{}",
    "cve": "https://www.cve.org/CVERecord?id={}",
}


def alias_url(alias: Alias) -> str | None:
    """The public page of an alias (in canonical form) in its database, if it has one."""
    form = _ALIAS_PAGES.get(alias.scheme)
    return None if form is None else form.format(quote(alias.value, safe=""))


def _field(form: FormMultiDict, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def parse_as_of(value: str | None) -> datetime | None:
    """A moment from the picker (``YYYY-MM-DDTHH:MM``, read as UTC) or RFC 3339."""
    if not value:
        return None
    text = value.strip()
    if len(text) == 16:
        text += ":00+00:00"
    try:
        moment = msgspec.convert(text, datetime)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"'as of' is not a moment: {value!r}", key="as_of") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _back(incident_id: UUID, anchor: str = "") -> Redirect:
    return Redirect(f"/console/incidents/{incident_id}{anchor}", status_code=303)


class IncidentPageController(Controller):
    path = "/console/incidents/{incident_id:uuid}"

    @get("/")
    async def show(
        self,
        incident_id: FromPath[UUID],
        db: Db,
        viewer: Viewer,
        state: State,
        as_of: Annotated[str | None, QueryParameter(max_length=40)] = None,
    ) -> Template:
        principal = viewer.principal
        now = datetime.now(UTC)
        moment = parse_as_of(as_of)
        scope = await domain.scope_for(db, principal=principal, now=now)
        incident = await domain.get_incident(
            db, incident_id=incident_id, visible_to=scope, as_of=moment
        )
        view = domain.to_view(incident, now=moment or now, redact_reporter=scope.redact_reporter)
        events = await list_events(
            db, subject_id=incident_id, visible_to=principal.platform_id, until=moment, limit=500
        )
        admin = principal.role == "admin"
        # Who acted: admins may list every principal through the API, so they see names.
        actors: dict[UUID, str] = {}
        if admin:
            actors = await name_principals(
                db, principal_ids=[e.actor_id for e in events if e.actor_id is not None]
            )
        notes = []
        if principal.role in ("admin", "regulator"):
            notes = await incident_notes.list_notes(
                db, incident_id=incident_id, reporter_view=False, as_of=moment
            )
        candidates = []
        if admin and moment is None:
            settings: Settings = state.settings
            candidates = await incident_lists.list_duplicate_candidates(
                db,
                incident_id=incident_id,
                window=timedelta(hours=settings.duplicate_window_hours),
                now=now,
                limit=50,
            )
        # Decisions taken on the incident: those on its models that name it.
        decisions = [
            d
            for model_id in dict.fromkeys(incident.model_ids)
            for d in await list_decisions(
                db,
                model_id=model_id,
                platform_id=principal.platform_id,
                limit=100,
                as_of=moment,
            )
            if incident_id in d.incident_ids
        ]
        moves = sorted(triage.TRANSITIONS[view.status] - {"duplicate"}) if admin else []
        return page(
            "incident.html",
            viewer=viewer,
            title=f"Incident {view.ref}",
            incident=view,
            as_of=moment,
            events=[(e, msgspec.json.decode(e.payload)) for e in events],
            notes=notes,
            decisions=decisions,
            actors=actors,
            candidates=candidates
            if view.status in ("received", "triaged", "investigating")
            else [],
            moves=moves,
            admin=admin and moment is None,
            aliases=[(a, alias_url(a)) for a in view.aliases],
            alias_schemes=ALIAS_SCHEMES,
        )

    @post("/transitions")
    async def transition(
        self, incident_id: FromPath[UUID], db: Db, viewer: Viewer, form: Form
    ) -> Redirect:
        require(viewer, "admin")
        data = form_body(
            {"to": _field(form, "to"), "reason": _field(form, "reason") or None}, TransitionIn
        )
        if data.to == "duplicate":
            raise InvalidInput("merge a duplicate from the survivor's page", key="to")
        await triage.transition_incident(
            db, incident_id=incident_id, data=data, actor_id=viewer.principal.id
        )
        return _back(incident_id)

    @post("/merge")
    async def merge(
        self, incident_id: FromPath[UUID], db: Db, viewer: Viewer, form: Form
    ) -> Redirect:
        """Merge a duplicate candidate into this incident (the survivor)."""
        require(viewer, "admin")
        duplicate = form_body({"id": _field(form, "duplicate")}, _DuplicateIn)
        await triage.transition_incident(
            db,
            incident_id=duplicate.id,
            data=TransitionIn(to="duplicate", duplicate_of=incident_id),
            actor_id=viewer.principal.id,
        )
        return _back(incident_id)

    @post("/notes")
    async def add_note(
        self, incident_id: FromPath[UUID], db: Db, viewer: Viewer, form: Form
    ) -> Redirect:
        require(viewer, "admin")
        data = form_body(
            {
                "body": _field(form, "body"),
                "share_with_reporter": form.get("share_with_reporter") == "yes",
            },
            NoteIn,
        )
        incident = await domain.get_incident(db, incident_id=incident_id)
        await incident_notes.add_note(
            db, incident=incident, author="registry", actor_id=viewer.principal.id, data=data
        )
        return _back(incident_id, "#notes")

    @post("/aliases")
    async def add_alias(
        self, incident_id: FromPath[UUID], db: Db, viewer: Viewer, form: Form
    ) -> Redirect:
        """Add one alias, as ``POST /v1/incidents/{id}/aliases`` does (409 if another
        incident holds it, 422 if it is not its scheme's format)."""
        require(viewer, "admin")
        data = form_body(
            {"aliases": [{"scheme": _field(form, "scheme"), "value": _field(form, "value")}]},
            AliasesIn,
        )
        await triage.add_incident_aliases(
            db, incident_id=incident_id, aliases=data.aliases, actor_id=viewer.principal.id
        )
        return _back(incident_id, "#aliases")

    @post("/authority-reports")
    async def authority_report(
        self, incident_id: FromPath[UUID], db: Db, viewer: Viewer, form: Form
    ) -> Redirect:
        require(viewer, "admin")
        data = form_body({"kind": _field(form, "kind")}, AuthorityReportIn)
        await triage.record_authority_report(
            db, incident_id=incident_id, data=data, actor_id=viewer.principal.id
        )
        return _back(incident_id)


class _DuplicateIn(msgspec.Struct, kw_only=True):
    id: UUID
