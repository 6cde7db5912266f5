"""Appending to and reading the event ledger.

Every change to a record appends one event in the caller's transaction, carrying the
record's full state after the change and the fields that changed. Reading the newest event
for a subject up to a moment therefore gives its state as the registry knew it then.

**Leaf entries.** Leaf ``i`` of the ledger's Merkle tree (:mod:`service.domain.merkle`)
hashes event ``i`` exactly as ``GET /v1/events`` serves it (the ``Event`` object: seq,
stage, kind, subject_type, subject_id, model_id, platform_id, actor_id, occurred_at,
recorded_at, payload; UUIDs as lower-case hyphenated strings, timestamps as RFC 3339 in UTC
with a ``Z`` and microseconds only when non-zero), encoded in the leaf's *format*, which
``ledger_leaves.format`` records and the public leaf and proof routes serve:

- format 2 (every leaf sealed since it was introduced): the RFC 8785 (JCS) bytes of the
  event, :mod:`service.domain.jcs`; a number in the payload is the double its JSON text
  denotes, as JCS requires;
- format 1 (the leaves sealed before): compact JSON with every object's keys sorted, as
  msgspec writes it (``order="sorted"``), numbers as Python reads them.

Anyone holding an export (one event JSON object per line) can therefore recompute each leaf
as ``SHA-256(0x00 || canonical_entry(event, leaf_format))``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import events as q
from service.domain.jcs import canonicalize

__all__ = [
    "LEAF_FORMATS",
    "LEAF_FORMAT_JCS",
    "NewEvent",
    "canonical_entry",
    "diff",
    "event_row",
    "record_event",
    "record_events",
    "to_state",
]

_IGNORED = frozenset({"updated_at"})

_sorted_json = msgspec.json.Encoder(order="sorted")

#: The leaf format the sealer writes: RFC 8785.
LEAF_FORMAT_JCS = 2
#: Every leaf format a sealed leaf may have.
LEAF_FORMATS = (1, LEAF_FORMAT_JCS)


def canonical_entry(event: Mapping[str, Any], leaf_format: int = LEAF_FORMAT_JCS) -> bytes:
    """The bytes hashed into the event's leaf in ``leaf_format`` (see the module docstring).

    Raises :class:`service.domain.jcs.NotCanonical` for a value JCS cannot encode, and
    ``ValueError`` for an unknown format.
    """
    if leaf_format == LEAF_FORMAT_JCS:
        return canonicalize(event)
    if leaf_format == 1:
        return _sorted_json.encode(event)
    raise ValueError(f"no leaf format {leaf_format}")


def to_state(record: msgspec.Struct) -> dict[str, Any]:
    """A record as plain JSON-ready data, for an event payload."""
    state = msgspec.to_builtins(record)
    if not isinstance(state, dict):
        raise TypeError("a record must encode to a JSON object")
    return state


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields whose values differ, as ``{field: {"from": old, "to": new}}``."""
    return {
        key: {"from": before.get(key), "to": value}
        for key, value in after.items()
        if key not in _IGNORED and before.get(key) != value
    }


async def record_event(
    conn: asyncpg.Connection,
    *,
    stage: str,
    kind: str,
    subject_type: str,
    subject_id: UUID,
    actor_id: UUID | None,
    model_id: UUID | None = None,
    platform_id: UUID | None = None,
    occurred_at: datetime | None = None,
    state: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> int:
    """Append one event; returns its sequence number."""
    return await q.insert_event(
        conn,
        stage=stage,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        model_id=model_id,
        platform_id=platform_id,
        actor_id=actor_id,
        occurred_at=occurred_at,
        payload=_payload(state, changes, extra),
    )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append with ``record_events``; the fields are ``record_event``'s."""

    stage: str
    kind: str
    subject_type: str
    subject_id: UUID
    actor_id: UUID | None
    model_id: UUID | None = None
    platform_id: UUID | None = None
    occurred_at: datetime | None = None
    state: dict[str, Any] | None = None
    changes: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None


async def record_events(conn: asyncpg.Connection, events: Sequence[NewEvent]) -> list[int]:
    """Append many events in one statement; returns their sequence numbers, in order."""
    return await q.insert_events(conn, [event_row(e) for e in events])


def event_row(e: NewEvent) -> tuple[Any, ...]:
    """An event as the queries append it: its columns, then its payload."""
    return (
        e.stage,
        e.kind,
        e.subject_type,
        e.subject_id,
        e.model_id,
        e.platform_id,
        e.actor_id,
        e.occurred_at,
        _payload(e.state, e.changes, e.extra),
    )


def _payload(
    state: dict[str, Any] | None, changes: dict[str, Any] | None, extra: dict[str, Any] | None
) -> dict[str, Any]:
    payload: dict[str, Any] = dict(extra or {})
    if state is not None:
        payload["state"] = state
    if changes is not None:
        payload["changes"] = changes
    return payload
