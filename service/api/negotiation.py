"""Choosing a response format: an explicit ``format=`` first, then the ``Accept`` header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from litestar import Request

__all__ = ["negotiate"]

F = TypeVar("F", bound=str)


def negotiate(
    request: Request[Any, Any, Any], requested: F | None, *, offers: Mapping[str, F], default: F
) -> F | None:
    """The format to answer in; None when ``Accept`` names nothing on offer.

    ``offers`` maps media types to formats, the default's first: ``*/*`` takes the first
    offer, ``type/*`` the first of that type. Litestar's ``best_match`` weighs quality values
    (and, among equal ones, prefers the more specific type). An absent or blank ``Accept``
    takes ``default``.
    """
    if requested is not None:
        return requested
    header = request.headers.get("accept")
    if header is None or not header.strip():
        return default
    media = request.accept.best_match(list(offers))
    return None if media is None else offers[media]
