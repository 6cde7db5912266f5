"""``/v1/admin/divergences``: records that differ from their ledger state (admin only)."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, get
from litestar.params import FromQuery

from service.api.auth import ADMIN, allow
from service.api.deps import Db
from service.api.pagination import Cursor, Limit, decode_seq_cursor, paginate
from service.api.problems import problem_responses
from service.domain.reconciler import list_divergences
from service.schemas.divergences import DivergencePage

__all__ = ["DivergenceController"]

Dataset = Literal["models", "hostings", "incidents", "audits", "decisions"]


class DivergenceController(Controller):
    path = "/v1/admin/divergences"
    tags = ["transparency"]
    guards = [allow(*ADMIN)]

    @get(
        operation_id="listDivergences",
        summary="Records found differing from the state their newest ledger event carries",
        description=(
            "What the background reconciliation found on its latest visit of each record: "
            "one item per differing field (`*`: no event carries the record). A record "
            "found agreeing again drops out."
        ),
        responses=problem_responses(400, 401, 403),
    )
    async def index(
        self,
        db: Db,
        dataset: FromQuery[Dataset | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> DivergencePage:
        items = await list_divergences(
            db, dataset=dataset, after=decode_seq_cursor(cursor), limit=limit + 1
        )
        page, next_cursor = paginate(items, limit, lambda d: d.id)
        return DivergencePage(items=page, next_cursor=next_cursor)
