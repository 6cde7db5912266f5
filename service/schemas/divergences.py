"""What the background reconciliation found: records that differ from their ledger state."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

__all__ = ["DivergenceOut", "DivergencePage"]


class DivergenceOut(msgspec.Struct, frozen=True, kw_only=True):
    """One field of one record that differs from the state its newest event carries."""

    id: int
    #: The export dataset the record belongs to: models, hostings, incidents, audits or
    #: decisions.
    dataset: str
    record_id: UUID
    #: The export column that differs; ``*`` when no ledger event carries the record.
    field: str
    #: The value the record holds, and the value its newest event carries (JSON text,
    #: shortened past 300 characters).
    found: str | None
    expected: str | None
    #: The newest event carrying the record's state.
    event_seq: int | None
    first_seen_at: datetime
    last_seen_at: datetime


class DivergencePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DivergenceOut]
    next_cursor: str | None
