"""``/console/compliance``: the compliance dashboard for regulators and admins.

Its figures come from ``service.domain.compliance.build_report``, the function behind
``GET /v1/reports/compliance``, run twice (the period and the one of equal length before
it) in one read-only snapshot, so each figure carries its change. Charts are SVG drawn on
the server (``charts.bars``): they need no script under the strict CSP, print as they
show, and each comes with a table of the same numbers for screen readers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter
from litestar.response import Template

from service.api.deps import Db
from service.console.charts import bars
from service.console.web import Viewer, page, require
from service.domain import compliance as domain
from service.errors import InvalidInput

__all__ = ["DashboardController"]

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


class DashboardController(Controller):
    path = "/console/compliance"

    @get("/")
    async def dashboard(
        self,
        db: Db,
        viewer: Viewer,
        since: Annotated[date | None, QueryParameter(name="from")] = None,
        through: Annotated[date | None, QueryParameter(name="to")] = None,
    ) -> Template:
        require(viewer, "admin", "regulator")
        start, end = period(since, through, today=datetime.now(UTC).date())
        async with db.transaction(isolation="repeatable_read", readonly=True):
            report = await domain.build_report(db, since=start, until=end)
            before = await domain.build_report(db, since=report.previous_from, until=start)
        now, then = report.overall, before.overall
        docs = now.prevent.documentation
        return page(
            "dashboard.html",
            viewer=viewer,
            title="Compliance dashboard",
            report=report,
            now=now,
            then=then,
            since=start.date(),
            through=(end - timedelta(days=1)).date(),
            documents=domain.DOCUMENTS,
            docs_chart=bars(
                "docs-chart",
                [
                    (name.replace("_", " "), [docs[name].share, docs[name].download_share])
                    for name in domain.DOCUMENTS
                ],
                series=["by count", "by downloads"],
                percent=True,
            ),
            deadlines_chart=bars(
                "deadlines-chart",
                [
                    (outcome.replace("_", " "), [getattr(now.detect.current.deadlines, outcome)])
                    for outcome in ("met", "recorded_late", "missed", "pending")
                ],
                series=["serious incidents"],
            ),
        )
