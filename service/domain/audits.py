"""Audit records: who audited which models, how, with what outcome, findings and evidence.

An auditor records an audit only of models it holds an active grant for, covering every
component the audit claims to have examined; findings, evaluations and artefacts are added
under the same rule while the audit is open. Once completed, the record is append-only (a
database trigger enforces it too): corrections are ledger events (``audit.corrected``)
shown beside the record, never edits. A finding's status (open, remediated, accepted) may
still change after completion, since remediation comes after the audit; each change is a
ledger event. A finding can open an incident.

Auditors read their own audits; admins and regulators read all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import audits as q
from service.domain.as_of import states_as_of
from service.domain.grants import active_components
from service.domain.incidents import record_incident
from service.domain.ledger import diff, record_event, to_state
from service.domain.models import resolve_model_id
from service.domain.times import check_claimed
from service.errors import Conflict, Forbidden, NotFound
from service.schemas.audits import (
    ArtefactIn,
    Audit,
    AuditCompleteIn,
    AuditIn,
    CorrectionIn,
    EvaluationIn,
    FindingIn,
)
from service.schemas.incidents import Incident, IncidentIn
from service.schemas.keys import Principal

__all__ = [
    "add_artefacts",
    "add_evaluations",
    "add_findings",
    "complete_audit",
    "correct_audit",
    "create_audit",
    "get_audit",
    "list_audits",
    "open_incident_from_finding",
    "set_finding_status",
]


async def _event(
    conn: asyncpg.Connection,
    audit: Audit,
    *,
    kind: str,
    actor_id: UUID | None,
    occurred_at: datetime | None = None,
    changes: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> int:
    payload = dict(extra or {})
    payload["model_ids"] = [str(m) for m in audit.model_ids]
    return await record_event(
        conn,
        stage="detect",
        kind=kind,
        subject_type="audit",
        subject_id=audit.id,
        model_id=audit.model_ids[0] if audit.model_ids else None,
        actor_id=actor_id,
        occurred_at=occurred_at,
        state=to_state(audit),
        changes=changes,
        extra=payload,
    )


async def _require_grants(
    conn: asyncpg.Connection,
    *,
    auditor_id: UUID,
    model_ids: list[UUID],
    components: list[str],
    at: datetime,
) -> None:
    for model_id in model_ids:
        granted, _ = await active_components(conn, auditor_id=auditor_id, model_id=model_id, at=at)
        missing = set(components) - granted
        if missing:
            raise Forbidden(
                f"no active grant covers {', '.join(sorted(missing))} of model {model_id}"
            )


async def get_audit(
    conn: asyncpg.Connection,
    *,
    audit_id: UUID,
    viewer: Principal | None = None,
    for_update: bool = False,
) -> Audit:
    """One audit. Every reading role reads every audit (auditors those of others too: the
    ledger serves their events to all of them); only its auditor or an admin amends it."""
    del viewer  # no role is refused a read
    row = await q.select_audit(conn, audit_id=audit_id, for_update=for_update)
    if row is None:
        raise NotFound(f"no audit {audit_id}")
    return msgspec.convert(dict(row), Audit)


async def list_audits(
    conn: asyncpg.Connection,
    *,
    viewer: Principal,
    model_id: UUID | None,
    after: UUID | None,
    limit: int,
    as_of: datetime | None = None,
) -> list[Audit]:
    """Every audit (for every reading role, auditors included); with ``as_of``, each as
    recorded then, leaving out those not opened yet."""
    del viewer  # no role is refused a read
    rows = await q.select_audits(conn, auditor_id=None, model_id=model_id, after=after, limit=limit)
    if as_of is not None:
        ids = [row["id"] for row in rows]
        then = await states_as_of(
            conn, subject_type="audit", subject_ids=ids, as_of=as_of, record=Audit
        )
        return [then[i] for i in ids if i in then]
    return [msgspec.convert(dict(row), Audit) for row in rows]


async def create_audit(conn: asyncpg.Connection, *, data: AuditIn, auditor: Principal) -> Audit:
    now = datetime.now(UTC)
    model_ids: list[UUID] = []
    for name in dict.fromkeys(data.models):
        model_id = await resolve_model_id(conn, name=name, role="models")
        if model_id not in model_ids:  # a name given twice in different cases
            model_ids.append(model_id)
    components: list[str] = sorted(set(data.components))
    await _require_grants(
        conn, auditor_id=auditor.id, model_ids=model_ids, components=components, at=now
    )
    started_at = check_claimed(data.started_at or now, key="started_at", now=now)
    audit_id = await q.insert_audit(
        conn,
        auditor_id=auditor.id,
        method=data.method,
        components=components,
        summary=data.summary,
        started_at=started_at,
    )
    await q.link_models(conn, audit_id=audit_id, model_ids=model_ids)
    await _insert_parts(
        conn,
        audit_id=audit_id,
        findings=data.findings,
        evaluations=data.evaluations,
        artefacts=data.artefacts,
    )
    audit = await get_audit(conn, audit_id=audit_id)
    await _event(conn, audit, kind="audit.created", actor_id=auditor.id)
    return audit


async def _insert_parts(
    conn: asyncpg.Connection,
    *,
    audit_id: UUID,
    findings: list[FindingIn],
    evaluations: list[EvaluationIn],
    artefacts: list[ArtefactIn],
) -> None:
    for finding in findings:
        await q.insert_finding(
            conn,
            audit_id=audit_id,
            title=finding.title,
            description=finding.description,
            severity=finding.severity,
        )
    if evaluations:
        await q.insert_evaluations(
            conn,
            audit_id=audit_id,
            metrics=[e.metric for e in evaluations],
            values=[e.value for e in evaluations],
            datasets=[e.dataset for e in evaluations],
            methods=[e.method for e in evaluations],
        )
    if artefacts:
        await q.insert_artefacts(
            conn,
            audit_id=audit_id,
            urls=[a.url for a in artefacts],
            hashes=[a.sha256 for a in artefacts],
        )


async def _open_audit_of(conn: asyncpg.Connection, *, audit_id: UUID, auditor: Principal) -> Audit:
    """The auditor's own audit, still open, with its grants still active."""
    audit = await get_audit(conn, audit_id=audit_id, viewer=auditor, for_update=True)
    if audit.auditor_id != auditor.id:
        raise Forbidden("only the audit's own auditor adds to it")
    if audit.completed_at is not None:
        raise Conflict("the audit is completed: its record is append-only; add a correction")
    await _require_grants(
        conn,
        auditor_id=auditor.id,
        model_ids=audit.model_ids,
        components=[str(c) for c in audit.components],
        at=datetime.now(UTC),
    )
    return audit


async def _add(
    conn: asyncpg.Connection,
    *,
    audit_id: UUID,
    auditor: Principal,
    kind: str,
    findings: list[FindingIn] | None = None,
    evaluations: list[EvaluationIn] | None = None,
    artefacts: list[ArtefactIn] | None = None,
) -> Audit:
    before = await _open_audit_of(conn, audit_id=audit_id, auditor=auditor)
    await _insert_parts(
        conn,
        audit_id=audit_id,
        findings=findings or [],
        evaluations=evaluations or [],
        artefacts=artefacts or [],
    )
    after = await get_audit(conn, audit_id=audit_id)
    await _event(
        conn,
        after,
        kind=kind,
        actor_id=auditor.id,
        changes=diff(to_state(before), to_state(after)),
    )
    return after


async def add_findings(
    conn: asyncpg.Connection, *, audit_id: UUID, auditor: Principal, findings: list[FindingIn]
) -> Audit:
    return await _add(
        conn, audit_id=audit_id, auditor=auditor, kind="audit.finding_added", findings=findings
    )


async def add_evaluations(
    conn: asyncpg.Connection,
    *,
    audit_id: UUID,
    auditor: Principal,
    evaluations: list[EvaluationIn],
) -> Audit:
    return await _add(
        conn,
        audit_id=audit_id,
        auditor=auditor,
        kind="audit.evaluation_added",
        evaluations=evaluations,
    )


async def add_artefacts(
    conn: asyncpg.Connection, *, audit_id: UUID, auditor: Principal, artefacts: list[ArtefactIn]
) -> Audit:
    return await _add(
        conn, audit_id=audit_id, auditor=auditor, kind="audit.artefact_added", artefacts=artefacts
    )


async def complete_audit(
    conn: asyncpg.Connection, *, audit_id: UUID, auditor: Principal, data: AuditCompleteIn
) -> Audit:
    before = await _open_audit_of(conn, audit_id=audit_id, auditor=auditor)
    completed_at = check_claimed(
        data.completed_at or datetime.now(UTC),
        key="completed_at",
        follows=before.started_at,
        follows_what="the audit's start",
    )
    summary = before.summary if data.summary is msgspec.UNSET else data.summary
    await q.complete_audit(
        conn, audit_id=audit_id, completed_at=completed_at, outcome=data.outcome, summary=summary
    )
    after = await get_audit(conn, audit_id=audit_id)
    await _event(
        conn,
        after,
        kind="audit.completed",
        actor_id=auditor.id,
        occurred_at=completed_at,
        changes=diff(to_state(before), to_state(after)),
    )
    return after


def _may_amend(audit: Audit, principal: Principal) -> None:
    if principal.role != "admin" and audit.auditor_id != principal.id:
        raise Forbidden("only the audit's auditor or an admin may do this")


async def correct_audit(
    conn: asyncpg.Connection, *, audit_id: UUID, principal: Principal, data: CorrectionIn
) -> Audit:
    """Record a correction to a completed audit, as a ledger event beside the record."""
    audit = await get_audit(conn, audit_id=audit_id, viewer=principal, for_update=True)
    _may_amend(audit, principal)
    if audit.completed_at is None:
        raise Conflict("the audit is still open: add to it instead of correcting it")
    await record_event(
        conn,
        stage="detect",
        kind="audit.corrected",
        subject_type="audit",
        subject_id=audit.id,
        model_id=audit.model_ids[0] if audit.model_ids else None,
        actor_id=principal.id,
        extra={
            "field": data.field,
            "correction": data.correction,
            "reason": data.reason,
            "model_ids": [str(m) for m in audit.model_ids],
        },
    )
    return await get_audit(conn, audit_id=audit_id)


async def set_finding_status(
    conn: asyncpg.Connection,
    *,
    audit_id: UUID,
    finding_id: UUID,
    status: str,
    principal: Principal,
) -> Audit:
    """Move a finding to open, remediated or accepted (also after completion)."""
    before = await get_audit(conn, audit_id=audit_id, viewer=principal, for_update=True)
    _may_amend(before, principal)
    row = await q.select_finding(conn, finding_id=finding_id, audit_id=audit_id)
    if row is None:
        raise NotFound(f"no finding {finding_id} in audit {audit_id}")
    if row["status"] == status:
        return before
    await q.update_finding(
        conn, finding_id=finding_id, status=status, incident_id=row["incident_id"]
    )
    after = await get_audit(conn, audit_id=audit_id)
    await _event(
        conn,
        after,
        kind="audit.finding_status_changed",
        actor_id=principal.id,
        changes=diff(to_state(before), to_state(after)),
        extra={"finding_id": str(finding_id), "status": status},
    )
    return after


async def open_incident_from_finding(
    conn: asyncpg.Connection,
    *,
    audit_id: UUID,
    finding_id: UUID,
    data: IncidentIn,
    principal: Principal,
) -> Incident:
    """Open an incident for a finding (its models default to the audit's) and link them."""
    before = await get_audit(conn, audit_id=audit_id, viewer=principal, for_update=True)
    _may_amend(before, principal)
    row = await q.select_finding(conn, finding_id=finding_id, audit_id=audit_id)
    if row is None:
        raise NotFound(f"no finding {finding_id} in audit {audit_id}")
    if row["incident_id"] is not None:
        raise Conflict(f"the finding opened incident {row['incident_id']} already")
    if not data.models and not data.hostings:
        data = msgspec.structs.replace(data, models=list(before.models))
    # Its source is the finding, named in its report: every role reads the audit, and with it
    # who ran it, so the incident records no reporter of its own to hide from auditors.
    incident, _ = await record_incident(
        conn,
        data=data,
        channel="api",
        reporter_platform_id=None,
        reporter_principal_id=None,
        actor_id=principal.id,
        extra={"audit_id": str(audit_id), "finding_id": str(finding_id)},
    )
    await q.update_finding(
        conn, finding_id=finding_id, status=row["status"], incident_id=incident.id
    )
    after = await get_audit(conn, audit_id=audit_id)
    await _event(
        conn,
        after,
        kind="audit.finding_incident_opened",
        actor_id=principal.id,
        changes=diff(to_state(before), to_state(after)),
        extra={"finding_id": str(finding_id), "incident_id": str(incident.id)},
    )
    return incident
