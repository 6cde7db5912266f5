"""The notices the registry sends to platforms' endpoints, as Standard Webhooks messages.

A notice body is ``{"type", "timestamp", "id", "data"}``; ``data`` is one of the Structs
below, chosen by ``type``. The registry builds them; they are published in the OpenAPI
document (``webhooks``) so that a platform can generate its receiver's types. A receiver
should ignore fields it does not know: new ones may be added.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from service.schemas.policies import Action

__all__ = [
    "Approval",
    "DecommissionNotice",
    "DecommissionNoticeData",
    "DecommissionWithdrawn",
    "DecommissionWithdrawnData",
    "EndpointTest",
    "EndpointTestData",
    "NoticeHosting",
]


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class NoticeHosting(msgspec.Struct, frozen=True, kw_only=True):
    """One of the receiving platform's own hostings the decision applies to."""

    hosting_id: Annotated[UUID, _doc("The registry's id for the hosting.")]
    name: Annotated[str, _doc("The name the platform hosts the model under (its repository name).")]
    external_id: Annotated[
        str | None,
        _doc("The platform's own id for the hosting, as it last sent it; null when it never did."),
    ]
    url: Annotated[str, _doc("The hosting's URL on the platform, as last recorded.")]
    model: Annotated[
        str, _doc("The registry's name of the hosted model (a descendant when `inherited`).")
    ]
    model_id: Annotated[UUID, _doc("The registry's id of the hosted model.")]
    inherited: Annotated[bool, _doc("The hosted model is a descendant of the decision's model.")]
    late: Annotated[
        bool, _doc("The hosting came into the decision's scope after the platforms were notified.")
    ]


class Approval(msgspec.Struct, frozen=True, kw_only=True):
    """One step of the decision's sign-off, and the ledger event that records it."""

    step: Annotated[Literal["proposed", "approved"], _doc("The step taken.")]
    principal_id: Annotated[
        UUID | None,
        _doc(
            "The principal who took the step (for a policy's proposal, the one whose triage "
            "step triggered it); null where the ledger records none."
        ),
    ]
    principal: Annotated[str | None, _doc("That principal's name; null when `principal_id` is.")]
    at: Annotated[datetime, _doc("When the step was taken.")]
    seq: Annotated[
        int,
        _doc(
            "The sequence number of the ledger event recording the step (listed by "
            "`GET /v1/events?subject_id=<decision_id>`)."
        ),
    ]


class DecommissionNoticeData(msgspec.Struct, frozen=True, kw_only=True):
    """A decision the platform must act on for the hostings listed. Every field is always
    present; an empty value is null (or an empty list), never an absent field."""

    decision_id: Annotated[UUID, _doc("The decision; `decommission.executed` names it.")]
    action: Annotated[Action, _doc("What the decision asks of the platform.")]
    model: Annotated[
        str, _doc("The decision's model (a hosting may be of a descendant: see `hostings`).")
    ]
    model_id: Annotated[UUID, _doc("The registry's id of the decision's model.")]
    revisions: Annotated[
        list[str], _doc("Only these revisions of the model; empty means every revision.")
    ]
    reason: Annotated[str, _doc("Why, as the registry's reviewers wrote it.")]
    policy_clause: Annotated[
        str | None, _doc("The policy clause the decision applies; null when it cites none.")
    ]
    include_derivatives: Annotated[
        bool, _doc("The decision covers models derived from its model too.")
    ]
    effective_at: Annotated[datetime, _doc("When the decision takes effect.")]
    sunset_at: Annotated[
        datetime | None,
        _doc("For a deprecation: when the model stops being offered; null otherwise."),
    ]
    successor_model: Annotated[
        str | None,
        _doc("For a deprecation: the model to offer instead, by name; null when none is named."),
    ]
    successor_model_id: Annotated[
        UUID | None, _doc("The successor's registry id; null when none is named.")
    ]
    old_licence: Annotated[
        str | None, _doc("For a licence change, the licence replaced; null otherwise.")
    ]
    new_licence: Annotated[
        str | None, _doc("For a licence change, the new licence; null otherwise.")
    ]
    prohibited_uses: Annotated[list[str], _doc("Uses the decision prohibits; empty when none.")]
    confirm_by: Annotated[
        datetime | None,
        _doc(
            "When the platform must have confirmed with `decommission.executed`; null when "
            "no deadline is set."
        ),
    ]
    hostings: Annotated[
        list[NoticeHosting],
        _doc(
            "The receiving platform's hostings it applies to (in a notice about hostings that "
            "came into scope late, only those)."
        ),
    ]
    approvals: Annotated[list[Approval], _doc("Who proposed and who approved it, in ledger order.")]


class DecommissionWithdrawnData(msgspec.Struct, frozen=True, kw_only=True):
    """A decision the platform was notified of is withdrawn: nothing more is asked."""

    decision_id: Annotated[UUID, _doc("The decision withdrawn.")]
    model: Annotated[str, _doc("The decision's model.")]
    model_id: Annotated[UUID, _doc("The registry's id of the decision's model.")]
    reason: Annotated[str, _doc("Why it was withdrawn.")]
    hostings: Annotated[
        list[NoticeHosting],
        _doc("The receiving platform's hostings the withdrawn decision applied to."),
    ]


class EndpointTestData(msgspec.Struct, frozen=True, kw_only=True):
    """A test notice the platform asked for (``POST /v1/endpoints/{id}/test``): nothing to act
    on; it shows that the endpoint receives and verifies notices."""

    endpoint_id: Annotated[UUID, _doc("The endpoint the test was asked for.")]
    platform: Annotated[str, _doc("The platform's slug.")]
    url: Annotated[str, _doc("The endpoint's URL when the test was queued.")]
    note: Annotated[str, _doc("A sentence saying that there is nothing to act on.")]


class _Notice(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    id: Annotated[UUID, _doc("The notice's id: also its `webhook-id`, the same on every attempt.")]
    timestamp: Annotated[datetime, _doc("When the notice was queued.")]


class DecommissionNotice(_Notice, frozen=True, tag="decommission.notice"):
    data: DecommissionNoticeData


class DecommissionWithdrawn(_Notice, frozen=True, tag="decommission.withdrawn"):
    data: DecommissionWithdrawnData


class EndpointTest(_Notice, frozen=True, tag="endpoint.test"):
    data: EndpointTestData
