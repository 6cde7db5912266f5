"""Webhook deliveries: the event messages platforms send, and what the registry answers.

A Standard Webhooks body is ``{"type": ..., "timestamp": ..., "data": {...}}``; each
``type`` is one member of a tagged union decoded by one module-level decoder, so an
unknown type, an unknown field or a wrong type is refused before anything is written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from service.schemas.common import HttpUrl, ModelName, PlatformSlug
from service.schemas.hostings import (
    DocumentationPatch,
    Downloads,
    ExternalId,
    HostingStatus,
    Licence,
    Revision,
)
from service.schemas.incidents import IncidentIn

__all__ = [
    "DecommissionExecuted",
    "DecommissionExecutedData",
    "DeliveryAck",
    "DeliveryLogEntry",
    "DeliveryLogPage",
    "DeliveryOutcome",
    "DeliverySource",
    "DownloadCount",
    "IncidentReported",
    "ModelDownloads",
    "ModelDownloadsData",
    "ModelHosted",
    "ModelHostedData",
    "ModelRemoved",
    "ModelRenamed",
    "ModelRenamedData",
    "ModelRestricted",
    "ModelStatusData",
    "ModelUpdated",
    "ModelUpdatedData",
    "StoredDelivery",
    "WebhookMessage",
    "decode_message",
]

DeliverySource = Literal["standard", "huggingface", "github"]
DeliveryOutcome = Literal["accepted", "duplicate", "rejected"]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


def _doc(text: str) -> msgspec.Meta:
    """A field's description in the published contract: what it means, and what its
    absence means."""
    return msgspec.Meta(description=text)


_MODEL = (
    "The name the platform hosts the model under: the model's canonical name (`owner/name`), "
    "or the hosting's new name once renamed with `model.renamed`. Required."
)
_PLATFORM = (
    "The sending platform's own slug. Absent or null: the platform the delivery is "
    "signed for. Any other slug is refused (403)."
)


class ModelHostedData(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The platform hosts the model (an unregistered model is registered on the way).

    For a hosting the platform already records, only the fields sent change: an absent
    field (``UNSET``) keeps its recorded value and an explicit ``null`` clears it;
    ``documentation`` changes only the documents it names. For a new hosting an absent
    field takes its default."""

    model: Annotated[
        ModelName,
        _doc(
            "The model's canonical name (`owner/name`); registered if the registry does not "
            "know it yet. For a hosting that was renamed, its current name. Required."
        ),
    ]
    url: Annotated[HttpUrl, _doc("The hosting's page on the platform. Required.")]
    platform: Annotated[PlatformSlug | None, _doc(_PLATFORM)] = None
    external_id: Annotated[
        ExternalId | msgspec.UnsetType | None,
        _doc(
            "The platform's own id for the repository. Absent: kept (none for a new "
            "hosting). Null: cleared."
        ),
    ] = msgspec.UNSET
    revision: Annotated[
        Revision | msgspec.UnsetType | None,
        _doc(
            "The revision hosted (commit, tag). Absent: kept (unknown for a new hosting). "
            "Null: cleared."
        ),
    ] = msgspec.UNSET
    licence: Annotated[
        Licence | msgspec.UnsetType | None,
        _doc(
            "The licence, preferably an SPDX id in lower case. Absent: kept (unknown for a "
            "new hosting). Null: cleared."
        ),
    ] = msgspec.UNSET
    base_model: Annotated[
        ModelName | None,
        _doc(
            "The model this one derives from; registered (and linked) only when the model "
            "itself is registered by this message. Absent or null: no base recorded."
        ),
    ] = None
    gated: Annotated[
        bool | msgspec.UnsetType,
        _doc(
            "Access needs the platform's approval. Absent: kept (false, not gated, for a new "
            "hosting)."
        ),
    ] = msgspec.UNSET
    downloads: Annotated[
        Downloads | msgspec.UnsetType | None,
        _doc(
            "The download count. Absent: a recorded count is kept (none for a new hosting). "
            "Null: cleared."
        ),
    ] = msgspec.UNSET
    documentation: Annotated[
        DocumentationPatch | msgspec.UnsetType,
        _doc(
            "Which documents exist (model card, safety testing, risk analysis, use guidance). "
            "Only the documents named change; absent: every document is kept (none present "
            "for a new hosting)."
        ),
    ] = msgspec.UNSET


class ModelUpdatedData(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Only the fields sent change: an absent field keeps its recorded value. With no
    hosting of the model on the sending platform yet, a ``url`` makes one (as
    ``model.hosted`` would); without one it is refused (422)."""

    model: Annotated[ModelName, _doc(_MODEL)]
    platform: Annotated[PlatformSlug | None, _doc(_PLATFORM)] = None
    url: Annotated[
        HttpUrl | msgspec.UnsetType,
        _doc("The hosting's page. Absent: unchanged (and no hosting is created)."),
    ] = msgspec.UNSET
    external_id: Annotated[
        ExternalId | msgspec.UnsetType | None,
        _doc("The platform's own id. Absent: unchanged; null: cleared."),
    ] = msgspec.UNSET
    revision: Annotated[
        Revision | msgspec.UnsetType | None,
        _doc("The revision hosted. Absent: unchanged; null: cleared."),
    ] = msgspec.UNSET
    licence: Annotated[
        Licence | msgspec.UnsetType | None,
        _doc("The licence. Absent: unchanged; null: cleared."),
    ] = msgspec.UNSET
    gated: Annotated[
        bool | msgspec.UnsetType, _doc("Access needs approval. Absent: unchanged.")
    ] = msgspec.UNSET
    disabled: Annotated[
        bool | msgspec.UnsetType,
        _doc("The platform disabled the repository. Absent: unchanged."),
    ] = msgspec.UNSET
    status: Annotated[
        HostingStatus | msgspec.UnsetType,
        _doc("`hosted` reinstates a removed or restricted hosting. Absent: unchanged."),
    ] = msgspec.UNSET
    downloads: Annotated[
        Downloads | msgspec.UnsetType, _doc("The download count. Absent: unchanged.")
    ] = msgspec.UNSET
    documentation: Annotated[
        DocumentationPatch | msgspec.UnsetType,
        _doc("The documents named change; absent ones (or an absent field) are unchanged."),
    ] = msgspec.UNSET


class ModelStatusData(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The platform removed or restricted its hosting of the model."""

    model: Annotated[ModelName, _doc(_MODEL + " The platform must record a hosting of it.")]
    platform: Annotated[PlatformSlug | None, _doc(_PLATFORM)] = None
    reason: Annotated[
        Reason | None,
        _doc("Why, in the platform's words; kept with the ledger event. Absent or null: none."),
    ] = None


class ModelRenamedData(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The platform renamed its repository of the model, or moved it to another owner: the
    hosting takes the new name and URL and keeps its id, model, history and decisions.
    Sending the same rename again changes nothing."""

    model: Annotated[
        ModelName,
        _doc(
            "The name the hosting had until now. Required. A platform that records no "
            "hosting by that name (nor by `external_id`, when given) is refused (422)."
        ),
    ]
    name: Annotated[
        ModelName,
        _doc(
            "The new name; later deliveries name the hosting by it. Another hosting of the "
            "platform by that name is a conflict (409). Required."
        ),
    ]
    url: Annotated[HttpUrl, _doc("The hosting's URL under its new name. Required.")]
    external_id: Annotated[
        ExternalId | None,
        _doc(
            "The platform's own id for the repository. Absent or null: the hosting keeps the "
            "id recorded and is found by `model` only. Given: it is recorded, and a hosting "
            "that `model` does not name is found by it."
        ),
    ] = None
    platform: Annotated[PlatformSlug | None, _doc(_PLATFORM)] = None


class DownloadCount(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    model: Annotated[
        ModelName,
        _doc(_MODEL + " The platform must record a hosting of it, or the batch is refused."),
    ]
    downloads: Annotated[Downloads, _doc("The download count. Required.")]


class ModelDownloadsData(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Download counts for many hosted models at once, all or nothing: a batch naming any
    model the platform records no hosting of is refused (422), with one entry in the
    problem's ``errors`` per offending item (``key`` ``data.counts[<index>].model``), nothing
    written and the ``webhook-id`` left unclaimed, so the corrected batch (or the same one,
    once the hostings are announced) can be sent under the same id."""

    counts: Annotated[
        list[DownloadCount],
        msgspec.Meta(
            min_length=1,
            max_length=1000,
            description="1 to 1,000 counts; a model named twice takes its counts in order.",
        ),
    ]
    platform: Annotated[PlatformSlug | None, _doc(_PLATFORM)] = None


class DecommissionExecutedData(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """The platform carried out a recall or restriction it was notified of."""

    decision_id: Annotated[UUID, _doc("The decision, as `decision_id` in the notice. Required.")]
    model: Annotated[
        ModelName,
        _doc(
            "The name the platform hosts the model under (a hosting's `name` in the notice). "
            "Required."
        ),
    ]
    outcome: Annotated[
        Literal["removed", "restricted"],
        _doc("What the platform did; the hosting takes this status. Required."),
    ]
    executed_at: Annotated[
        AwareDatetime | None,
        _doc("When it was done. Absent or null: the message's `timestamp`."),
    ] = None


class _Message(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"
):
    #: When the change happened at the platform (RFC 3339 with an offset).
    timestamp: AwareDatetime


class ModelHosted(_Message, frozen=True, tag="model.hosted"):
    data: ModelHostedData


class ModelUpdated(_Message, frozen=True, tag="model.updated"):
    data: ModelUpdatedData


class ModelRemoved(_Message, frozen=True, tag="model.removed"):
    data: ModelStatusData


class ModelRestricted(_Message, frozen=True, tag="model.restricted"):
    data: ModelStatusData


class ModelRenamed(_Message, frozen=True, tag="model.renamed"):
    data: ModelRenamedData


class ModelDownloads(_Message, frozen=True, tag="model.downloads"):
    data: ModelDownloadsData


class DecommissionExecuted(_Message, frozen=True, tag="decommission.executed"):
    data: DecommissionExecutedData


class IncidentReported(_Message, frozen=True, tag="incident.reported"):
    """An incident the platform received or detected; ``data`` is an incident report."""

    data: IncidentIn


WebhookMessage = (
    ModelHosted
    | ModelUpdated
    | ModelRemoved
    | ModelRestricted
    | ModelRenamed
    | ModelDownloads
    | DecommissionExecuted
    | IncidentReported
)

_decoder: msgspec.json.Decoder[WebhookMessage] = msgspec.json.Decoder(WebhookMessage)


def decode_message(body: bytes) -> WebhookMessage:
    """Decode and validate a body; raises ``msgspec.DecodeError`` or ``ValidationError``."""
    return _decoder.decode(body)


class DeliveryAck(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a delivery: sent only once its records are committed."""

    delivery_id: str
    #: True when this delivery id was accepted before and this copy wrote nothing.
    duplicate: bool
    #: Sequence numbers of the ledger events the delivery produced.
    events: list[int]


class DeliveryLogEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    delivery_id: str | None
    source: DeliverySource
    outcome: DeliveryOutcome
    #: The HTTP status the delivery was answered with.
    status: int
    #: Why a delivery was refused; null for accepted ones.
    reason: str | None
    event_type: str | None
    events: list[int]
    received_at: datetime


class DeliveryLogPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DeliveryLogEntry]
    next_cursor: str | None


class StoredDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """An accepted delivery exactly as received, for auditing what a platform said."""

    id: UUID
    platform_id: UUID
    platform: str
    delivery_id: str
    source: DeliverySource
    event_type: str
    #: The raw body, byte for byte (deliveries are UTF-8).
    body: str
    #: The delivery's signature and identification headers.
    headers: dict[str, str]
    events: list[int]
    received_at: datetime
