"""Point-in-time reads: a record's state as the registry recorded it at a given moment.

Every event carries its subject's full state after the change (``payload.state``), so the
newest such event recorded at or before the moment *is* the state then. ``recorded_at`` is
when the registry committed the change, not when it happened at its source: the question
answered is "what did the registry know at that moment".
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import ledger_tree as q
from service.errors import InvalidInput

__all__ = ["state_as_of"]

R = TypeVar("R", bound=msgspec.Struct)


async def state_as_of(
    conn: asyncpg.Connection, *, subject_id: UUID, as_of: datetime, record: type[R]
) -> R | None:
    """The subject as a ``record`` in its state recorded at ``as_of``, or ``None`` if it did
    not exist yet."""
    if as_of.tzinfo is None:
        raise InvalidInput("as_of must carry a time zone offset (RFC 3339)", key="as_of")
    state = await q.select_state_as_of(conn, subject_id=subject_id, as_of=as_of)
    return None if state is None else msgspec.convert(state, record)
