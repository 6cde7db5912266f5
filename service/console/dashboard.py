"""``/console/compliance``: the compliance dashboard for regulators and admins.

Its figures come from ``service.domain.compliance.build_report``, the function behind
``GET /v1/reports/compliance``, run twice (the period and the one of equal length before
it) in one read-only snapshot, so each figure carries its change. Charts are SVG drawn on
the server (``charts.bars``): they need no script under the strict CSP, print as they
show, and each comes with a table of the same numbers for screen readers.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import asyncpg
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import QueryParameter
from litestar.response import Template
from markupsafe import Markup

from service.api.deps import Db
from service.console.charts import bars
from service.console.printing import PrintSlots, find_chromium, print_pdf
from service.console.report_charts import pareto, pipeline, triage_times, weekly
from service.console.web import Viewer, find_viewer, page, require, template_environment
from service.db.pool import connection
from service.domain import compliance as domain
from service.domain.figure_records import with_records
from service.errors import InvalidInput
from service.schemas.compliance import FigureRecords

__all__ = ["DashboardController", "dashboard_context", "dashboard_pdf"]

DEFAULT_DAYS = 30


def period(since: date | None, through: date | None, *, today: date) -> tuple[datetime, datetime]:
    """``[from 00:00 UTC, the day after 'through' 00:00 UTC)``: both dates are inclusive."""
    through = through or today
    since = since or through - timedelta(days=DEFAULT_DAYS - 1)
    if since > through:
        raise InvalidInput("'from' must not be after 'to'", key="from")
    if since.year < 2:
        raise InvalidInput("the period starts too early", key="from")
    if through >= date.max:
        raise InvalidInput("the period ends too late", key="to")
    start = datetime(since.year, since.month, since.day, tzinfo=UTC)
    end = datetime(through.year, through.month, through.day, tzinfo=UTC) + timedelta(days=1)
    if start - (end - start) < datetime(1, 1, 1, tzinfo=UTC):
        raise InvalidInput("the period is too long for its start", key="from")
    return start, end


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f} %"


def _record_links(records: dict[str, FigureRecords]) -> Callable[[str], Markup]:
    """``rec(key)`` for the template: the links to the records a figure counts. Python
    rather than a Jinja macro: the watch list calls it for each of its models, and a
    macro call cost as much as the rest of the row."""

    def links(key: str) -> Markup:
        found = records.get(key)
        if found is None:
            return Markup("")
        parts = []
        if found.console:
            parts.append(Markup('<a href="{}">records</a>').format(found.console))
        if found.console and found.export:
            parts.append(Markup(" · "))
        if found.export:
            parts.append(
                Markup('<a href="{}" data-export="{}">export</a>').format(found.export, key)
            )
        return Markup("").join(parts)

    return links


async def dashboard_context(
    conn: asyncpg.Connection, *, start: datetime, end: datetime, seconds: float | None = None
) -> dict[str, Any]:
    """Everything the page shows, for the page, its PDF and the command line alike;
    ``seconds``, how long each of the report's statements may take to answer."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        report = with_records(
            await domain.build_report(conn, since=start, until=end, series=True, seconds=seconds)
        )
        # The previous period's whole-registry figures only: the page compares no platform's.
        before = await domain.build_report(
            conn, since=report.previous_from, until=start, breakdown=False, seconds=seconds
        )
    now, then = report.overall, before.overall
    docs = now.prevent.documentation
    return {
        "title": "Compliance dashboard",
        "report": report,
        "now": now,
        "then": then,
        "records": now.records,
        "rec": _record_links(now.records),
        "pct": _percent,
        "since": start.date(),
        "through": (end - timedelta(days=1)).date(),
        "documents": domain.DOCUMENTS,
        "docs_chart": bars(
            "docs-chart",
            [
                (name.replace("_", " "), [docs[name].share, docs[name].download_share])
                for name in domain.DOCUMENTS
            ],
            series=["by count", "by downloads"],
            percent=True,
        ),
        "deadlines_chart": bars(
            "deadlines-chart",
            [
                (outcome.replace("_", " "), [getattr(now.detect.current.deadlines, outcome)])
                for outcome in ("met", "recorded_late", "missed", "pending")
            ],
            series=["serious incidents"],
        ),
        "watch_chart": pareto("watch-chart", now.prevent.watch_list),
        "pipeline_chart": pipeline("pipeline-chart", now.respond.by_status),
        "series": report.series,
        "weekly_chart": weekly("weekly-chart", report.series),
        "triage_chart": triage_times("triage-chart", report.series),
    }


def dashboard_html(context: dict[str, Any]) -> str:
    """The page as printed: the same template, without the navigation."""
    return (
        template_environment()
        .get_template("dashboard.html")
        .render(viewer=None, nav=[], printed=True, **context)
    )


async def dashboard_pdf(
    connect: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]],
    *,
    start: datetime,
    end: datetime,
    chromium_path: str,
    seconds: float,
    slots: PrintSlots | None = None,
    report_seconds: float | None = None,
) -> bytes:
    """The dashboard for the period, printed.

    The figures are read on a connection from ``connect``, given back before Chromium
    starts: a print takes seconds, and a pooled connection held through it is one fewer for
    every other request. With ``slots``, the print waits its turn (at most ``seconds``).
    """
    chromium = find_chromium(chromium_path)
    async with slots.held(wait=seconds) if slots is not None else nullcontext():
        async with connect() as conn:
            context = await dashboard_context(conn, start=start, end=end, seconds=report_seconds)
        html = dashboard_html(context)
        return await print_pdf(html, chromium=chromium, seconds=seconds, path="/console/compliance")


def pdf_name(start: datetime, end: datetime) -> str:
    return f"compliance-{start.date()}-to-{(end - timedelta(days=1)).date()}.pdf"


class DashboardController(Controller):
    path = "/console/compliance"

    @get("/")
    async def dashboard(
        self,
        db: Db,
        viewer: Viewer,
        state: State,
        since: Annotated[date | None, QueryParameter(name="from")] = None,
        through: Annotated[date | None, QueryParameter(name="to")] = None,
    ) -> Template:
        require(viewer, "admin", "regulator")
        start, end = period(since, through, today=datetime.now(UTC).date())
        context = await dashboard_context(
            db, start=start, end=end, seconds=state.settings.report_answer_seconds
        )
        return page("dashboard.html", viewer=viewer, printed=False, **context)

    @get("/pdf")
    async def pdf(
        self,
        request: Request[Any, Any, Any],
        state: State,
        since: Annotated[date | None, QueryParameter(name="from")] = None,
        through: Annotated[date | None, QueryParameter(name="to")] = None,
    ) -> Response[bytes]:
        # No request-long connection (``Db``, ``Viewer``): the page takes one for the session
        # and one for the figures, and holds none while Chromium prints.
        async with connection(state.pool, timeout=state.acquire_timeout) as conn:
            viewer = await find_viewer(request, conn)
        require(viewer, "admin", "regulator")
        start, end = period(since, through, today=datetime.now(UTC).date())
        settings = state.settings
        body = await dashboard_pdf(
            lambda: connection(state.pool, timeout=state.acquire_timeout),
            start=start,
            end=end,
            chromium_path=settings.chromium_path,
            seconds=settings.pdf_timeout_seconds,
            slots=state.print_slots,
            report_seconds=settings.report_answer_seconds,
        )
        return Response(
            body,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{pdf_name(start, end)}"'},
        )
