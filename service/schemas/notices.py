"""The notices the registry sends to platforms' endpoints, as Standard Webhooks messages.

A notice body is ``{"type", "timestamp", "id", "data"}``; ``data`` is one of the Structs
below, chosen by ``type``. The registry builds them; they are published in the OpenAPI
document (``webhooks``) so that a platform can generate its receiver's types. A receiver
should ignore fields it does not know: new ones may be added.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from service.schemas.policies import Action

__all__ = [
    "Approval",
    "DecommissionNotice",
    "DecommissionNoticeData",
    "DecommissionWithdrawn",
    "DecommissionWithdrawnData",
    "NoticeHosting",
]


class NoticeHosting(msgspec.Struct, frozen=True, kw_only=True):
    """One of the receiving platform's own hostings the decision applies to."""

    #: The registry's id for the hosting.
    hosting_id: UUID
    #: The name the platform hosts the model under (its repository name).
    name: str
    #: The platform's own id for the hosting, as it last sent it; null when it never did.
    external_id: str | None
    #: The hosting's URL on the platform, as last recorded.
    url: str
    #: The registry's name and id of the hosted model (a descendant when ``inherited``).
    model: str
    model_id: UUID
    #: The hosted model is a descendant of the decision's model.
    inherited: bool
    #: The hosting came into the decision's scope after the platforms were notified.
    late: bool


class Approval(msgspec.Struct, frozen=True, kw_only=True):
    """One step of the decision's sign-off, and the ledger event that records it."""

    step: Literal["proposed", "approved"]
    #: The principal who took the step; null when the registry took it on its own
    #: (a policy's automatic proposal).
    principal_id: UUID | None
    #: That principal's name; null when ``principal_id`` is.
    principal: str | None
    at: datetime
    #: The sequence number of the ledger event recording the step (listed by
    #: ``GET /v1/events?subject_id=<decision_id>``).
    seq: int


class DecommissionNoticeData(msgspec.Struct, frozen=True, kw_only=True):
    """A decision the platform must act on for the hostings listed."""

    decision_id: UUID
    action: Action
    #: The decision's model (a hosting may be of a descendant: see ``hostings``).
    model: str
    model_id: UUID
    #: Only these revisions of the model; empty means every revision.
    revisions: list[str]
    reason: str
    #: The policy clause the decision applies; null when it cites none.
    policy_clause: str | None
    include_derivatives: bool
    effective_at: datetime
    #: For a deprecation: when the model stops being offered; null otherwise.
    sunset_at: datetime | None
    #: For a deprecation: the model to offer instead, by name; null when none is named.
    successor_model: str | None
    successor_model_id: UUID | None
    #: For a licence change: null when the decision is of another action.
    old_licence: str | None
    new_licence: str | None
    #: Uses the decision prohibits; empty when none.
    prohibited_uses: list[str]
    #: When the platform must have confirmed with ``decommission.executed``.
    confirm_by: datetime | None
    #: The receiving platform's hostings it applies to (only the newly added ones in a
    #: notice about hostings that came into scope late).
    hostings: list[NoticeHosting]
    #: Who proposed and who approved it, in ledger order.
    approvals: list[Approval]


class DecommissionWithdrawnData(msgspec.Struct, frozen=True, kw_only=True):
    """A decision the platform was notified of is withdrawn: nothing more is asked."""

    decision_id: UUID
    model: str
    model_id: UUID
    reason: str
    #: The receiving platform's hostings the withdrawn decision applied to.
    hostings: list[NoticeHosting]


class _Notice(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    #: The notice's id: also its ``webhook-id``, the same on every attempt.
    id: UUID
    #: When the notice was queued.
    timestamp: datetime


class DecommissionNotice(_Notice, frozen=True, tag="decommission.notice"):
    data: DecommissionNoticeData


class DecommissionWithdrawn(_Notice, frozen=True, tag="decommission.withdrawn"):
    data: DecommissionWithdrawnData
