"""Point-in-time reads: a record's state as the registry recorded it at a given moment.

Every event carries its subject's full state after the change (``payload.state``), so the
newest such event recorded at or before the moment *is* the state then. ``recorded_at`` is
when the registry committed the change, not when it happened at its source: the question
answered is "what did the registry know at that moment".

A subject is named by its type and its id (``subject_type``, ``subject_id``): ids are unique
within one type only, so an event about another kind of record under the same id is never
taken for this one's state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import ledger_tree as q
from service.errors import InvalidInput
from service.schemas.hostings import Hosting

__all__ = ["check_moment", "from_state", "state_as_of", "states_as_of"]

R = TypeVar("R", bound=msgspec.Struct)


async def state_as_of(
    conn: asyncpg.Connection,
    *,
    subject_type: str,
    subject_id: UUID,
    as_of: datetime,
    record: type[R],
    kept_apart: dict[str, Any] | None = None,
) -> R | None:
    """The subject as a ``record`` in its state recorded at ``as_of``, or ``None`` if it did
    not exist yet. ``kept_apart``: fields the ledger does not carry (an incident's reporter),
    which never change, taken from the record as it is."""
    check_moment(as_of)
    state = await q.select_state_as_of(
        conn, subject_type=subject_type, subject_id=subject_id, as_of=as_of
    )
    if state is None:
        return None
    return from_state(state, record, kept_apart=kept_apart)


async def states_as_of(
    conn: asyncpg.Connection,
    *,
    subject_type: str,
    subject_ids: list[UUID],
    as_of: datetime,
    record: type[R],
    kept_apart: dict[UUID, dict[str, Any]] | None = None,
) -> dict[UUID, R]:
    """Several subjects at once, each in its state recorded at ``as_of``; those that did not
    exist yet are left out. One query for a whole page of a listing. ``kept_apart`` as for
    ``state_as_of``, per subject."""
    check_moment(as_of)
    if not subject_ids:
        return {}
    states = await q.select_states_as_of(
        conn, subject_type=subject_type, subject_ids=subject_ids, as_of=as_of
    )
    apart = kept_apart or {}
    return {
        subject: from_state(state, record, kept_apart=apart.get(subject))
        for subject, state in states.items()
    }


def check_moment(as_of: datetime) -> None:
    """``InvalidInput`` unless ``as_of`` names its time zone."""
    if as_of.tzinfo is None:
        raise InvalidInput("as_of must carry a time zone offset (RFC 3339)", key="as_of")


def from_state(
    state: dict[str, Any], record: type[R], *, kept_apart: dict[str, Any] | None = None
) -> R:
    """A recorded ``state`` as a ``record`` (for a caller whose own statement read the state
    with its list); ``kept_apart`` as for ``state_as_of``."""
    if kept_apart:
        state = {**kept_apart, **state}
    if record is Hosting and "name" not in state:
        # Recorded before hostings had names of their own: the name was the model's.
        state = {**state, "name": state.get("model")}
    return msgspec.convert(state, record)
