"""``/console/incidents``: the triage queue, with filters in the URL and keyset paging.

The list is ``domain.incidents.list_incidents`` under the viewer's scope, as
``GET /v1/incidents`` reads it; a platform filter narrows the scope the same way a
platform key's own scope does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, get
from litestar.response import Template

from service.api.deps import Db
from service.api.pagination import decode_uuid_cursor, paginate
from service.console.web import Viewer, page
from service.domain import incidents as domain
from service.domain.models import get_model
from service.domain.platforms import get_platform
from service.schemas.common import ModelName, PlatformSlug
from service.schemas.incidents import Category, IncidentStatus, Severity

__all__ = ["TriageController", "TriageFilters"]

STATUSES = ["received", "triaged", "investigating", "mitigated", "closed", "duplicate", "rejected"]
CATEGORIES = [
    "harmful_content",
    "security_vulnerability",
    "bias_discrimination",
    "malfunction",
    "misuse",
    "privacy",
    "other",
]
SEVERITIES = ["low", "medium", "high", "critical"]
PAGE_SIZE = 50


class TriageFilters(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The queue's query string: every filter optional, an empty field meaning "any"."""

    status: IncidentStatus | None = None
    category: Category | None = None
    severity: Severity | None = None
    serious: bool | None = None
    overdue: bool | None = None
    platform: PlatformSlug | None = None
    model: ModelName | None = None
    q: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    #: Oldest report first (the default) or newest first.
    sort: Literal["oldest", "newest"] | None = None
    cursor: Annotated[str, msgspec.Meta(max_length=100)] | None = None


def parse_filters(request: Request[Any, Any, Any]) -> TriageFilters:
    given = {k: v.strip() for k, v in request.query_params.items() if v.strip()}
    for flag in ("serious", "overdue"):
        if flag in given:
            given[flag] = {"yes": "true", "no": "false"}.get(given[flag], given[flag])
    # strict=False: "true" in a query string is a boolean.
    return msgspec.convert(given, TriageFilters, strict=False)


def _query(filters: TriageFilters, **change: object) -> str:
    fields = {**msgspec.structs.asdict(filters), **change}
    shown = {
        k: ("yes" if v else "no") if isinstance(v, bool) else v
        for k, v in fields.items()
        if v is not None
    }
    return urlencode(shown)


class TriageController(Controller):
    path = "/console/incidents"

    @get("/")
    async def queue(self, request: Request[Any, Any, Any], db: Db, viewer: Viewer) -> Template:
        try:
            filters = parse_filters(request)
        except msgspec.ValidationError as exc:
            return page(
                "error.html",
                viewer=viewer,
                title="Error 400",
                detail=f"a filter is not valid: {exc}",
                status_code=400,
            )
        now = datetime.now(UTC)
        scope = await domain.scope_for(db, principal=viewer.principal, now=now)
        if filters.platform is not None:
            platform = await get_platform(
                db, slug=filters.platform, visible_to=viewer.principal.platform_id
            )
            scope = msgspec.structs.replace(scope, platform_id=platform.id)
        model_id = None
        if filters.model is not None:
            model_id = (await get_model(db, name=filters.model)).id
        items = await domain.list_incidents(
            db,
            scope=scope,
            now=now,
            status=filters.status,
            category=filters.category,
            severity=filters.severity,
            serious=filters.serious,
            overdue=filters.overdue,
            model_id=model_id,
            include_lineage=False,
            text=filters.q,
            newest_first=filters.sort == "newest",
            after=decode_uuid_cursor(filters.cursor),
            limit=PAGE_SIZE + 1,
        )
        shown, next_cursor = paginate(items, PAGE_SIZE, lambda i: i.id)
        return page(
            "triage.html",
            viewer=viewer,
            title="Triage queue" if viewer.principal.role == "admin" else "Incidents",
            filters=filters,
            items=shown,
            next_url=None if next_cursor is None else "?" + _query(filters, cursor=next_cursor),
            first_url=None if filters.cursor is None else "?" + _query(filters, cursor=None),
            statuses=STATUSES,
            categories=CATEGORIES,
            severities=SEVERITIES,
        )
