"""``/v1/events``: the whole ledger, filtered, oldest or newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.params import FromQuery, Parameter

from service.api.auth import ANY_ROLE, allow
from service.api.deps import Caller, Db
from service.api.pagination import Cursor, Limit, decode_seq_cursor, paginate
from service.api.problems import problem_responses
from service.domain import history
from service.errors import InvalidCursor
from service.schemas.events import EventPage, Stage
from service.schemas.history import Order

__all__ = ["EventController", "Kind", "PlatformFilter", "Since", "Until", "seq_cursor"]

Kind = Annotated[
    str | None, Parameter(max_length=100, description="An event kind, e.g. `hosting.removed`.")
]
PlatformFilter = Annotated[
    str | None, Parameter(max_length=63, description="Only events about this platform.")
]
Since = Annotated[
    datetime | None,
    Parameter(description="Only events that occurred at or after this RFC 3339 moment."),
]
Until = Annotated[
    datetime | None,
    Parameter(description="Only events that occurred before this RFC 3339 moment."),
]


def seq_cursor(cursor: str | None) -> int | None:
    """A seq cursor, refused if it could not be a seq (a bigint)."""
    seq = decode_seq_cursor(cursor)
    if seq is not None and seq >= 2**63:
        raise InvalidCursor("the cursor is not one this service issued")
    return seq


class EventController(Controller):
    path = "/v1/events"
    tags = ["events"]

    @get(
        operation_id="listEvents",
        summary="Ledger events with filters (a platform key sees its own platform's only)",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 422),
    )
    async def index(
        self,
        db: Db,
        principal: Caller,
        stage: FromQuery[Stage | None] = None,
        kind: Kind = None,
        model_id: FromQuery[UUID | None] = None,
        subject_id: FromQuery[UUID | None] = None,
        platform: PlatformFilter = None,
        since: Since = None,
        until: Until = None,
        order: Annotated[
            Order, Parameter(description="`oldest` first (the default) or `newest` first.")
        ] = "oldest",
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> EventPage:
        items = await history.list_events(
            db,
            subject_id=subject_id,
            model_id=model_id,
            platform=platform,
            visible_to=principal.platform_id,
            stage=stage,
            kind=kind,
            since=since,
            until=until,
            cursor=seq_cursor(cursor),
            newest_first=order == "newest",
            limit=limit + 1,
        )
        page, next_cursor = paginate(items, limit, lambda e: e.seq)
        return EventPage(items=page, next_cursor=next_cursor)
