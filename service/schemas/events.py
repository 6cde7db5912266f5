"""Ledger events: the append-only record of every change."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

__all__ = ["Event", "EventPage", "Stage"]

Stage = Literal["prevent", "detect", "respond"]


class Event(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    stage: Stage
    kind: str
    subject_type: str
    subject_id: UUID
    model_id: UUID | None
    platform_id: UUID | None
    actor_id: UUID | None
    #: When the change happened, as its source says.
    occurred_at: datetime
    #: When the registry committed it.
    recorded_at: datetime
    #: The event's content (a JSON object), passed through as stored: it is never decoded
    #: on the way out.
    payload: msgspec.Raw


class EventPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Event]
    next_cursor: str | None
