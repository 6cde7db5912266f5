"""Principals and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from service.schemas.common import PlatformSlug, ShortText

__all__ = ["ApiKey", "ApiKeyIn", "ApiKeyPage", "CreatedApiKey", "Principal", "Role"]

Role = Literal["admin", "platform", "auditor", "regulator"]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: resolved from the bearer key on every request."""

    id: UUID
    name: str
    role: Role
    platform_id: UUID | None
    key_id: UUID


class ApiKeyIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    role: Role
    name: ShortText
    #: Required for, and only allowed with, the ``platform`` role.
    platform: PlatformSlug | None = None


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    principal_id: UUID
    name: str
    role: Role
    platform: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class CreatedApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """Returned once, at creation: ``key`` is never shown again."""

    key: str
    api_key: ApiKey


class ApiKeyPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ApiKey]
    next_cursor: str | None
