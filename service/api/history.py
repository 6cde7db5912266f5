"""``/v1/models/{id}/history``: a model's timeline across prevent, detect and respond."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.params import FromPath, FromQuery, Parameter

from service.api.auth import ANY_ROLE, allow
from service.api.deps import Caller, Db
from service.api.events import Kind, PlatformFilter, Since, Until, seq_cursor
from service.api.pagination import Cursor, Limit, paginate
from service.api.problems import problem_responses
from service.domain import history
from service.schemas.events import Stage
from service.schemas.history import HistoryPage, Order

__all__ = ["HistoryController"]


class HistoryController(Controller):
    path = "/v1/models"
    tags = ["models"]

    @get(
        "/{model_id:uuid}/history",
        operation_id="getModelHistory",
        summary=(
            "A model's events across all stages, with its ancestors' and descendants' "
            "flagged as inherited (a platform key sees its own platform's only)"
        ),
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def history(
        self,
        model_id: FromPath[UUID],
        db: Db,
        principal: Caller,
        stage: FromQuery[Stage | None] = None,
        kind: Kind = None,
        platform: PlatformFilter = None,
        since: Since = None,
        until: Until = None,
        lineage: Annotated[
            bool, Parameter(description="Include ancestors' and descendants' events.")
        ] = True,
        order: Annotated[
            Order, Parameter(description="`newest` first (the default) or `oldest` first.")
        ] = "newest",
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> HistoryPage:
        items = await history.model_history(
            db,
            model_id=model_id,
            include_lineage=lineage,
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
        return HistoryPage(items=page, next_cursor=next_cursor)
