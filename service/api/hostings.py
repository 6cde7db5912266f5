"""``/v1/hostings``: which platform hosts which model, and how."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from service.api.auth import ANY_ROLE, allow
from service.api.deps import Caller, Db
from service.api.pagination import Cursor, Limit, decode_seq_cursor, decode_uuid_cursor, paginate
from service.api.problems import problem_responses
from service.domain import history
from service.domain import hostings as domain
from service.schemas.events import EventPage
from service.schemas.hostings import (
    DocumentKind,
    Hosting,
    HostingIn,
    HostingPage,
    HostingPatch,
    HostingStatus,
)

__all__ = ["HostingController"]

WRITERS = allow("admin", "platform")


class HostingController(Controller):
    path = "/v1/hostings"
    tags = ["hostings"]

    @post(
        operation_id="recordHosting",
        summary="Record that a platform hosts a registered model",
        guards=[WRITERS],
        responses=problem_responses(400, 401, 403, 409, 413, 415, 422),
    )
    async def create(self, data: JSONBody[HostingIn], db: Db, principal: Caller) -> Hosting:
        hosting, _ = await domain.record_hosting(
            db, data=data, caller_platform_id=principal.platform_id, actor_id=principal.id
        )
        return hosting

    @get(
        operation_id="listHostings",
        summary="List hostings (a platform key sees only its own)",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403),
    )
    async def index(
        self,
        db: Db,
        principal: Caller,
        platform: Annotated[str | None, Parameter(max_length=63)] = None,
        model_id: FromQuery[UUID | None] = None,
        status: FromQuery[HostingStatus | None] = None,
        licence: Annotated[str | None, Parameter(max_length=100)] = None,
        min_downloads: Annotated[int | None, Parameter(ge=0)] = None,
        missing: Annotated[
            DocumentKind | None,
            Parameter(description="Only hostings lacking this piece of documentation."),
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> HostingPage:
        items = await domain.list_hostings(
            db,
            platform=platform,
            visible_to=principal.platform_id,
            model_id=model_id,
            status=status,
            licence=licence,
            min_downloads=min_downloads,
            missing=missing,
            after=decode_uuid_cursor(cursor),
            limit=limit + 1,
        )
        page, next_cursor = paginate(items, limit, lambda h: h.id)
        return HostingPage(items=page, next_cursor=next_cursor)

    @get(
        "/{hosting_id:uuid}",
        operation_id="getHosting",
        summary="One hosting",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def read(
        self,
        hosting_id: FromPath[UUID],
        db: Db,
        principal: Caller,
        as_of: Annotated[
            datetime | None,
            Parameter(description="RFC 3339 moment: the hosting as the registry recorded it then."),
        ] = None,
    ) -> Hosting:
        return await domain.get_hosting(
            db, hosting_id=hosting_id, visible_to=principal.platform_id, as_of=as_of
        )

    @patch(
        "/{hosting_id:uuid}",
        operation_id="updateHosting",
        summary="Change a hosting: revision, licence, gating, status, downloads, documentation",
        guards=[WRITERS],
        responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
    )
    async def update(
        self,
        hosting_id: FromPath[UUID],
        data: JSONBody[HostingPatch],
        db: Db,
        principal: Caller,
    ) -> Hosting:
        hosting, _ = await domain.update_hosting(
            db,
            hosting_id=hosting_id,
            patch=data,
            actor_id=principal.id,
            visible_to=principal.platform_id,
        )
        return hosting

    @get(
        "/{hosting_id:uuid}/events",
        operation_id="listHostingEvents",
        summary="The ledger events of one hosting, oldest first",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def events(
        self,
        hosting_id: FromPath[UUID],
        db: Db,
        principal: Caller,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> EventPage:
        await domain.get_hosting(db, hosting_id=hosting_id, visible_to=principal.platform_id)
        items = await history.list_events(
            db, subject_id=hosting_id, cursor=decode_seq_cursor(cursor), limit=limit + 1
        )
        page, next_cursor = paginate(items, limit, lambda e: e.seq)
        return EventPage(items=page, next_cursor=next_cursor)
