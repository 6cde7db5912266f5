"""Parameters shared by several controllers."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

from service.schemas.common import PLATFORM_SLUG_PATTERN

__all__ = ["PlatformSlugPath"]

#: A platform's slug in a path: ``schemas.common.PlatformSlug``, which Litestar states in
#: the OpenAPI document only when the pattern is given as a ``Parameter``.
PlatformSlugPath = Annotated[str, Parameter(pattern=PLATFORM_SLUG_PATTERN)]
