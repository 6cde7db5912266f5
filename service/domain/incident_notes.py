"""Notes on an incident: information added by its reporter or by the registry's triage,
each a ``detect`` ledger event of its own; the reporter sees its own notes and those shared
with it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import incidents as q
from service.domain.as_of import states_as_of
from service.domain.ledger import record_event, to_state
from service.schemas.incidents import Incident, Note, NoteIn

__all__ = ["add_note", "list_notes"]


async def add_note(
    conn: asyncpg.Connection,
    *,
    incident: Incident,
    author: str,
    actor_id: UUID | None,
    data: NoteIn,
) -> Note:
    """Add information to an incident: from its reporter, or from the registry's triage."""
    row = await q.insert_note(
        conn,
        incident_id=incident.id,
        author=author,
        actor_id=actor_id,
        body=data.body,
        evidence_urls=list(data.evidence_urls),
        share_with_reporter=data.share_with_reporter or author == "reporter",
    )
    note = msgspec.convert(dict(row), Note)
    await record_event(
        conn,
        stage="detect",
        kind="incident.note_added",
        subject_type="incident_note",
        subject_id=note.id,
        model_id=incident.model_ids[0] if incident.model_ids else None,
        actor_id=actor_id,
        occurred_at=note.created_at,
        state=to_state(note),
        extra={"incident_id": str(incident.id), "model_ids": [str(m) for m in incident.model_ids]},
    )
    return note


async def list_notes(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    reporter_view: bool,
    as_of: datetime | None = None,
) -> list[Note]:
    """Notes oldest first; the reporter's view holds its own notes and those shared with it.
    With ``as_of``, only the notes the ledger had recorded by then."""
    rows = await q.select_notes(conn, incident_id=incident_id, reporter_view=reporter_view)
    notes = [msgspec.convert(dict(row), Note) for row in rows]
    if as_of is not None:
        then = await states_as_of(
            conn,
            subject_type="incident_note",
            subject_ids=[n.id for n in notes],
            as_of=as_of,
            record=Note,
        )
        notes = [n for n in notes if n.id in then]
    return notes
