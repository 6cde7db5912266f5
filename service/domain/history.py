"""Timelines: the ledger filtered, and a model's history across its lineage.

A model's history holds its own events and, flagged ``inherited``, those of its ancestors
(what it was derived from: an incident in a base model concerns its fine-tunes too) and of
its descendants (what was derived from it).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import history as q
from service.domain.platforms import platform_scope
from service.errors import InvalidInput, NotFound
from service.schemas.events import Event
from service.schemas.history import HistoryEvent

#: A decision's events carry its full state, every platform's targets (hosting ids and
#: names) included, and an event is served whole or not at all (its leaf must stay
#: recomputable). Platforms never learn other platforms' hostings, so a platform key is
#: served no decision event, not even one its own confirmation made; it reads the decision
#: through ``/v1/decommissions``, narrowed to its own targets.
PLATFORMS_NEVER_SEE = "decommission"

__all__ = [
    "PLATFORMS_NEVER_SEE",
    "DownloadPoint",
    "downloads_over_time",
    "list_events",
    "model_history",
]


def _check_range(since: datetime | None, until: datetime | None) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} must carry a time zone offset (RFC 3339)", key=name)
    if since is not None and until is not None and until <= since:
        raise InvalidInput("until must be later than since", key="until")


async def list_events(
    conn: asyncpg.Connection,
    *,
    subject_id: UUID | None = None,
    model_id: UUID | None = None,
    platform: str | None = None,
    visible_to: UUID | None = None,
    stage: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: int | None = None,
    newest_first: bool = False,
    limit: int,
) -> list[Event]:
    """Ledger events matching every filter given; ``since``/``until`` bound ``occurred_at``.

    A platform (``visible_to``) sees its own platform's events only, and no decision's
    (see ``PLATFORMS_NEVER_SEE``).
    """
    _check_range(since, until)
    scope = await platform_scope(conn, slug=platform, visible_to=visible_to)
    if scope.empty:
        return []
    rows = await q.select_events(
        conn,
        subject_id=subject_id,
        model_id=model_id,
        platform_id=scope.platform_id,
        stage=stage,
        kind=kind,
        since=since,
        until=until,
        cursor=cursor,
        newest_first=newest_first,
        limit=limit,
        hidden_subject_type=None if visible_to is None else PLATFORMS_NEVER_SEE,
    )
    return [_event(row) for row in rows]


async def model_history(
    conn: asyncpg.Connection,
    *,
    model_id: UUID,
    include_lineage: bool = True,
    platform: str | None = None,
    visible_to: UUID | None = None,
    stage: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: int | None = None,
    newest_first: bool = True,
    limit: int,
) -> list[HistoryEvent]:
    """A model's timeline; a platform (``visible_to``) sees its own platform's events only,
    and no decision's (see ``PLATFORMS_NEVER_SEE``)."""
    _check_range(since, until)
    scope = await platform_scope(conn, slug=platform, visible_to=visible_to)
    if scope.empty:
        return []
    rows = await q.select_model_history(
        conn,
        model_id=model_id,
        include_lineage=include_lineage,
        platform_id=scope.platform_id,
        stage=stage,
        kind=kind,
        since=since,
        until=until,
        cursor=cursor,
        newest_first=newest_first,
        limit=limit,
        hidden_subject_type=None if visible_to is None else PLATFORMS_NEVER_SEE,
    )
    if not rows and not await q.model_exists(conn, model_id=model_id):
        raise NotFound(f"no model {model_id}")
    return [_history_event(row) for row in rows]


def _history_event(row: asyncpg.Record) -> HistoryEvent:
    """Built as ``_event`` builds an event, with the row's relation."""
    return HistoryEvent(
        seq=row[0],
        stage=row[1],
        kind=row[2],
        subject_type=row[3],
        subject_id=row[4],
        model_id=row[5],
        platform_id=row[6],
        actor_id=row[7],
        occurred_at=row[8],
        recorded_at=row[9],
        payload=msgspec.Raw(row[10]),
        relation=row[11],
        inherited=row[11] != "self",
    )


def _event(row: asyncpg.Record) -> Event:
    """An event from a row selected with ``SERVED_EVENT_COLUMNS`` (in that order).

    Rows are typed by the database, so events are built directly rather than converted with
    validation, and by position: ``dict(row)``, or passing the fields as ``**kwargs``, costs
    more than all the rest of building a page. The payload is passed through as stored.
    """
    return Event(
        seq=row[0],
        stage=row[1],
        kind=row[2],
        subject_type=row[3],
        subject_id=row[4],
        model_id=row[5],
        platform_id=row[6],
        actor_id=row[7],
        occurred_at=row[8],
        recorded_at=row[9],
        payload=msgspec.Raw(row[10]),
    )


class DownloadPoint(msgspec.Struct, frozen=True, kw_only=True):
    """The downloads of a model's hostings added up, as they stood after one event."""

    at: datetime
    total: int


async def downloads_over_time(
    conn: asyncpg.Connection, *, model_id: UUID, platform_id: UUID | None, limit: int = 5000
) -> list[DownloadPoint]:
    """The model's downloads across its hostings over time, read from the ledger: each
    hosting event carries the hosting's count (its state, or a change of it), and the total
    is the sum of every hosting's latest count. ``platform_id`` narrows it to one platform's
    hostings, as a platform key's history is narrowed."""
    rows = await q.select_download_counts(
        conn, model_id=model_id, platform_id=platform_id, limit=limit
    )
    latest: dict[UUID, int] = {}
    points: list[DownloadPoint] = []
    for row in rows:
        try:
            count = int(row["downloads"])
        except (TypeError, ValueError):
            continue  # a count recorded as null, or not a number
        latest[row["subject_id"]] = count
        points.append(DownloadPoint(at=row["occurred_at"], total=sum(latest.values())))
    return points
