"""A model's timeline: its own events and those of the models it is related to by lineage."""

from __future__ import annotations

from typing import Literal

import msgspec

from service.schemas.events import Event

__all__ = ["HistoryEvent", "HistoryPage", "Order", "Relation"]

Order = Literal["newest", "oldest"]
Relation = Literal["self", "ancestor", "descendant"]


class HistoryEvent(Event, frozen=True, kw_only=True):
    #: True when the event belongs to an ancestor or descendant, not to the model itself.
    inherited: bool
    #: How the event's model relates to the model asked about.
    relation: Relation


class HistoryPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[HistoryEvent]
    next_cursor: str | None
