"""Hosting platforms: model hubs, code forges, cloud catalogues, app providers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from service.schemas.common import PlatformSlug, ShortText

__all__ = ["Platform", "PlatformIn", "PlatformKind", "PlatformPage", "PlatformPatch"]

PlatformKind = Literal["model_hub", "code_forge", "cloud_catalogue", "app_provider"]


class PlatformIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    slug: PlatformSlug
    name: ShortText
    kind: PlatformKind


class PlatformPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # UNSET means "leave as it is"; every field here is non-nullable in the record.
    name: ShortText | msgspec.UnsetType = msgspec.UNSET
    kind: PlatformKind | msgspec.UnsetType = msgspec.UNSET


class Platform(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    slug: str
    name: str
    kind: PlatformKind
    created_at: datetime
    updated_at: datetime


class PlatformPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Platform]
    next_cursor: str | None
