"""``/console/audits``: audit engagements, for auditors (admins and regulators read them).

An auditor sees the grants in force for them, records an audit of granted models, adds
findings, evaluation results and evidence (a URL pinned by its SHA-256) while it is open,
completes it, and reads the history of what it recorded from the ledger. Each step calls
the function behind the matching ``/v1/audits`` route under the same roles: the grant and
append-only rules are the domain's.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromPath
from litestar.response import Redirect, Template

from service.api.deps import Db
from service.console.web import Form, Viewer, form_body, page, require
from service.domain import audits as domain
from service.domain.grants import list_grants
from service.domain.history import list_events
from service.errors import InvalidInput
from service.schemas.audits import (
    ArtefactIn,
    AuditCompleteIn,
    AuditIn,
    EvaluationIn,
    FindingIn,
)
from service.schemas.keys import Role

__all__ = ["AuditPageController"]

READERS: tuple[Role, ...] = ("admin", "auditor", "regulator")
METHODS = ("red_team", "benchmark_evaluation", "documentation_review", "safety_testing_review")
COMPONENTS = ("weights", "code", "data", "documentation")
SEVERITIES = ("low", "medium", "high", "critical")
OUTCOMES = ("pass", "conditional", "fail")


def _text(form: FormMultiDict, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _all(form: FormMultiDict, name: str) -> list[str]:
    return [v for v in form.getall(name, []) if isinstance(v, str) and v]


def _back(audit_id: UUID, anchor: str = "") -> Redirect:
    return Redirect(f"/console/audits/{audit_id}{anchor}", status_code=303)


class AuditPageController(Controller):
    path = "/console/audits"

    @get("/")
    async def index(self, db: Db, viewer: Viewer) -> Template:
        require(viewer, *READERS)
        principal = viewer.principal
        grants = await list_grants(
            db,
            visible_to=principal,
            auditor_id=principal.id if principal.role == "auditor" else None,
            model_id=None,
            active_at=datetime.now(UTC),
            after=None,
            limit=200,
        )
        audits = await domain.list_audits(
            db, viewer=principal, model_id=None, after=None, limit=200
        )
        return page(
            "audits.html",
            viewer=viewer,
            title="Audits",
            grants=grants,
            audits=audits,
            granted_models=sorted({g.model for g in grants}),
            auditor=principal.role == "auditor",
            methods=METHODS,
            components=COMPONENTS,
        )

    @post("/")
    async def create(self, db: Db, viewer: Viewer, form: Form) -> Redirect:
        require(viewer, "auditor")
        if not _all(form, "models"):
            raise InvalidInput("choose at least one granted model", key="models")
        data = form_body(
            {
                "models": _all(form, "models"),
                "method": _text(form, "method"),
                "components": _all(form, "components"),
                "summary": _text(form, "summary"),
            },
            AuditIn,
        )
        audit = await domain.create_audit(db, data=data, auditor=viewer.principal)
        return _back(audit.id)

    @get("/{audit_id:uuid}")
    async def show(self, audit_id: FromPath[UUID], db: Db, viewer: Viewer) -> Template:
        require(viewer, *READERS)
        audit = await domain.get_audit(db, audit_id=audit_id, viewer=viewer.principal)
        events = await list_events(db, subject_id=audit_id, limit=500)
        return page(
            "audit.html",
            viewer=viewer,
            title=f"Audit of {', '.join(audit.models)}",
            audit=audit,
            events=[(e, msgspec.json.decode(e.payload)) for e in events],
            # Adding to the record is for its own auditor, while it is open (as the API).
            editable=viewer.principal.id == audit.auditor_id and audit.completed_at is None,
            severities=SEVERITIES,
            outcomes=OUTCOMES,
        )

    @post("/{audit_id:uuid}/findings")
    async def add_finding(
        self, audit_id: FromPath[UUID], db: Db, viewer: Viewer, form: Form
    ) -> Redirect:
        require(viewer, "auditor")
        finding = form_body(
            {
                "title": _text(form, "title"),
                "severity": _text(form, "severity"),
                "description": _text(form, "description"),
            },
            FindingIn,
        )
        await domain.add_findings(
            db, audit_id=audit_id, auditor=viewer.principal, findings=[finding]
        )
        return _back(audit_id, "#findings")

    @post("/{audit_id:uuid}/evaluations")
    async def add_evaluation(
        self, audit_id: FromPath[UUID], db: Db, viewer: Viewer, form: Form
    ) -> Redirect:
        require(viewer, "auditor")
        value = _text(form, "value")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            # JSON, and so the API, carries finite numbers only.
            raise InvalidInput(f"the value is not a number: {value!r}", key="value")
        evaluation = form_body(
            {
                "metric": _text(form, "metric"),
                "value": number,
                "dataset": _text(form, "dataset") or None,
            },
            EvaluationIn,
        )
        await domain.add_evaluations(
            db, audit_id=audit_id, auditor=viewer.principal, evaluations=[evaluation]
        )
        return _back(audit_id, "#evaluations")

    @post("/{audit_id:uuid}/artefacts")
    async def add_artefact(
        self, audit_id: FromPath[UUID], db: Db, viewer: Viewer, form: Form
    ) -> Redirect:
        require(viewer, "auditor")
        artefact = form_body(
            {"url": _text(form, "url"), "sha256": _text(form, "sha256").lower()}, ArtefactIn
        )
        await domain.add_artefacts(
            db, audit_id=audit_id, auditor=viewer.principal, artefacts=[artefact]
        )
        return _back(audit_id, "#evidence")

    @post("/{audit_id:uuid}/complete")
    async def complete(
        self, audit_id: FromPath[UUID], db: Db, viewer: Viewer, form: Form
    ) -> Redirect:
        require(viewer, "auditor")
        fields: dict[str, Any] = {"outcome": _text(form, "outcome")}
        if summary := _text(form, "summary"):
            fields["summary"] = summary
        data = form_body(fields, AuditCompleteIn)
        await domain.complete_audit(db, audit_id=audit_id, auditor=viewer.principal, data=data)
        return _back(audit_id)
