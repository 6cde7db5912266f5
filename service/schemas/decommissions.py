"""Decommissioning decisions: a model recalled, restricted, relicensed or deprecated.

Workflow (anything else is a 409)::

    proposed -> approved -> notified -> executed
    proposed | approved | notified -> withdrawn
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from service.schemas.common import ModelName, PlatformSlug
from service.schemas.policies import Action

__all__ = [
    "ApprovalIn",
    "Decision",
    "DecisionIn",
    "DecisionPage",
    "DecisionStatus",
    "DerivativeModel",
    "Impact",
    "ImpactHosting",
    "Outcome",
    "OverduePage",
    "OverduePlatform",
    "PlatformImpact",
    "Target",
    "WithdrawIn",
]

DecisionStatus = Literal["proposed", "approved", "notified", "executed", "withdrawn"]
Outcome = Literal["removed", "restricted"]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]
Licence = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Revision = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Use = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
#: A moment with its offset: a decision's dates are never left to the server's zone.
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class DecisionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A proposed decision; a second admin must approve it before anyone is told."""

    model: ModelName
    action: Action
    reason: Reason
    #: Only these revisions of the model; empty means every revision.
    revisions: Annotated[list[Revision], msgspec.Meta(max_length=64)] = msgspec.field(
        default_factory=list
    )
    incident_ids: Annotated[list[UUID], msgspec.Meta(max_length=64)] = msgspec.field(
        default_factory=list
    )
    finding_ids: Annotated[list[UUID], msgspec.Meta(max_length=64)] = msgspec.field(
        default_factory=list
    )
    policy_id: UUID | None = None
    policy_clause: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None
    #: Only these platforms; null means every platform hosting a model in scope.
    platforms: Annotated[list[PlatformSlug], msgspec.Meta(max_length=200)] | None = None
    #: The decision covers every model derived from this one, and their hostings.
    include_derivatives: bool = False
    #: When the decision takes effect; defaults to now.
    effective_at: AwareDatetime | None = None
    #: For ``deprecate`` (required): when the model stops being offered.
    sunset_at: AwareDatetime | None = None
    successor_model: ModelName | None = None
    #: For ``licence_change``: ``new_licence`` is required.
    old_licence: Licence | None = None
    new_licence: Licence | None = None
    prohibited_uses: Annotated[list[Use], msgspec.Meta(max_length=32)] = msgspec.field(
        default_factory=list
    )
    #: When platforms must have confirmed; defaults to a set time after notification.
    confirm_by: AwareDatetime | None = None


class WithdrawIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class ApprovalIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An approval, optionally quoting the impact its approver was shown."""

    #: The ``digest`` of the impact the approver reviewed (``GET .../impact``). When given,
    #: the approval is refused (409) if the decision's reach has changed since, so nobody
    #: approves a recall larger than the one they saw.
    impact_digest: Annotated[str, msgspec.Meta(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """One hosting the decision applies to, and whether its platform confirmed."""

    hosting_id: UUID
    platform_id: UUID
    platform: str
    model_id: UUID
    model: str
    #: The hosted model is a descendant of the decision's model.
    inherited: bool
    #: The hosting came into scope after the platforms were notified (recorded then, or
    #: hosted again after its platform had confirmed), and was flagged then.
    late: bool
    confirmed_at: datetime | None
    outcome: Outcome | None
    created_at: datetime


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    model_id: UUID
    model: str
    revisions: list[str]
    action: Action
    reason: str
    policy_id: UUID | None
    policy_clause: str | None
    include_derivatives: bool
    platform_ids: list[UUID] | None
    effective_at: datetime
    sunset_at: datetime | None
    successor_model_id: UUID | None
    old_licence: str | None
    new_licence: str | None
    prohibited_uses: list[str]
    status: DecisionStatus
    proposed_by: UUID | None
    approved_by: UUID | None
    withdrawn_by: UUID | None
    withdrawn_reason: str | None
    proposed_at: datetime
    approved_at: datetime | None
    notified_at: datetime | None
    executed_at: datetime | None
    withdrawn_at: datetime | None
    confirm_by: datetime | None
    incident_ids: list[UUID]
    finding_ids: list[UUID]
    targets: list[Target]
    created_at: datetime
    updated_at: datetime


class DecisionPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Decision]
    next_cursor: str | None


class OverduePlatform(msgspec.Struct, frozen=True, kw_only=True):
    """A platform that has not confirmed a notified decision by its deadline."""

    decision_id: UUID
    model_id: UUID
    action: Action
    platform_id: UUID
    platform: str
    confirm_by: datetime
    #: Hostings of that platform the decision still waits on.
    hosting_ids: list[UUID]
    overdue_seconds: float


class OverduePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[OverduePlatform]


class ImpactHosting(msgspec.Struct, frozen=True, kw_only=True):
    """One hosting a decision would reach."""

    hosting_id: UUID
    model_id: UUID
    model: str
    status: str
    downloads: int | None


class PlatformImpact(msgspec.Struct, frozen=True, kw_only=True):
    """A platform a decision would reach: its hostings, and their current downloads."""

    platform_id: UUID
    platform: str
    hostings: list[ImpactHosting]
    downloads: int


class DerivativeModel(msgspec.Struct, frozen=True, kw_only=True):
    """A descendant model a decision with derivatives included would reach."""

    model_id: UUID
    model: str
    #: The model it derives from directly.
    base_model: str


class Impact(msgspec.Struct, frozen=True, kw_only=True):
    """What a decision would reach, as the registry records it now."""

    model_id: UUID
    model: str
    include_derivatives: bool
    #: The hostings in scope (not removed), by platform.
    platforms: list[PlatformImpact]
    #: The descendant models in scope, by relation (``fine_tune``, ``adapter``, ...,
    #: ``unspecified`` when none is recorded); empty without derivatives.
    derivatives: dict[str, list[DerivativeModel]]
    #: The platforms a notice would go to: those with a hosting in scope.
    notify: list[str]
    hostings: int
    #: The current downloads of the hostings in scope (counts not reported are left out).
    downloads: int
    #: ``sha256:`` of the impact's other fields, as JSON with sorted keys: quote it when
    #: approving to be sure the decision still reaches what was reviewed.
    digest: str = ""
