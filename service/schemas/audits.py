"""External audits: grants of access to auditors, and the records of their audits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from service.schemas.common import HttpUrl, ModelName
from service.schemas.hostings import Documentation
from service.schemas.incidents import Severity
from service.schemas.models import Derivation, Openness

__all__ = [
    "ArtefactIn",
    "Audit",
    "AuditCompleteIn",
    "AuditGrant",
    "AuditGrantIn",
    "AuditGrantPage",
    "AuditIn",
    "AuditPage",
    "Component",
    "Correction",
    "CorrectionIn",
    "EvaluationIn",
    "Finding",
    "FindingIn",
    "FindingStatusIn",
    "HostingAccess",
    "Method",
    "ModelAccess",
    "PublicModel",
]

Component = Literal["weights", "code", "data", "documentation"]
Method = Literal[
    "red_team", "benchmark_evaluation", "documentation_review", "safety_testing_review", "other"
]
Outcome = Literal["pass", "conditional", "fail"]
FindingStatus = Literal["open", "remediated", "accepted"]

Components = Annotated[list[Component], msgspec.Meta(min_length=1, max_length=4)]
Text = Annotated[str, msgspec.Meta(max_length=20_000)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Sha256 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
FieldName = Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,63}(\.[a-z0-9_-]{1,63})*$")]


# -- grants --------------------------------------------------------------------------------


class AuditGrantIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Give an auditor principal access to one model's named components for a window."""

    auditor_id: UUID
    model: ModelName
    components: Components
    #: Defaults to now. The window is ``[valid_from, valid_until)``.
    valid_from: datetime | None = None
    valid_until: datetime


class AuditGrant(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    auditor_id: UUID
    model_id: UUID
    model: str
    components: list[Component]
    valid_from: datetime
    valid_until: datetime
    granted_by: UUID
    revoked_at: datetime | None
    created_at: datetime


class AuditGrantPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[AuditGrant]
    next_cursor: str | None


class PublicModel(msgspec.Struct, frozen=True, kw_only=True):
    """What anyone with a key may know about a model: its public metadata."""

    id: UUID
    name: str
    provider: str | None
    modalities: list[str]
    tasks: list[str]
    base_model: str | None
    derivation: Derivation | None
    openness: Openness


class HostingAccess(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Where a granted component can be reached on one platform."""

    hosting_id: UUID
    platform: str
    #: With ``weights``, ``code`` or ``data`` granted: where to fetch them.
    url: str | None = None
    revision: str | None = None
    external_id: str | None = None
    licence: str | None = None
    gated: bool | None = None
    #: With ``documentation`` granted: the evidence each platform holds.
    documentation: Documentation | None = None


class ModelAccess(msgspec.Struct, frozen=True, kw_only=True):
    """An auditor's view of a model: public metadata always, more only inside a grant."""

    model: PublicModel
    #: Components granted now (empty outside any active grant).
    components: list[Component]
    grants: list[AuditGrant]
    hostings: list[HostingAccess]


# -- audits --------------------------------------------------------------------------------


class FindingIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: Title
    severity: Severity
    description: Text = ""


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    audit_id: UUID
    title: str
    description: str
    severity: Severity
    status: FindingStatus
    #: The incident this finding opened, if any.
    incident_id: UUID | None
    created_at: datetime
    updated_at: datetime


class FindingStatusIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    status: FindingStatus


class EvaluationIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    metric: Label
    value: float
    dataset: Label | None = None
    method: Label | None = None


class Evaluation(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    metric: str
    value: float
    dataset: str | None
    method: str | None


class ArtefactIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Evidence kept elsewhere, pinned by its SHA-256 (lower-case hex)."""

    url: HttpUrl
    sha256: Sha256


class Artefact(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    url: str
    sha256: str


class AuditIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new audit; every model must be inside an active grant covering ``components``."""

    models: Annotated[list[ModelName], msgspec.Meta(min_length=1, max_length=32)]
    method: Method
    components: Components
    summary: Text = ""
    started_at: datetime | None = None
    findings: Annotated[list[FindingIn], msgspec.Meta(max_length=200)] = msgspec.field(
        default_factory=list
    )
    evaluations: Annotated[list[EvaluationIn], msgspec.Meta(max_length=500)] = msgspec.field(
        default_factory=list
    )
    artefacts: Annotated[list[ArtefactIn], msgspec.Meta(max_length=200)] = msgspec.field(
        default_factory=list
    )


class AuditCompleteIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    outcome: Outcome
    summary: Text | msgspec.UnsetType = msgspec.UNSET
    completed_at: datetime | None = None


class CorrectionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A correction to a completed audit: recorded beside it, never written over it."""

    #: What is corrected, e.g. ``summary``, ``outcome``, ``evaluations.<id>``.
    field: FieldName
    correction: Text
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class Correction(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    field: str
    correction: str
    reason: str
    actor_id: UUID | None
    recorded_at: datetime


class Audit(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    auditor_id: UUID
    method: Method
    components: list[Component]
    summary: str
    model_ids: list[UUID]
    models: list[str]
    started_at: datetime
    completed_at: datetime | None
    outcome: Outcome | None
    findings: list[Finding]
    evaluations: list[Evaluation]
    artefacts: list[Artefact]
    #: Corrections made after completion, oldest first (from the ledger).
    corrections: list[Correction]
    created_at: datetime


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Audit]
    next_cursor: str | None
