"""Hostings: one model on one platform, with the evidence platform standards ask for."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from service.schemas.common import HttpUrl, ModelName, PlatformSlug

__all__ = [
    "DOCUMENT_KINDS",
    "DocumentKind",
    "Documentation",
    "DocumentationPatch",
    "Evidence",
    "Hosting",
    "HostingIn",
    "HostingPage",
    "HostingPatch",
    "HostingStatus",
]

HostingStatus = Literal["hosted", "restricted", "removed"]
DocumentKind = Literal["model_card", "safety_testing", "risk_analysis", "use_guidance"]
DOCUMENT_KINDS: tuple[DocumentKind, ...] = (
    "model_card",
    "safety_testing",
    "risk_analysis",
    "use_guidance",
)
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
Revision = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Licence = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
#: At most 2**53 - 1: ledger leaves are RFC 8785 JSON, whose numbers are doubles, exact
#: for integers only that far.
Downloads = Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1)]


class Evidence(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Whether one piece of documentation exists, and where."""

    present: bool = False
    url: HttpUrl | None = None


class Documentation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    model_card: Evidence = Evidence()
    safety_testing: Evidence = Evidence()
    risk_analysis: Evidence = Evidence()
    use_guidance: Evidence = Evidence()


class DocumentationPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Only the named documents change; the others keep their recorded evidence."""

    model_card: Evidence | msgspec.UnsetType = msgspec.UNSET
    safety_testing: Evidence | msgspec.UnsetType = msgspec.UNSET
    risk_analysis: Evidence | msgspec.UnsetType = msgspec.UNSET
    use_guidance: Evidence | msgspec.UnsetType = msgspec.UNSET


class HostingIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    model: ModelName
    url: HttpUrl
    #: Required for admin keys; a platform key may only name its own platform.
    platform: PlatformSlug | None = None
    external_id: ExternalId | None = None
    revision: Revision | None = None
    licence: Licence | None = None
    gated: bool = False
    disabled: bool = False
    status: HostingStatus = "hosted"
    downloads: Downloads | None = None
    documentation: Documentation = Documentation()
    #: When the change happened at the source; defaults to the time it is recorded.
    occurred_at: datetime | None = None


class HostingPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: HttpUrl | msgspec.UnsetType = msgspec.UNSET
    external_id: ExternalId | msgspec.UnsetType | None = msgspec.UNSET
    revision: Revision | msgspec.UnsetType | None = msgspec.UNSET
    licence: Licence | msgspec.UnsetType | None = msgspec.UNSET
    gated: bool | msgspec.UnsetType = msgspec.UNSET
    disabled: bool | msgspec.UnsetType = msgspec.UNSET
    status: HostingStatus | msgspec.UnsetType = msgspec.UNSET
    #: ``null`` clears a count recorded before.
    downloads: Downloads | msgspec.UnsetType | None = msgspec.UNSET
    documentation: DocumentationPatch | msgspec.UnsetType = msgspec.UNSET
    occurred_at: datetime | msgspec.UnsetType = msgspec.UNSET


class Hosting(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    model_id: UUID
    model: str
    #: The name the platform hosts the model under: the model's name, unless the platform
    #: renamed or moved its repository since (``model.renamed``).
    name: str
    platform_id: UUID
    platform: str
    external_id: str | None
    url: str
    revision: str | None
    licence: str | None
    gated: bool
    disabled: bool
    status: HostingStatus
    downloads: int | None
    downloads_at: datetime | None
    documentation: Documentation
    created_at: datetime
    updated_at: datetime


class HostingPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Hosting]
    next_cursor: str | None
