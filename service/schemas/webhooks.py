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
    Documentation,
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


class ModelHostedData(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The platform hosts the model (an unregistered model is registered on the way)."""

    model: ModelName
    url: HttpUrl
    #: Optional; when given it must be the sending platform's own slug.
    platform: PlatformSlug | None = None
    external_id: ExternalId | None = None
    revision: Revision | None = None
    licence: Licence | None = None
    base_model: ModelName | None = None
    gated: bool = False
    downloads: Downloads | None = None
    documentation: Documentation = Documentation()


class ModelUpdatedData(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Only the fields sent change. With no hosting of the model on the sending platform
    yet, a ``url`` makes one (as ``model.hosted`` would); without one it is refused."""

    model: ModelName
    platform: PlatformSlug | None = None
    url: HttpUrl | msgspec.UnsetType = msgspec.UNSET
    external_id: ExternalId | msgspec.UnsetType | None = msgspec.UNSET
    revision: Revision | msgspec.UnsetType | None = msgspec.UNSET
    licence: Licence | msgspec.UnsetType | None = msgspec.UNSET
    gated: bool | msgspec.UnsetType = msgspec.UNSET
    disabled: bool | msgspec.UnsetType = msgspec.UNSET
    #: ``hosted`` reinstates a removed or restricted hosting.
    status: HostingStatus | msgspec.UnsetType = msgspec.UNSET
    downloads: Downloads | msgspec.UnsetType = msgspec.UNSET
    documentation: DocumentationPatch | msgspec.UnsetType = msgspec.UNSET


class ModelStatusData(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The platform removed or restricted its hosting of the model."""

    model: ModelName
    platform: PlatformSlug | None = None
    reason: Reason | None = None


class ModelRenamedData(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The platform renamed its repository of the model, or moved it to another owner: the
    hosting takes the new name and URL and keeps its history, grants and decisions."""

    #: The name the hosting had until now.
    model: ModelName
    #: The new name; later deliveries name the hosting by it.
    name: ModelName
    #: The hosting's URL under its new name.
    url: HttpUrl
    #: The platform's own id for the repository. Absent or null: the hosting keeps the one
    #: recorded, and is found by ``model`` only; given: a hosting that ``model`` does not
    #: name is found by it (a rename sent twice, or after a missed one).
    external_id: ExternalId | None = None
    platform: PlatformSlug | None = None


class DownloadCount(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    model: ModelName
    downloads: Downloads


class ModelDownloadsData(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Download counts for many hosted models at once."""

    counts: Annotated[list[DownloadCount], msgspec.Meta(min_length=1, max_length=1000)]
    platform: PlatformSlug | None = None


class DecommissionExecutedData(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """The platform carried out a recall or restriction it was notified of."""

    decision_id: UUID
    model: ModelName
    outcome: Literal["removed", "restricted"]
    executed_at: AwareDatetime | None = None


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
