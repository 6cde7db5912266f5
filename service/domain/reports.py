"""The confidential public report channel.

Anyone may report without a key and stay anonymous. A report gets a reference (``RR-...``)
and a one-time follow-up token: 256 random bits, shown only in the response to the report,
stored only as its SHA-256, and compared in constant time. With both, the reporter (and
only the reporter) reads the report's status, the notes shared with them and their own
contact details, and adds information. A wrong token and an unknown reference give the
same NotFound, so neither can be probed.

Contact details live only in ``reporter_contacts``: no incident view, list, ledger event or
export carries them, and no role reads them; only the reporter with the token sees them.

A report merged as a duplicate keeps working: its follow-up shows ``status: duplicate``
and the surviving incident's status as ``effective_status``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import asyncpg
import msgspec

from service.db.queries import incidents as q
from service.domain.incident_notes import add_note, list_notes
from service.domain.incidents import get_incident, record_incident
from service.errors import NotFound
from service.schemas.incidents import Incident, IncidentIn, Note, NoteIn
from service.schemas.reports import Contact, ReportIn, ReportNote, ReportReceipt, ReportStatus

__all__ = ["add_reporter_update", "open_report", "report_status", "submit_report"]

_DUMMY_HASH = hashlib.sha256(b"no such report").digest()
#: Merges never chain deeper than this in practice; a bound keeps a corrupt chain finite.
_MAX_HOPS = 32


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def submit_report(conn: asyncpg.Connection, *, data: ReportIn) -> ReportReceipt:
    """Record a public report; the receipt holds the only copy of the follow-up token."""
    token = "rf_" + secrets.token_urlsafe(32)
    fields = msgspec.structs.asdict(data)
    contact = fields.pop("contact")
    incident, _ = await record_incident(
        conn,
        data=IncidentIn(**fields),
        channel="public",
        reporter_platform_id=None,
        reporter_principal_id=None,
        actor_id=None,
        followup_token_hash=_hash(token),
        allow_unlisted=True,
    )
    if contact is not None:
        stored = msgspec.to_builtins(contact)
        if stored:
            await q.insert_contact(conn, incident_id=incident.id, contact=stored)
    return ReportReceipt(ref=incident.ref, followup_token=token, status=incident.status)


async def open_report(conn: asyncpg.Connection, *, ref: str, token: str) -> Incident:
    """The report behind ``ref`` if ``token`` is its follow-up token; NotFound otherwise."""
    row = await q.select_followup(conn, ref=ref)
    stored = _DUMMY_HASH
    if row is not None and row["followup_token_hash"] is not None:
        stored = bytes(row["followup_token_hash"])
    if not hmac.compare_digest(_hash(token), stored) or row is None:
        raise NotFound("no report with that reference and token")
    return await get_incident(conn, incident_id=row["id"])


async def _survivor(conn: asyncpg.Connection, incident: Incident) -> Incident:
    current = incident
    for _ in range(_MAX_HOPS):
        if current.duplicate_of is None:
            break
        current = await get_incident(conn, incident_id=current.duplicate_of)
    return current


async def report_status(conn: asyncpg.Connection, *, incident: Incident) -> ReportStatus:
    survivor = await _survivor(conn, incident)
    notes = await list_notes(conn, incident_id=incident.id, reporter_view=True)
    contact = await q.select_contact(conn, incident_id=incident.id)
    return ReportStatus(
        ref=incident.ref,
        title=incident.title,
        category=incident.category,
        status=incident.status,
        effective_status=survivor.status,
        merged=incident.status == "duplicate",
        rejection_reason=incident.rejection_reason,
        reported_at=incident.reported_at,
        updated_at=incident.updated_at,
        notes=[
            ReportNote(
                author=n.author, body=n.body, evidence_urls=n.evidence_urls, created_at=n.created_at
            )
            for n in notes
        ],
        contact=None if contact is None else msgspec.convert(contact, Contact),
    )


async def add_reporter_update(
    conn: asyncpg.Connection, *, incident: Incident, body: str, evidence_urls: list[str]
) -> Note:
    """Information the reporter adds later; it stays on their own report (merged or not)."""
    return await add_note(
        conn,
        incident=incident,
        author="reporter",
        actor_id=None,
        data=NoteIn(body=body, evidence_urls=evidence_urls, share_with_reporter=True),
    )
