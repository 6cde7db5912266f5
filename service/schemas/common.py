"""Shapes shared by every resource: problem details, names, pagination."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = [
    "PLATFORM_SLUG_PATTERN",
    "FieldError",
    "HttpUrl",
    "ModelName",
    "PlatformSlug",
    "Problem",
    "ShortText",
    "Tag",
]

#: Canonical model names are ``owner/name``, as on the major model hubs.
ModelName = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$",
        description="Canonical model name, `owner/name`.",
        examples=["acme/llama-7b"],
    ),
]
#: A platform's slug: lower-case letters, digits and hyphens, as in a host name's label.
PLATFORM_SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
PlatformSlug = Annotated[str, msgspec.Meta(pattern=PLATFORM_SLUG_PATTERN, examples=["hubzilla"])]
HttpUrl = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^https?://[^\s]+$",
        max_length=2048,
        examples=["https://hub.example/acme/llama-7b"],
    ),
]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Tag = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]


class FieldError(msgspec.Struct, frozen=True, kw_only=True):
    """One reason a request was refused, tied to the part of the request at fault."""

    message: str
    key: str | None = None
    source: str | None = None


class Problem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem details object."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
