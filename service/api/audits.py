"""``/v1/audits``: external audits recorded by auditors under a grant.

Auditors create audits and add findings, evaluations and artefacts to their own open
audits; completed audits take only corrections (ledger events) and finding status changes.
Admins and regulators read every audit; an auditor reads its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from service.api.auth import allow
from service.api.deps import Caller, Db
from service.api.pagination import Cursor, Limit, decode_uuid_cursor, paginate
from service.api.problems import problem_responses
from service.domain import audits as domain
from service.domain.incidents import to_view
from service.schemas.audits import (
    ArtefactIn,
    Audit,
    AuditCompleteIn,
    AuditIn,
    AuditPage,
    CorrectionIn,
    EvaluationIn,
    FindingIn,
    FindingStatusIn,
)
from service.schemas.incidents import IncidentIn, IncidentView

__all__ = ["AuditController"]

AUDITOR = allow("auditor")
READERS = allow("admin", "auditor", "regulator")
AMENDERS = allow("admin", "auditor")
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 415, 422)


class FindingsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    items: list[FindingIn]


class EvaluationsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    items: list[EvaluationIn]


class ArtefactsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    items: list[ArtefactIn]


class AuditController(Controller):
    path = "/v1/audits"
    tags = ["audits"]

    @post(
        operation_id="createAudit",
        summary="Record an audit of models the auditor holds active grants for",
        guards=[AUDITOR],
        responses=problem_responses(400, 401, 403, 413, 415, 422),
    )
    async def create(self, data: JSONBody[AuditIn], db: Db, principal: Caller) -> Audit:
        return await domain.create_audit(db, data=data, auditor=principal)

    @get(
        operation_id="listAudits",
        summary="List audits (an auditor sees its own)",
        guards=[READERS],
        responses=problem_responses(400, 401, 403),
    )
    async def index(
        self,
        db: Db,
        principal: Caller,
        model_id: FromQuery[UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> AuditPage:
        items = await domain.list_audits(
            db,
            viewer=principal,
            model_id=model_id,
            after=decode_uuid_cursor(cursor),
            limit=limit + 1,
        )
        page, next_cursor = paginate(items, limit, lambda a: a.id)
        return AuditPage(items=page, next_cursor=next_cursor)

    @get(
        "/{audit_id:uuid}",
        operation_id="getAudit",
        summary="One audit, with its findings, evaluations, artefacts and corrections",
        guards=[READERS],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read(self, audit_id: FromPath[UUID], db: Db, principal: Caller) -> Audit:
        return await domain.get_audit(db, audit_id=audit_id, viewer=principal)

    @post(
        "/{audit_id:uuid}/findings",
        operation_id="addAuditFindings",
        summary="Add findings to an open audit",
        guards=[AUDITOR],
        status_code=200,
        responses=WRITE_ERRORS,
    )
    async def findings(
        self, audit_id: FromPath[UUID], data: JSONBody[FindingsIn], db: Db, principal: Caller
    ) -> Audit:
        return await domain.add_findings(
            db, audit_id=audit_id, auditor=principal, findings=data.items
        )

    @post(
        "/{audit_id:uuid}/evaluations",
        operation_id="addAuditEvaluations",
        summary="Add evaluation results to an open audit",
        guards=[AUDITOR],
        status_code=200,
        responses=WRITE_ERRORS,
    )
    async def evaluations(
        self, audit_id: FromPath[UUID], data: JSONBody[EvaluationsIn], db: Db, principal: Caller
    ) -> Audit:
        return await domain.add_evaluations(
            db, audit_id=audit_id, auditor=principal, evaluations=data.items
        )

    @post(
        "/{audit_id:uuid}/artefacts",
        operation_id="addAuditArtefacts",
        summary="Add evidence artefacts (URL and SHA-256) to an open audit",
        guards=[AUDITOR],
        status_code=200,
        responses=WRITE_ERRORS,
    )
    async def artefacts(
        self, audit_id: FromPath[UUID], data: JSONBody[ArtefactsIn], db: Db, principal: Caller
    ) -> Audit:
        return await domain.add_artefacts(
            db, audit_id=audit_id, auditor=principal, artefacts=data.items
        )

    @post(
        "/{audit_id:uuid}/complete",
        operation_id="completeAudit",
        summary="Complete an audit with its outcome; the record is append-only afterwards",
        guards=[AUDITOR],
        status_code=200,
        responses=WRITE_ERRORS,
    )
    async def complete(
        self, audit_id: FromPath[UUID], data: JSONBody[AuditCompleteIn], db: Db, principal: Caller
    ) -> Audit:
        return await domain.complete_audit(db, audit_id=audit_id, auditor=principal, data=data)

    @post(
        "/{audit_id:uuid}/corrections",
        operation_id="correctAudit",
        summary="Record a correction to a completed audit (a ledger event, not an edit)",
        guards=[AMENDERS],
        status_code=200,
        responses=WRITE_ERRORS,
    )
    async def correct(
        self, audit_id: FromPath[UUID], data: JSONBody[CorrectionIn], db: Db, principal: Caller
    ) -> Audit:
        return await domain.correct_audit(db, audit_id=audit_id, principal=principal, data=data)

    @post(
        "/{audit_id:uuid}/findings/{finding_id:uuid}/status",
        operation_id="setFindingStatus",
        summary="Mark a finding open, remediated or accepted",
        guards=[AMENDERS],
        status_code=200,
        responses=WRITE_ERRORS,
    )
    async def finding_status(
        self,
        audit_id: FromPath[UUID],
        finding_id: FromPath[UUID],
        data: JSONBody[FindingStatusIn],
        db: Db,
        principal: Caller,
    ) -> Audit:
        return await domain.set_finding_status(
            db, audit_id=audit_id, finding_id=finding_id, status=data.status, principal=principal
        )

    @post(
        "/{audit_id:uuid}/findings/{finding_id:uuid}/incident",
        operation_id="openIncidentFromFinding",
        summary="Open an incident for a finding (models default to the audit's)",
        guards=[AMENDERS],
        responses=WRITE_ERRORS,
    )
    async def open_incident(
        self,
        audit_id: FromPath[UUID],
        finding_id: FromPath[UUID],
        data: JSONBody[IncidentIn],
        db: Db,
        principal: Caller,
    ) -> IncidentView:
        incident = await domain.open_incident_from_finding(
            db, audit_id=audit_id, finding_id=finding_id, data=data, principal=principal
        )
        return to_view(incident, now=datetime.now(UTC))
