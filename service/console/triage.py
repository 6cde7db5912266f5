"""``/console/incidents``: the triage queue, with filters in the URL and keyset paging.

The list is ``domain.incident_lists.list_incidents`` under the viewer's scope, as
``GET /v1/incidents`` reads it; a platform filter narrows the scope the same way a
platform key's own scope does. An alias (``CVE-2026-12345``, ``aiid:123`` ...) finds the one
incident holding it, as ``GET /v1/incidents?alias=`` does: the other filters do not apply.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Controller, Request, get
from litestar.response import Template

from service.api.deps import Db
from service.console.web import Viewer, page
from service.domain import incident_lists
from service.domain import incidents as domain
from service.domain.models import get_model
from service.domain.platforms import get_platform
from service.schemas.common import ModelName, PlatformSlug
from service.schemas.incidents import (
    CATEGORIES,
    INCIDENT_STATUSES,
    SEVERITIES,
    Category,
    IncidentStatus,
    IncidentView,
    Severity,
)

__all__ = ["TriageController", "TriageFilters"]

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
    #: An identifier in another incident database: the incident holding it, alone.
    alias: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    #: Oldest report first (the default), newest first, soonest Article 73 deadline first, or
    #: most severe first.
    sort: incident_lists.QueueSort | None = None
    #: The page after this keyset (``next_url``) ...
    cursor: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    #: ... or the page before it (``prev_url``).
    before: Annotated[str, msgspec.Meta(max_length=100)] | None = None


SORT_LABELS = {
    "oldest": "oldest report first",
    "newest": "newest report first",
    "deadline": "Article 73 deadline, soonest first",
    "severity": "most severe first",
}


def encode_cursor(incident: IncidentView, sort: incident_lists.QueueSort) -> str:
    """The keyset of ``incident`` in ``sort``: its sort key and its id, readable in a URL."""
    key = incident_lists.queue_key(incident, sort)
    text = "" if key is None else key.isoformat() if isinstance(key, datetime) else str(key)
    return f"{text}~{incident.id}"


def decode_cursor(
    cursor: str, sort: incident_lists.QueueSort
) -> tuple[datetime | int | None, UUID]:
    """The keyset a cursor from ``encode_cursor`` names; ``ValueError`` if it is not one."""
    text, _, raw_id = cursor.rpartition("~")
    incident_id = UUID(raw_id)
    if not text:
        return None, incident_id
    if sort == "deadline":
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("a deadline cursor carries its offset")
        return moment, incident_id
    if sort == "severity" and text.isdigit() and 1 <= int(text) <= 4:
        return int(text), incident_id
    raise ValueError("the cursor does not belong to this order")


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
        if filters.alias is not None:
            found = await incident_lists.find_by_alias(
                db, alias=filters.alias, scope=scope, now=now
            )
            return self._render(viewer, filters, found, filters.sort or "oldest", None, None, None)
        if filters.platform is not None:
            platform = await get_platform(
                db, slug=filters.platform, visible_to=viewer.principal.platform_id
            )
            scope = msgspec.structs.replace(scope, platform_id=platform.id)
        model_id = None
        if filters.model is not None:
            model_id = (await get_model(db, name=filters.model)).id
        sort: incident_lists.QueueSort = filters.sort or "oldest"
        backwards = filters.before is not None and filters.cursor is None
        try:
            key, after = (None, None)
            given = filters.before if backwards else filters.cursor
            if given is not None:
                key, after = decode_cursor(given, sort)
        except ValueError:
            return page(
                "error.html",
                viewer=viewer,
                title="Error 400",
                detail="the page link is not one this console made: start from the first page",
                status_code=400,
            )
        items = await incident_lists.list_incidents(
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
            sort=sort,
            sort_key=key,
            after=after,
            backwards=backwards,
            limit=PAGE_SIZE + 1,
        )
        more = len(items) > PAGE_SIZE
        # Read backwards, the extra item is the first; forwards, the last.
        shown = items[-PAGE_SIZE:] if backwards else items[:PAGE_SIZE]
        has_next = (not backwards and more) or (backwards and bool(shown))
        has_prev = (backwards and more) or (not backwards and after is not None and bool(shown))
        paged = msgspec.structs.replace(filters, cursor=None, before=None)
        next_url = prev_url = None
        if has_next:
            next_url = "?" + _query(paged, cursor=encode_cursor(shown[-1], sort))
        if has_prev:
            prev_url = "?" + _query(paged, before=encode_cursor(shown[0], sort))
        first_url = None if given is None else "?" + _query(paged)
        return self._render(viewer, filters, shown, sort, next_url, prev_url, first_url)

    @staticmethod
    def _render(
        viewer: Viewer,
        filters: TriageFilters,
        items: list[IncidentView],
        sort: incident_lists.QueueSort,
        next_url: str | None,
        prev_url: str | None,
        first_url: str | None,
    ) -> Template:
        return page(
            "triage.html",
            viewer=viewer,
            title="Triage queue" if viewer.principal.role == "admin" else "Incidents",
            filters=filters,
            items=items,
            next_url=next_url,
            prev_url=prev_url,
            first_url=first_url,
            sorts=SORT_LABELS,
            sort=sort,
            statuses=INCIDENT_STATUSES,
            categories=CATEGORIES,
            severities=SEVERITIES,
        )
