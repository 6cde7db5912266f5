"""Catalogue syncs: a platform's whole catalogue of hostings in one request, and the answer.

One NDJSON line is the ``data`` of a ``model.hosted`` event (the same fields, the same
meaning: an absent field keeps what is recorded, ``null`` clears it, a new hosting takes
the defaults), plus ``relation``, how the model derives from ``base_model``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from service.schemas.models import Derivation
from service.schemas.webhooks import ModelHostedData

__all__ = [
    "CATALOGUE_MEDIA_TYPES",
    "CatalogueFormat",
    "CatalogueLine",
    "CatalogueSummary",
    "RejectedLine",
]

CatalogueFormat = Literal["ndjson", "cyclonedx"]

#: The media types a catalogue may be sent as, and the format each means.
CATALOGUE_MEDIA_TYPES: dict[str, CatalogueFormat] = {
    "application/x-ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/vnd.cyclonedx+json": "cyclonedx",
}


class CatalogueLine(ModelHostedData, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One hosting of the catalogue: a ``model.hosted`` event's data, and the relation."""

    relation: Annotated[
        Derivation | None,
        msgspec.Meta(
            description=(
                "How the model derives from `base_model` (used when the model is registered "
                "by this line). Absent or null with a base: `other`."
            )
        ),
    ] = None


class RejectedLine(msgspec.Struct, frozen=True, kw_only=True):
    """A line (NDJSON) or component (CycloneDX, counted from 1) that was not applied."""

    line: int
    reason: str


class CatalogueSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a catalogue changed: each count is of hostings; ``registered`` of models."""

    sync_id: UUID
    delivery_id: str
    format: CatalogueFormat
    complete: bool
    duplicate: bool = False
    received_at: datetime
    added: int
    changed: int
    removed: int
    unchanged: int
    registered: int
    rejected: list[RejectedLine]
    #: Rejected lines beyond the ones listed (the list stops at 1,000).
    rejected_more: int = 0
    #: The ledger events the sync appended.
    events: int
