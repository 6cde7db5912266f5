"""Who reported an incident, kept out of the ledger's event bodies.

Ledger events are served to every role that reads the ledger (auditors included), and
their leaf hashes to anyone, so an incident's events carry no reporter identity: not its
``reporter_principal_id`` or ``reporter_platform_id`` in the state, nor the reporting
platform in the event's ``platform_id``, nor the reporter as the event's ``actor_id``, nor
the reporting delivery's platform-given id or source. Instead the state carries
``reporter_commitment``: lower-case hex of

    SHA-256(salt || RFC 8785 of {"reporter_platform_id": ..., "reporter_principal_id": ...})

with a random 32-byte salt kept per incident in ``incident_reporters`` and the ids on the
``incidents`` row, where the incident view shows them to the roles allowed to see them
(admins, regulators, and the platforms the incident concerns); auditors see neither.
Admins and regulators read the salt too (``GET /v1/incidents/{id}/reporter``), with which
the commitment binds the ledger to the reporter recorded. Every leaf stays recomputable by
anyone allowed to read its event, and no leaf is ever redacted.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from uuid import UUID

import asyncpg

from service.db.queries import incident_reporters as q
from service.domain.jcs import canonicalize
from service.schemas.incidents import Incident, ReporterOut

__all__ = [
    "REPORTER_FIELDS",
    "commit",
    "commitment_for",
    "get_reporter",
    "ledger_state",
    "salt_of",
]

#: The incident fields that name its reporter.
REPORTER_FIELDS = ("reporter_principal_id", "reporter_platform_id")


def commit(*, salt: bytes, principal_id: UUID | None, platform_id: UUID | None) -> str:
    """The commitment to a reporter (see the module docstring)."""
    identity = {
        "reporter_platform_id": None if platform_id is None else str(platform_id),
        "reporter_principal_id": None if principal_id is None else str(principal_id),
    }
    return hashlib.sha256(salt + canonicalize(identity)).hexdigest()


async def commitment_for(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    principal_id: UUID | None,
    platform_id: UUID | None,
) -> str:
    """The incident's commitment, made (with a fresh salt) on its first event."""
    salt = secrets.token_bytes(32)
    mine = commit(salt=salt, principal_id=principal_id, platform_id=platform_id)
    _, kept = await q.claim_salt(conn, incident_id=incident_id, salt=salt, commitment=mine)
    return kept


async def salt_of(conn: asyncpg.Connection, *, incident_id: UUID) -> bytes | None:
    found = await q.select_salt(conn, incident_id=incident_id)
    return None if found is None else found[0]


def ledger_state(state: dict[str, Any], commitment: str) -> dict[str, Any]:
    """An incident's state for its ledger event: the reporter replaced by the commitment."""
    kept = {k: v for k, v in state.items() if k not in REPORTER_FIELDS}
    kept["reporter_commitment"] = commitment
    return kept


async def get_reporter(conn: asyncpg.Connection, *, incident: Incident) -> ReporterOut:
    """The incident's reporter with the salt and commitment its events carry."""
    found = await q.select_salt(conn, incident_id=incident.id)
    return ReporterOut(
        incident_id=incident.id,
        reporter_principal_id=incident.reporter_principal_id,
        reporter_platform_id=incident.reporter_platform_id,
        salt=None if found is None else base64.b64encode(found[0]).decode(),
        commitment=None if found is None else found[1],
    )
