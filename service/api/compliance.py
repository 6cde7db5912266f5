"""``/v1/reports/compliance``: the regulators' report, as JSON, CSV or PDF."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, QueryParameter

from service.api.auth import allow
from service.api.negotiation import negotiate
from service.api.openapi_extras import also_served_as
from service.api.problems import problem_responses
from service.console.dashboard import dashboard_pdf, pdf_name
from service.db.pool import connection
from service.domain import compliance as domain
from service.domain.figure_records import with_records
from service.domain.periods import report_period
from service.errors import InvalidInput
from service.schemas.compliance import ComplianceReport

__all__ = ["ComplianceController"]

# Litestar adds "; charset=utf-8" to text media types itself.
_MEDIA = {"csv": "text/csv", "pdf": "application/pdf"}


ReportFormat = Literal["json", "csv", "pdf"]
_OFFERS: dict[str, ReportFormat] = {
    "application/json": "json",
    "text/csv": "csv",
    "application/pdf": "pdf",
}


class ComplianceController(Controller):
    path = "/v1/reports/compliance"
    tags = ["reports"]
    guards = [allow("admin", "regulator")]

    @get(
        operation_id="getComplianceReport",
        operation_class=also_served_as(_MEDIA["csv"], _MEDIA["pdf"]),
        summary="The compliance report for a period, per platform and overall",
        description=(
            "Documentation coverage of hosted models (also weighted by downloads) and the "
            "watch list of the models carrying 99% of downloads; incidents by status, "
            "category and severity, serious incidents against their Article 73 deadlines, "
            "median and 90th-percentile times to triage, mitigate and close, and the change "
            "against the previous period of equal length; audits, outcomes and open "
            "findings; decisions by action, time from proposal to execution, and platforms "
            "overdue on confirmation; `series` gives incidents per week by category and the "
            "distribution of times to triage. Every record counts as the ledger held it at "
            "`to` (its newest state recorded before then), so a past period's report does "
            "not change; a period outside the calendar is a 422. `from`/`to` default to the "
            "last 30 days. Each scope's `records` names, per figure, the export "
            "(`/v1/exports/...` with its filters) that returns exactly the records it counts, "
            "and the console list. "
            "`format=csv` (or `Accept: text/csv`) gives one row per figure (a text cell "
            "that begins like a spreadsheet formula gets a leading `'`); `format=pdf` (or "
            "`Accept: application/pdf`) the console's compliance dashboard for whole UTC "
            "days covering the period, printed by headless Chromium (503 when the service "
            "has none; see REGISTRY_CHROMIUM_PATH); `platform` does not narrow the PDF, "
            "which shows every platform."
        ),
        responses={
            200: ResponseSpec(
                data_container=ComplianceReport,
                description="The report (JSON; CSV and PDF renderings on request).",
                generate_examples=False,
            ),
            **problem_responses(400, 401, 403, 404, 422, 503),
        },
    )
    async def report(
        self,
        request: Request[Any, Any, Any],
        state: State,
        since: Annotated[
            datetime | None, QueryParameter(name="from", description="Period start (inclusive).")
        ] = None,
        until: Annotated[
            datetime | None, QueryParameter(name="to", description="Period end (exclusive).")
        ] = None,
        platform: Annotated[str | None, QueryParameter(max_length=63)] = None,
        format: FromQuery[ReportFormat | None] = None,
    ) -> Response[Any]:
        period = report_period(since, until)
        since, until = period.since, period.until
        # Anything not on offer gets the JSON report rather than a 406.
        fmt = negotiate(request, format, offers=_OFFERS, default="json")
        if fmt == "pdf":
            if platform is not None:
                raise InvalidInput(
                    "the PDF shows every platform: leave out 'platform'", key="platform"
                )
            start = datetime.combine(since.astimezone(UTC).date(), time(), tzinfo=UTC)
            last = (until - timedelta(microseconds=1)).astimezone(UTC).date()
            end = datetime.combine(last, time(), tzinfo=UTC) + timedelta(days=1)
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
                media_type=_MEDIA["pdf"],
                headers={"Content-Disposition": f'attachment; filename="{pdf_name(start, end)}"'},
            )
        # One snapshot for every figure in the report.
        async with (
            connection(state.pool, timeout=state.acquire_timeout) as db,
            db.transaction(isolation="repeatable_read", readonly=True),
        ):
            report = await domain.build_report(
                db,
                since=since,
                until=until,
                platform=platform,
                series=fmt != "csv",
                seconds=state.settings.report_answer_seconds,
            )
        if fmt == "csv":
            return Response(domain.render_csv(report), media_type=_MEDIA["csv"])
        return Response(with_records(report))
