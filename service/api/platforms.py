"""``/v1/platforms``: hosting platforms."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from service.api.auth import ADMIN, ANY_ROLE, allow
from service.api.deps import Caller, Db
from service.api.pagination import Cursor, Limit, decode_uuid_cursor, paginate
from service.api.params import PlatformSlugPath
from service.api.problems import problem_responses
from service.domain import platforms as domain
from service.schemas.platforms import (
    Platform,
    PlatformIn,
    PlatformKind,
    PlatformPage,
    PlatformPatch,
)

__all__ = ["PlatformController"]


class PlatformController(Controller):
    path = "/v1/platforms"
    tags = ["platforms"]

    @post(
        operation_id="createPlatform",
        summary="Register a hosting platform",
        guards=[allow(*ADMIN)],
        responses=problem_responses(400, 401, 403, 409, 413, 415, 422),
    )
    async def create(self, data: JSONBody[PlatformIn], db: Db, principal: Caller) -> Platform:
        return await domain.create_platform(db, data=data, actor_id=principal.id)

    @get(
        operation_id="listPlatforms",
        summary="List platforms (a platform key sees only its own)",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403),
    )
    async def index(
        self,
        db: Db,
        principal: Caller,
        kind: FromQuery[PlatformKind | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> PlatformPage:
        items = await domain.list_platforms(
            db,
            kind=kind,
            visible_to=principal.platform_id,
            after=decode_uuid_cursor(cursor),
            limit=limit + 1,
        )
        page, next_cursor = paginate(items, limit, lambda p: p.id)
        return PlatformPage(items=page, next_cursor=next_cursor)

    @get(
        "/{slug:str}",
        operation_id="getPlatform",
        summary="One platform",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read(self, slug: FromPath[PlatformSlugPath], db: Db, principal: Caller) -> Platform:
        return await domain.get_platform(db, slug=slug, visible_to=principal.platform_id)

    @patch(
        "/{slug:str}",
        operation_id="updatePlatform",
        summary="Change a platform's name, kind or package-URL type",
        description=(
            "Changing `purl_type` rewrites the purl of every hosting of the platform in the "
            "same transaction; null clears it. An unknown type is 422."
        ),
        guards=[allow(*ADMIN)],
        responses=problem_responses(400, 401, 403, 404, 413, 415, 422),
    )
    async def update(
        self,
        slug: FromPath[PlatformSlugPath],
        data: JSONBody[PlatformPatch],
        db: Db,
        principal: Caller,
    ) -> Platform:
        return await domain.update_platform(db, slug=slug, patch=data, actor_id=principal.id)
