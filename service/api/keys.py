"""``/v1/keys``: principals and their API keys (admin only)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from service.api.auth import ADMIN, allow
from service.api.deps import Caller, Db
from service.api.pagination import Cursor, Limit, decode_uuid_cursor, paginate
from service.api.problems import problem_responses
from service.domain import keys as domain
from service.schemas.keys import ApiKey, ApiKeyIn, ApiKeyPage, CreatedApiKey, Role

__all__ = ["KeyController"]


class KeyController(Controller):
    path = "/v1/keys"
    tags = ["keys"]
    guards = [allow(*ADMIN)]

    @post(
        operation_id="createKey",
        summary="Create a principal and its API key (the key is shown only in this answer)",
        responses=problem_responses(400, 401, 403, 413, 415, 422),
    )
    async def create(self, data: JSONBody[ApiKeyIn], db: Db, principal: Caller) -> CreatedApiKey:
        return await domain.create_key(db, data=data, actor_id=principal.id)

    @get(
        operation_id="listKeys",
        summary="List API keys (never their secrets)",
        responses=problem_responses(400, 401, 403),
    )
    async def index(
        self,
        db: Db,
        role: FromQuery[Role | None] = None,
        include_revoked: FromQuery[bool] = False,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ApiKeyPage:
        items = await domain.list_keys(
            db,
            role=role,
            include_revoked=include_revoked,
            after=decode_uuid_cursor(cursor),
            limit=limit + 1,
        )
        page, next_cursor = paginate(items, limit, lambda k: k.id)
        return ApiKeyPage(items=page, next_cursor=next_cursor)

    @delete(
        "/{key_id:uuid}",
        operation_id="revokeKey",
        summary="Revoke an API key; it stops working at once",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404),
    )
    async def revoke(self, key_id: FromPath[UUID], db: Db, principal: Caller) -> ApiKey:
        return await domain.revoke_key(db, key_id=key_id, actor_id=principal.id)
