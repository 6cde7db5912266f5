"""The console's catalogue: lists of models, hostings and platforms, and the model page.

Each page reads through the domain functions the matching ``/v1`` routes call, with the
same narrowing for a platform key (its own hostings, its own platform's history).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from service.api.deps import Db
from service.console.charts import downloads_chart, lineage_graph
from service.console.incident import parse_as_of
from service.console.web import Viewer, page
from service.domain import incident_lists
from service.domain import incidents as incidents_domain
from service.domain.audits import list_audits
from service.domain.decommissions import list_decisions
from service.domain.history import downloads_over_time, model_history
from service.domain.hostings import list_hostings
from service.domain.models import get_lineage, get_model, list_models
from service.domain.platforms import list_platforms
from service.errors import InvalidInput

__all__ = ["CatalogueController"]

Search = Annotated[str | None, QueryParameter(max_length=200)]
STAGES = ["prevent", "detect", "respond"]
HISTORY_PAGE = 50
DOCUMENTS = ["model_card", "safety_testing", "risk_analysis", "use_guidance"]


class _Changes(msgspec.Struct):
    """What the timeline shows of an event's payload: its ``changes``, if any. Decoding
    only this field skips building the rest (a state of some kilobytes) for every event."""

    changes: Any = None


_CHANGES = msgspec.json.Decoder(_Changes)


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value else None


class CatalogueController(Controller):
    path = "/console"

    @get("/models")
    async def models(self, db: Db, viewer: Viewer, q: Search = None) -> Template:
        prefix = _blank(q)
        items = await list_models(db, name_prefix=prefix, limit=100)
        return page("models.html", viewer=viewer, title="Models", items=items, q=prefix or "")

    @get("/hostings")
    async def hostings(
        self,
        db: Db,
        viewer: Viewer,
        platform: Search = None,
        model: Search = None,
    ) -> Template:
        slug = _blank(platform)
        model_name = _blank(model)
        model_id = None if model_name is None else (await get_model(db, name=model_name)).id
        # As GET /v1/hostings: a platform another key may not see lists nothing.
        items = await list_hostings(
            db,
            platform=slug,
            visible_to=viewer.principal.platform_id,
            model_id=model_id,
            limit=100,
        )
        return page(
            "hostings.html",
            viewer=viewer,
            title="Hostings",
            items=items,
            platform=slug or "",
            model=model_name or "",
            documents=DOCUMENTS,
        )

    @get("/platforms")
    async def platforms(self, db: Db, viewer: Viewer, q: Search = None) -> Template:
        text = _blank(q)
        items = await list_platforms(
            db, kind=None, visible_to=viewer.principal.platform_id, after=None, limit=200, text=text
        )
        return page("platforms.html", viewer=viewer, title="Platforms", items=items, q=text or "")

    @get("/models/{model_id:uuid}")
    async def model(
        self,
        model_id: FromPath[UUID],
        db: Db,
        viewer: Viewer,
        as_of: Annotated[str | None, QueryParameter(max_length=40)] = None,
        stage: Search = None,
        kind: Search = None,
        older_than: Annotated[int | None, QueryParameter(ge=0)] = None,
    ) -> Template:
        principal = viewer.principal
        now = datetime.now(UTC)
        moment = parse_as_of(as_of)
        stage = _blank(stage)
        if stage is not None and stage not in STAGES:
            raise InvalidInput(f"no stage {stage!r}", key="stage")
        kind = _blank(kind)
        # The lineage carries the model itself (now, or as of the moment): one read, not two.
        lineage = await get_lineage(
            db, model_id=model_id, as_of=moment, visible_to=principal.platform_id
        )
        model = lineage.model
        hostings = await list_hostings(
            db, visible_to=principal.platform_id, model_id=model_id, limit=200, as_of=moment
        )
        scope = await incidents_domain.scope_for(db, principal=principal, now=now)
        incidents = await incident_lists.list_incidents(
            db, scope=scope, now=now, model_id=model_id, limit=100, as_of=moment
        )
        audits = []
        if principal.role in ("admin", "auditor", "regulator"):
            audits = await list_audits(
                db, viewer=principal, model_id=model_id, after=None, limit=100, as_of=moment
            )
        decisions = await list_decisions(
            db, model_id=model_id, platform_id=principal.platform_id, limit=100, as_of=moment
        )
        history = await model_history(
            db,
            model_id=model_id,
            visible_to=principal.platform_id,
            stage=stage,
            kind=kind,
            until=moment,
            cursor=older_than,
            limit=HISTORY_PAGE + 1,
        )
        older_url = None
        if len(history) > HISTORY_PAGE:
            history = history[:HISTORY_PAGE]
            query = {"stage": stage, "kind": kind, "as_of": as_of, "older_than": history[-1].seq}
            older_url = "?" + urlencode({k: v for k, v in query.items() if v})
        series = await downloads_over_time(db, model_id=model_id, platform_id=principal.platform_id)
        if moment is not None:
            series = [point for point in series if point.at <= moment]
        return page(
            "model.html",
            viewer=viewer,
            title=f"Model {model.name}",
            model=model,
            as_of=moment,
            lineage=lineage,
            graph=lineage_graph(lineage),
            hostings=hostings,
            documents=DOCUMENTS,
            incidents=incidents,
            audits=audits,
            decisions=decisions,
            history=history,
            chart=downloads_chart(series),
            stage=stage or "",
            kind=kind or "",
            stages=STAGES,
            changed={e.seq: _CHANGES.decode(e.payload).changes for e in history},
            older_url=older_url,
        )
