"""Incident aliases: an incident's identifiers in other incident databases.

Each alias names one incident: a second incident claiming it is refused (409), as a likely
duplicate to merge instead. Values are checked against their scheme's format and kept in
canonical form, so ``cve-2026-12345`` and ``CVE-2026-12345`` are one alias. Aliases are set
when an incident is reported (REST, the signed ``incident.reported`` webhook, an audit
finding) and added by triage later; the public channel cannot set them (an anonymous
claim would take the identifier from the incident it really names). Each addition is a
``detect`` ledger event carrying the incident's state, aliases included.
"""

from __future__ import annotations

import re
from uuid import UUID

import asyncpg

from service.db.queries import incident_aliases as q
from service.errors import Conflict, InvalidInput
from service.schemas.incidents import Alias

__all__ = ["add_aliases", "canonical", "parse_alias"]

_CVE = re.compile(r"CVE-\d{4}-\d{4,19}", re.IGNORECASE)
_AVID = re.compile(r"AVID-\d{4}-V\d{3,9}", re.IGNORECASE)
_AIID = re.compile(r"(?:AIID-)?0*(\d{1,9})", re.IGNORECASE)
_OECD_URL = re.compile(r"https://oecd\.ai/[a-z]{2}/incidents/([^/?#]+)/?")
_OECD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")
_FORMATS = {
    "aiid": "an AI Incident Database number such as 123 or AIID-123",
    "oecd": "an OECD AI Incidents Monitor id, or its https://oecd.ai/en/incidents/ address",
    "avid": "an AVID id such as AVID-2023-V001",
    "cve": "a CVE id such as CVE-2026-12345",
}


def canonical(alias: Alias) -> Alias:
    """The alias in canonical form; InvalidInput if the value is not its scheme's format."""
    value = alias.value.strip()
    result: str | None = None
    if (alias.scheme == "cve" and _CVE.fullmatch(value)) or (
        alias.scheme == "avid" and _AVID.fullmatch(value)
    ):
        result = value.upper()
    elif alias.scheme == "aiid" and (match := _AIID.fullmatch(value)):
        result = str(int(match.group(1)))
    elif alias.scheme == "oecd":
        if url := _OECD_URL.fullmatch(value):
            value = url.group(1)
        if _OECD.fullmatch(value):
            result = value
    if result is None or result == "0":
        raise InvalidInput(
            f"{alias.value!r} is not {_FORMATS[alias.scheme]}", key=f"aliases.{alias.scheme}"
        )
    return Alias(scheme=alias.scheme, value=result)


def parse_alias(text: str) -> Alias:
    """An alias as a query gives it: ``scheme:value``, or a self-describing id
    (``CVE-…``, ``AVID-…``, ``AIID-…``)."""
    scheme, sep, value = text.partition(":")
    if sep and scheme.lower() in _FORMATS and not value.startswith("//"):
        return canonical(Alias(scheme=scheme.lower(), value=value))  # type: ignore[arg-type]
    upper = text.strip().upper()
    for prefix, named in (("CVE-", "cve"), ("AVID-", "avid"), ("AIID-", "aiid")):
        if upper.startswith(prefix):
            return canonical(Alias(scheme=named, value=text))  # type: ignore[arg-type]
    raise InvalidInput(
        f"{text!r} is not an alias: give scheme:value (aiid, oecd, avid, cve) or a CVE-, "
        "AVID- or AIID- id",
        key="alias",
    )


async def add_aliases(
    conn: asyncpg.Connection, *, incident_id: UUID, aliases: list[Alias]
) -> list[Alias]:
    """Record aliases for an incident; returns those newly added (a repeat of one it holds
    already is no change). Conflict if another incident holds one; InvalidInput on a bad
    format. Nothing is added unless all are (the caller's transaction)."""
    given = [canonical(a) for a in aliases]
    if not given:
        return []
    rows = await q.insert_aliases(
        conn, incident_id=incident_id, aliases=[(a.scheme, a.value) for a in given]
    )
    taken = [row for row in rows if not row["added"] and row["holder"] != incident_id]
    if taken:
        names = ", ".join(f"{row['scheme']}:{row['value']}" for row in taken)
        raise Conflict(f"another incident already has the alias {names}")
    return [Alias(scheme=row["scheme"], value=row["value"]) for row in rows if row["added"]]
