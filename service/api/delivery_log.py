"""``/v1/webhooks/{platform}/deliveries``: a platform's delivery log, so it can see what
became of each delivery (accepted, duplicate or rejected, and why)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import asyncpg
from litestar import Controller, get
from litestar.params import FromPath, FromQuery, Parameter

from service.api.auth import ANY_ROLE, allow
from service.api.deps import Caller, Db
from service.api.pagination import Cursor, Limit, decode_uuid_cursor, paginate
from service.api.params import PlatformSlugPath
from service.api.problems import problem_responses
from service.domain import delivery_log as domain
from service.domain.platforms import get_platform
from service.schemas.keys import Principal
from service.schemas.webhooks import DeliveryLogPage, DeliveryOutcome, StoredDelivery

__all__ = ["DeliveryLogController"]


async def _platform_for(db: asyncpg.Connection, slug: str, principal: Principal) -> UUID:
    """The platform's id, if the caller may read its deliveries (admins; the platform)."""
    platform = await get_platform(db, slug=slug, visible_to=principal.platform_id)
    return platform.id


class DeliveryLogController(Controller):
    path = "/v1/webhooks/{platform:str}/deliveries"
    tags = ["webhooks"]

    @get(
        operation_id="listWebhookDeliveries",
        summary="A platform's delivery log, newest first: accepted, duplicate and rejected",
        guards=[allow("admin", "platform")],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def index(
        self,
        platform: FromPath[PlatformSlugPath],
        db: Db,
        principal: Caller,
        outcome: FromQuery[DeliveryOutcome | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> DeliveryLogPage:
        platform_id = await _platform_for(db, platform, principal)
        items = await domain.list_deliveries(
            db,
            platform_id=platform_id,
            outcome=outcome,
            before=decode_uuid_cursor(cursor),
            limit=limit + 1,
        )
        page, next_cursor = paginate(items, limit, lambda e: e.id)
        return DeliveryLogPage(items=page, next_cursor=next_cursor)

    @get(
        "/{delivery_id:str}",
        operation_id="getWebhookDelivery",
        summary="One accepted delivery as received: raw body, headers and its ledger events",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read(
        self,
        platform: FromPath[PlatformSlugPath],
        delivery_id: FromPath[Annotated[str, Parameter(max_length=200)]],
        db: Db,
        principal: Caller,
    ) -> StoredDelivery:
        platform_id = await _platform_for(db, platform, principal)
        return await domain.get_delivery(
            db,
            platform_id=platform_id,
            platform_slug=platform,
            delivery_id=delivery_id,
            hide_reports=principal.role == "auditor",
        )
