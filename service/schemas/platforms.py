"""Hosting platforms: model hubs, code forges, cloud catalogues, app providers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from service.schemas.common import PlatformSlug, ShortText

__all__ = [
    "PURL_TYPES",
    "Platform",
    "PlatformIn",
    "PlatformKind",
    "PlatformPage",
    "PlatformPatch",
    "PurlTypeName",
]

PlatformKind = Literal["model_hub", "code_forge", "cloud_catalogue", "app_provider"]

#: The package-URL types a platform may name: those of the purl specification that
#: identify a model or a repository and that packageurl-python validates (it has no rules
#: for ``gitlab``, so a gitlab purl could not be checked: not offered).
PURL_TYPES = ("huggingface", "github", "bitbucket", "mlflow")

# Checked by the domain, not here, so that an unknown type is a 422 naming the types known.
PurlTypeName = Annotated[
    str,
    msgspec.Meta(
        max_length=40,
        description=(
            "The package-URL type of the platform's hostings: one of "
            + ", ".join(f"`{t}`" for t in PURL_TYPES)
            + "; null for none (its hostings then carry no purl). Another value: 422."
        ),
        examples=["huggingface"],
    ),
]


class PlatformIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    slug: PlatformSlug
    name: ShortText
    kind: PlatformKind
    purl_type: PurlTypeName | None = None


class PlatformPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # UNSET means "leave as it is"; name and kind are non-nullable in the record, a
    # purl_type of null means "none".
    name: ShortText | msgspec.UnsetType = msgspec.UNSET
    kind: PlatformKind | msgspec.UnsetType = msgspec.UNSET
    purl_type: PurlTypeName | msgspec.UnsetType | None = msgspec.UNSET


class Platform(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    slug: str
    name: str
    kind: PlatformKind
    #: Null for none; a platform recorded before platforms had one carries none either.
    purl_type: str | None = None
    created_at: datetime
    updated_at: datetime


class PlatformPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Platform]
    next_cursor: str | None
