"""Where the records behind each compliance figure are: the export that returns exactly
them, and the console list that shows them.

One place for both the report's JSON (``GET /v1/reports/compliance``, each scope's
``records``) and the dashboard's links. An export URL uses only the export's own filters
(``/v1/exports/{dataset}``: ``from``/``to``/``platform`` and the narrowing filters
hostings, incidents and decisions take), and returns the rows the figure counts, as of the
moment it runs. A console list may show more (its lists are not bounded by the period), and
some figures have none.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

import msgspec

from service.schemas.compliance import ComplianceReport, FigureRecords, Scope

__all__ = ["records_for", "with_records"]

DOCUMENTS = ("model_card", "safety_testing", "risk_analysis", "use_guidance")
ARTICLE73 = ("met", "recorded_late", "missed", "pending")


def _url(path: str, **params: str | None) -> str:
    query = urlencode({k.rstrip("_"): v for k, v in params.items() if v is not None})
    return f"{path}?{query}" if query else path


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def records_for(scope: Scope, *, since: datetime, until: datetime) -> dict[str, FigureRecords]:
    """Each figure of ``scope`` (by its path in the report) and where its records are."""
    platform = scope.platform
    period = {"from_": _iso(since), "to": _iso(until), "platform": platform}
    out: dict[str, FigureRecords] = {}

    def hostings(**narrow: str | None) -> FigureRecords:
        return FigureRecords(
            export=_url(
                "/v1/exports/hostings", status="hosted", to=_iso(until), platform=platform, **narrow
            ),
            console=_url("/console/hostings", platform=platform, model=narrow.get("model")),
        )

    whole = hostings()
    for name in ("hostings", "models", "downloads"):
        out[f"prevent.{name}"] = whole
    for doc in DOCUMENTS:
        out[f"prevent.documentation.{doc}"] = hostings(documented=doc)
    # The watch list may hold thousands of models: its links share one prefix, and model
    # ids and document names need no escaping, so they are appended (in urlencode's order)
    # rather than each link encoded anew.
    watched_at = _url("/v1/exports/hostings", status="hosted", to=_iso(until), platform=platform)
    for watched in scope.prevent.watch_list:
        base = f"prevent.watch_list.{watched.model}"
        export = f"{watched_at}&model_id={watched.model_id}"
        page = f"/console/models/{watched.model_id}"
        out[base] = FigureRecords(export=export, console=page)
        for gap in watched.gaps:
            out[f"{base}.gaps.{gap}"] = FigureRecords(
                export=f"{export}&undocumented={gap}", console=page
            )

    def incidents(console: dict[str, str | None], **narrow: str | None) -> FigureRecords:
        return FigureRecords(
            export=_url("/v1/exports/incidents", **period, **narrow),
            console=_url("/console/incidents", platform=platform, **console),
        )

    current = scope.detect.current
    counted = incidents({}, duplicates="false")
    out["detect.current.reported"] = counted
    for step in ("time_to_triage", "time_to_mitigation", "time_to_close"):
        out[f"detect.current.{step}"] = counted
    for category in current.by_category:
        out[f"detect.current.by_category.{category}"] = incidents(
            {"category": category}, duplicates="false", category=category
        )
    for status in current.by_status:
        out[f"detect.current.by_status.{status}"] = incidents({"status": status}, status=status)
    out["detect.current.deadlines.serious"] = incidents(
        {"serious": "true"}, duplicates="false", serious="true"
    )
    for outcome in ARTICLE73:
        console = {"serious": "true", "overdue": "true" if outcome == "missed" else None}
        out[f"detect.current.deadlines.{outcome}"] = incidents(console, article73=outcome)

    def decisions(**narrow: str | None) -> FigureRecords:
        return FigureRecords(export=_url("/v1/exports/decisions", **period, **narrow))

    out["respond.proposed"] = decisions()
    for action in scope.respond.by_action:
        out[f"respond.by_action.{action}"] = decisions(action=action)
    for status in scope.respond.by_status:
        out[f"respond.by_status.{status}"] = decisions(status=status)
    for overdue in scope.respond.overdue_platforms:
        out[f"respond.overdue_platforms.{overdue.platform}"] = FigureRecords(
            console=f"/console/platforms/{overdue.platform}"
        )
    return out


def with_records(report: ComplianceReport) -> ComplianceReport:
    """The report with each scope's ``records`` filled in."""
    since, until = report.period_from, report.period_to

    def fill(scope: Scope) -> Scope:
        return msgspec.structs.replace(scope, records=records_for(scope, since=since, until=until))

    return msgspec.structs.replace(
        report,
        overall=fill(report.overall),
        platforms=[fill(p) for p in report.platforms],
    )
