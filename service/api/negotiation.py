"""Choosing a response format: an explicit ``format=`` first, then the ``Accept`` header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

__all__ = ["negotiate"]

F = TypeVar("F", bound=str)


def negotiate(
    requested: F | None, accept: str | None, *, offers: Mapping[str, F], default: F
) -> F | None:
    """The format to answer in; None when ``Accept`` names nothing on offer.

    ``offers`` maps media types to formats. An absent or empty ``Accept`` and ``*/*`` take
    ``default``; ``type/*`` takes the first offer of that type. Media types are taken in
    the header's order (quality values are not weighed).
    """
    if requested is not None:
        return requested
    if not accept or not accept.strip():
        return default
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media == "*/*":
            return default
        if media in offers:
            return offers[media]
        if media.endswith("/*"):
            family = media[:-1]
            for offered, fmt in offers.items():
                if offered.startswith(family):
                    return fmt
    return None
