"""Incidents in lists: the register by filter (with lineage, text and point-in-time reads),
the triage queue's orders, the incident holding an alias, and likely duplicates.

Each list is read within the caller's ``Scope`` (see ``service.domain.incidents``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import asyncpg

from service.db.queries import incident_aliases as alias_q
from service.db.queries import incidents as q
from service.domain.as_of import check_moment, from_state
from service.domain.incident_aliases import parse_alias
from service.domain.incidents import Scope, get_incident, reporter_fields, to_incident, to_view
from service.errors import NotFound
from service.schemas.incidents import Incident, IncidentView

__all__ = [
    "QueueSort",
    "find_by_alias",
    "list_duplicate_candidates",
    "list_incidents",
    "queue_key",
]


async def list_incidents(
    conn: asyncpg.Connection,
    *,
    scope: Scope,
    now: datetime,
    status: str | None = None,
    category: str | None = None,
    severity: str | None = None,
    serious: bool | None = None,
    overdue: bool | None = None,
    channel: str | None = None,
    model_id: UUID | None = None,
    include_lineage: bool = True,
    after: UUID | None = None,
    limit: int,
    text: str | None = None,
    newest_first: bool = False,
    as_of: datetime | None = None,
    sort: QueueSort | None = None,
    sort_key: datetime | int | None = None,
    backwards: bool = False,
) -> list[IncidentView]:
    """Incidents by filter; with ``model_id``, also those on its ancestors and descendants
    (flagged ``inherited``) unless ``include_lineage`` is false; with ``text``, only those
    whose title or description holds it (ignoring case). Oldest first unless
    ``newest_first``; ``after`` continues from an id in the same order.

    With ``as_of``, each incident as recorded then and its clock read at that moment, leaving
    out those not reported yet; the filters select by today's values.

    ``sort`` orders the triage queue (see ``QueueSort``); its keyset is ``(sort_key, after)``
    with ``sort_key`` from ``queue_key`` of the last item shown. ``backwards`` reads the page
    before that item instead, still in the queue's order."""
    if as_of is not None:
        check_moment(as_of)
    rows = await q.select_incidents(
        conn,
        status=status,
        category=category,
        severity=severity,
        serious=serious,
        overdue=overdue,
        channel=channel,
        visible_platform=scope.platform_id,
        visible_models=scope.model_ids,
        model_id=model_id,
        include_lineage=include_lineage,
        now=now,
        after=after,
        limit=limit,
        text=text,
        newest_first=newest_first,
        sort=sort,
        sort_key=sort_key,
        backwards=backwards,
        as_of=as_of,
    )
    if backwards:
        rows.reverse()
    if as_of is not None:
        # Each row carries its state then, read in the list's own statement.
        return [
            to_view(
                from_state(row["state"], Incident, kept_apart=reporter_fields(row)),
                now=as_of,
                inherited=row["inherited"],
                redact_reporter=scope.redact_reporter,
            )
            for row in rows
            if isinstance(row["state"], dict)
        ]
    return [
        to_view(
            to_incident(row),
            now=now,
            inherited=row["inherited"],
            redact_reporter=scope.redact_reporter,
        )
        for row in rows
    ]


async def find_by_alias(
    conn: asyncpg.Connection, *, alias: str, scope: Scope, now: datetime
) -> list[IncidentView]:
    """The incident holding ``alias`` (``scheme:value`` or ``CVE-…``, ``AVID-…``,
    ``AIID-…``), if the scope reaches it: a list of one, or empty."""
    wanted = parse_alias(alias)
    incident_id = await alias_q.select_incident_by_alias(
        conn, scheme=wanted.scheme, value=wanted.value
    )
    if incident_id is None:
        return []
    try:
        incident = await get_incident(conn, incident_id=incident_id, visible_to=scope)
    except NotFound:
        return []
    return [to_view(incident, now=now, redact_reporter=scope.redact_reporter)]


#: The triage queue's orders: by report (oldest or newest first), by the pending Article 73
#: deadline (soonest first, those with none last) or by severity (critical first); ties by report.
QueueSort = Literal["oldest", "newest", "deadline", "severity"]
_SEVERITY_RANK = {"critical": 1, "high": 2, "medium": 3, "low": 4}


def queue_key(incident: Incident, sort: QueueSort) -> datetime | int | None:
    """The value ``sort`` orders ``incident`` by beside its id (``None``: the id alone, or no
    pending deadline), as the queue's SQL computes it."""
    if sort == "severity":
        return _SEVERITY_RANK[incident.severity]
    if sort == "deadline":
        pending = (
            incident.serious
            and incident.deadline is not None
            and incident.authority_initial_report_at is None
            and incident.status not in ("duplicate", "rejected")
        )
        return incident.deadline.due_at if pending and incident.deadline else None
    return None


async def list_duplicate_candidates(
    conn: asyncpg.Connection, *, incident_id: UUID, window: timedelta, now: datetime, limit: int
) -> list[IncidentView]:
    """Open incidents naming one of the same models (registered, or unlisted by the same
    name), in the same category, reported within ``window`` either side of this one: likely
    duplicates, offered for merging."""
    incident = await get_incident(conn, incident_id=incident_id)
    rows = await q.select_duplicate_candidates(
        conn,
        incident_id=incident.id,
        category=incident.category,
        since=incident.reported_at - window,
        until=incident.reported_at + window,
        unlisted_models=incident.unlisted_models,
        limit=limit,
    )
    return [to_view(to_incident(row), now=now) for row in rows]
