"""Webhook signing secrets: each platform has one or more active at a time."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

__all__ = ["CreatedWebhookSecret", "WebhookSecret", "WebhookSecretList"]


class WebhookSecret(msgspec.Struct, frozen=True, kw_only=True):
    """A signing secret as listed: never the secret itself."""

    id: UUID
    platform_id: UUID
    platform: str
    #: The first characters of the secret, so an operator can tell secrets apart.
    hint: str
    created_at: datetime
    retired_at: datetime | None


class CreatedWebhookSecret(msgspec.Struct, frozen=True, kw_only=True):
    """Returned once, at creation: ``secret`` (``whsec_...``) is never shown again."""

    secret: str
    webhook_secret: WebhookSecret


class WebhookSecretList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[WebhookSecret]
