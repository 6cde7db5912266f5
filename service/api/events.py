"""``/v1/events``: the ledger, oldest first."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.params import FromQuery, Parameter

from service.api.auth import ANY_ROLE, allow
from service.api.deps import Caller, Db
from service.api.pagination import Cursor, Limit, decode_seq_cursor, paginate
from service.api.problems import problem_responses
from service.domain import ledger
from service.domain.platforms import get_platform
from service.errors import NotFound
from service.schemas.events import EventPage, Stage

__all__ = ["EventController"]


class EventController(Controller):
    path = "/v1/events"
    tags = ["events"]

    @get(
        operation_id="listEvents",
        summary="Ledger events with filters (a platform key sees its own platform's only)",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403),
    )
    async def index(
        self,
        db: Db,
        principal: Caller,
        stage: FromQuery[Stage | None] = None,
        kind: Annotated[str | None, Parameter(max_length=100)] = None,
        model_id: FromQuery[UUID | None] = None,
        subject_id: FromQuery[UUID | None] = None,
        platform: Annotated[str | None, Parameter(max_length=63)] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> EventPage:
        platform_id = principal.platform_id
        if platform is not None:
            try:
                platform_id = (
                    await get_platform(db, slug=platform, visible_to=principal.platform_id)
                ).id
            except NotFound:
                return EventPage(items=[], next_cursor=None)
        items = await ledger.list_events(
            db,
            subject_id=subject_id,
            model_id=model_id,
            platform_id=platform_id,
            stage=stage,
            kind=kind,
            after_seq=decode_seq_cursor(cursor),
            limit=limit + 1,
        )
        page, next_cursor = paginate(items, limit, lambda e: e.seq)
        return EventPage(items=page, next_cursor=next_cursor)
