"""``/v1/reports/compliance``: the regulators' report, as JSON, CSV or HTML."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, QueryParameter

from service.api.auth import allow
from service.api.deps import Db
from service.api.negotiation import negotiate
from service.api.openapi_extras import also_served_as
from service.api.problems import problem_responses
from service.domain import compliance as domain
from service.domain.periods import report_period
from service.middleware import content_security_policy
from service.schemas.compliance import ComplianceReport

__all__ = ["ComplianceController"]

# Litestar adds "; charset=utf-8" to text media types itself.
_MEDIA = {"csv": "text/csv", "html": "text/html"}


ReportFormat = Literal["json", "csv", "html"]
_OFFERS: dict[str, ReportFormat] = {
    "application/json": "json",
    "text/csv": "csv",
    "text/html": "html",
}


#: The page policy, admitting the page's own inline stylesheet by its hash.
_HTML_POLICY = content_security_policy(style_hashes=(domain.STYLE_HASH,))


class ComplianceController(Controller):
    path = "/v1/reports/compliance"
    tags = ["reports"]
    guards = [allow("admin", "regulator")]

    @get(
        operation_id="getComplianceReport",
        operation_class=also_served_as(_MEDIA["csv"], _MEDIA["html"]),
        summary="The compliance report for a period, per platform and overall",
        description=(
            "Documentation coverage of hosted models (also weighted by downloads) and the "
            "watch list of the models carrying 99% of downloads; incidents by status, "
            "category and severity, serious incidents against their Article 73 deadlines, "
            "median and 90th-percentile times to triage, mitigate and close, and the change "
            "against the previous period of equal length; audits, outcomes and open "
            "findings; decisions by action, time from proposal to execution, and platforms "
            "overdue on confirmation. Every record counts as the ledger held it at `to` "
            "(its newest state recorded before then), so a past period's report does not "
            "change; a period outside the calendar is a 422. "
            "`from`/`to` default to the last 30 days. "
            "`format=csv` (or `Accept: text/csv`) gives one row per figure (a text cell "
            "that begins like a spreadsheet formula gets a leading `'`); `format=html` "
            "a printable page."
        ),
        responses={
            200: ResponseSpec(
                data_container=ComplianceReport,
                description="The report (JSON; CSV and HTML renderings on request).",
                generate_examples=False,
            ),
            **problem_responses(400, 401, 403, 404, 422),
        },
    )
    async def report(
        self,
        request: Request[Any, Any, Any],
        db: Db,
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
        # One snapshot for every figure in the report.
        async with db.transaction(isolation="repeatable_read", readonly=True):
            report = await domain.build_report(
                db, since=period.since, until=period.until, platform=platform
            )
        # Anything not on offer gets the JSON report rather than a 406.
        fmt = negotiate(request, format, offers=_OFFERS, default="json")
        if fmt == "csv":
            return Response(domain.render_csv(report), media_type=_MEDIA["csv"])
        if fmt == "html":
            return Response(
                domain.render_html(report),
                media_type=_MEDIA["html"],
                headers={"Content-Security-Policy": _HTML_POLICY},
            )
        return Response(report)
