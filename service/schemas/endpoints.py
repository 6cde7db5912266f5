"""Platforms' notification endpoints, the notices queued for them, and delivery attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from service.schemas.common import HttpUrl

__all__ = [
    "EVENT_TYPES",
    "Attempt",
    "AttemptPage",
    "CreatedEndpoint",
    "Endpoint",
    "EndpointIn",
    "EndpointPage",
    "EndpointPatch",
    "EventType",
    "NoticeType",
    "Notification",
    "NotificationPage",
    "NotificationStatus",
]

#: What the registry tells platforms: a decision that applies to them, or its withdrawal.
EventType = Literal["decommission.notice", "decommission.withdrawn"]
EVENT_TYPES: tuple[EventType, ...] = ("decommission.notice", "decommission.withdrawn")
#: What a notice may be: one of the event types, or a test notice its platform asked for
#: (sent to the one endpoint named, whatever it subscribes to; nothing to act on).
NoticeType = Literal["decommission.notice", "decommission.withdrawn", "endpoint.test"]
NotificationStatus = Literal["pending", "delivered", "failed"]
EventTypes = Annotated[list[EventType], msgspec.Meta(min_length=1, max_length=len(EVENT_TYPES))]


class EndpointIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: HttpUrl
    event_types: EventTypes = msgspec.field(default_factory=lambda: list(EVENT_TYPES))
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""


class EndpointPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: HttpUrl | msgspec.UnsetType = msgspec.UNSET
    event_types: EventTypes | msgspec.UnsetType = msgspec.UNSET
    description: Annotated[str, msgspec.Meta(max_length=500)] | msgspec.UnsetType = msgspec.UNSET
    #: False re-enables an endpoint (for instance one disabled by a 410); its queued
    #: notices are then delivered.
    disabled: bool | msgspec.UnsetType = msgspec.UNSET


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    platform_id: UUID
    platform: str
    url: str
    event_types: list[EventType]
    description: str
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime
    #: After a rotation, until when the previous secret also signs notices (each carries
    #: both signatures); null when only the current secret signs.
    previous_secret_until: datetime | None = None


class CreatedEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    """Returned once, at creation: ``secret`` is never shown again."""

    endpoint: Endpoint
    #: The Standard Webhooks signing secret (``whsec_...``) notices to this endpoint carry.
    secret: str


class EndpointPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Endpoint]
    next_cursor: str | None


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """One notice for one endpoint; its id is the ``webhook-id`` every attempt carries."""

    id: UUID
    endpoint_id: UUID
    platform_id: UUID
    event_type: NoticeType
    decommission_id: UUID | None
    payload: dict[str, object]
    status: NotificationStatus
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class NotificationPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Notification]
    next_cursor: str | None


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    message_id: UUID
    attempt: int
    url: str
    started_at: datetime
    #: The receiver's HTTP status; null when no response came (see ``error``).
    status_code: int | None
    latency_ms: float
    error: str | None
    #: When the next attempt is due, if one is.
    retry_at: datetime | None


class AttemptPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Attempt]
    next_cursor: str | None
