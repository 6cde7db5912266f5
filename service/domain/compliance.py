"""The compliance report: what regulators track, computed in SQL from the registry's data.

The figures follow the mission's measurable targets: documentation coverage of hosted
models (also weighted by downloads, since a tiny share of models carries almost all of
them, and the watch list of the models carrying 99%), incidents and their handling times,
serious incidents against their Article 73 deadlines, audits and open findings, and
decommissioning decisions with platforms overdue on confirmation. See
``service.db.queries.compliance`` for exactly what each figure counts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import compliance as q
from service.db.queries.compliance_series import series_rows
from service.domain.compliance_series import series_from
from service.domain.periods import report_period
from service.domain.platforms import get_platform
from service.errors import NotFound
from service.schemas.compliance import (
    Audits,
    ComplianceReport,
    Deadlines,
    Detect,
    DocumentShare,
    Durations,
    IncidentFigures,
    OverduePlatform,
    Prevent,
    Respond,
    Scope,
    WatchedModel,
)

__all__ = ["build_report", "render_csv"]

DOCUMENTS = ("model_card", "safety_testing", "risk_analysis", "use_guidance")


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 6)


_NO_INCIDENTS = IncidentFigures(
    reported=0,
    by_status={},
    by_category={},
    by_severity={},
    deadlines=Deadlines(serious=0, met=0, recorded_late=0, missed=0, pending=0),
    time_to_triage=Durations(p50_seconds=None, p90_seconds=None),
    time_to_mitigation=Durations(p50_seconds=None, p90_seconds=None),
    time_to_close=Durations(p50_seconds=None, p90_seconds=None),
)


def _prevent(row: asyncpg.Record | None) -> Prevent:
    if row is None:  # nothing hosted in this scope
        documentation = {
            doc: DocumentShare(count=0, share=None, download_share=None) for doc in DOCUMENTS
        }
        return Prevent(
            hostings=0, models=0, downloads=0, documentation=documentation, watch_list=[]
        )
    return Prevent(
        hostings=row["hostings"],
        models=row["models"],
        downloads=row["downloads"],
        documentation={
            doc: DocumentShare(
                count=row[doc],
                share=_ratio(row[doc], row["hostings"]),
                download_share=_ratio(row[f"{doc}_downloads"], row["downloads"]),
            )
            for doc in DOCUMENTS
        },
        watch_list=_watch_list(row),
    )


def _watch_list(row: asyncpg.Record) -> list[WatchedModel]:
    """The watch list from its columns (arrays in rank order; none without downloads)."""
    if row["watch_ids"] is None:
        return []
    return [
        WatchedModel(
            model_id=model_id,
            model=name,
            downloads=downloads,
            share=share,
            gaps=gaps.split(",") if gaps else [],
        )
        for model_id, name, downloads, share, gaps in zip(
            row["watch_ids"],
            row["watch_names"],
            row["watch_downloads"],
            row["watch_shares"],
            row["watch_gaps"],
            strict=True,
        )
    ]


def _durations(row: asyncpg.Record, name: str) -> Durations:
    return Durations(p50_seconds=row[f"{name}_p50"], p90_seconds=row[f"{name}_p90"])


def _incidents(row: asyncpg.Record | None) -> IncidentFigures:
    if row is None:  # no incident in this scope and period
        return _NO_INCIDENTS
    return IncidentFigures(
        reported=row["reported"],
        by_status=row["by_status"],
        by_category=row["by_category"],
        by_severity=row["by_severity"],
        deadlines=Deadlines(
            serious=row["serious"],
            met=row["deadline_met"],
            recorded_late=row["deadline_recorded_late"],
            missed=row["deadline_missed"],
            pending=row["deadline_pending"],
        ),
        time_to_triage=_durations(row, "triage"),
        time_to_mitigation=_durations(row, "mitigate"),
        time_to_close=_durations(row, "close"),
    )


def _flat_numbers(figures: IncidentFigures) -> dict[str, float | None]:
    out: dict[str, float | None] = {
        "reported": figures.reported,
        "serious": figures.deadlines.serious,
        "deadlines_missed": figures.deadlines.missed,
    }
    for name in ("time_to_triage", "time_to_mitigation", "time_to_close"):
        durations: Durations = getattr(figures, name)
        out[f"{name}_p50_seconds"] = durations.p50_seconds
        out[f"{name}_p90_seconds"] = durations.p90_seconds
    return out


def _detect(current: IncidentFigures, previous: IncidentFigures) -> Detect:
    now_figures, before = _flat_numbers(current), _flat_numbers(previous)
    change = {
        key: None
        if now_figures[key] is None or before[key] is None
        else round(float(now_figures[key]) - float(before[key]), 6)  # type: ignore[arg-type]
        for key in now_figures
    }
    return Detect(current=current, previous=previous, change=change)


class _Figures(msgspec.Struct, frozen=True, kw_only=True):
    """Every query's rows for the report, by scope (``None``: the whole report)."""

    prevent: dict[UUID | None, asyncpg.Record]
    incidents: dict[tuple[UUID | None, datetime], asyncpg.Record]
    audits: dict[UUID | None, asyncpg.Record]
    decisions: dict[UUID | None, asyncpg.Record]
    overdue: dict[UUID | None, list[asyncpg.Record]]


def _grouped(rows: list[asyncpg.Record]) -> dict[UUID | None, list[asyncpg.Record]]:
    out: dict[UUID | None, list[asyncpg.Record]] = {}
    for row in rows:
        out.setdefault(row["scope"], []).append(row)
    return out


async def _figures(
    conn: asyncpg.Connection,
    *,
    since: datetime,
    until: datetime,
    previous_from: datetime,
    platform_id: UUID | None,
    breakdown: list[UUID],
    seconds: float | None,
) -> _Figures:
    """The whole report's figures and every platform's of ``breakdown``: one query per
    kind of figure, each reading every record once, however many platforms there are."""
    window: q.Window = (since, until, platform_id)
    prevent = await q.select_prevent(
        conn, until=until, platform_id=platform_id, breakdown=breakdown, seconds=seconds
    )
    incidents = await q.select_incidents(
        conn,
        previous_from=previous_from,
        since=since,
        until=until,
        platform_id=platform_id,
        breakdown=breakdown,
        seconds=seconds,
    )
    audits = await q.select_audits(conn, window, breakdown=breakdown, seconds=seconds)
    decisions = await q.select_decisions(conn, window, breakdown=breakdown, seconds=seconds)
    overdue = await q.select_overdue_platforms(
        conn, until=until, platform_id=platform_id, breakdown=breakdown, seconds=seconds
    )
    return _Figures(
        prevent={r["scope"]: r for r in prevent},
        incidents={(r["scope"], r["period_to"]): r for r in incidents},
        audits={r["scope"]: r for r in audits},
        decisions={r["scope"]: r for r in decisions},
        overdue=_grouped(overdue),
    )


def _scope(
    figures: _Figures,
    *,
    key: UUID | None,
    platform: str | None,
    since: datetime,
    until: datetime,
) -> Scope:
    audits, decisions = figures.audits[key], figures.decisions[key]
    return Scope(
        platform=platform,
        prevent=_prevent(figures.prevent.get(key)),
        detect=_detect(
            _incidents(figures.incidents.get((key, until))),
            _incidents(figures.incidents.get((key, since))),
        ),
        audits=Audits(
            completed=audits["completed"],
            outcomes=audits["outcomes"],
            open_findings_by_severity=audits["open_findings_by_severity"],
        ),
        respond=Respond(
            proposed=decisions["proposed"],
            by_action=decisions["by_action"],
            by_status=decisions["by_status"],
            time_to_execution=_durations(decisions, "to_execution"),
            overdue_platforms=[
                msgspec.convert(
                    {k: r[k] for k in ("platform", "decisions", "hostings", "oldest_deadline")},
                    OverduePlatform,
                )
                for r in figures.overdue.get(key, [])
            ],
        ),
    )


async def build_report(
    conn: asyncpg.Connection,
    *,
    since: datetime,
    until: datetime,
    platform: str | None = None,
    breakdown: bool = True,
    series: bool = False,
    seconds: float | None = None,
) -> ComplianceReport:
    """The report for [since, until), for one platform (by slug) or the whole registry with
    a breakdown per platform (unless ``breakdown`` is false: the whole registry's figures
    only), with its series when ``series`` is true (counted in the same read of the
    incidents). Run it in one REPEATABLE READ transaction for a consistent picture.
    ``seconds``: how long each of its statements may take to answer (the settings'
    ``report_answer_seconds``); None keeps the pool's answer timeout."""
    # Every path (API, snapshot, console) gets the same checks on the period, as a 422.
    period = report_period(since, until)
    since, until, previous_from = period.since, period.until, period.previous_from
    platform_id = None
    if platform is not None:
        try:
            platform_id = (await get_platform(conn, slug=platform)).id
        except NotFound as exc:
            raise NotFound(f"no platform {platform!r}") from exc
    in_scope = []
    if platform_id is None and breakdown:
        in_scope = await q.select_platforms_in_scope(conn, (since, until, None), seconds=seconds)
    figures = await _figures(
        conn,
        since=since,
        until=until,
        previous_from=previous_from,
        platform_id=platform_id,
        breakdown=[row["id"] for row in in_scope],
        seconds=seconds,
    )
    bounds = {"since": since, "until": until}
    return ComplianceReport(
        period_from=since,
        period_to=until,
        previous_from=previous_from,
        generated_at=datetime.now(UTC),
        overall=_scope(figures, key=None, platform=platform, **bounds),
        platforms=[
            _scope(figures, key=row["id"], platform=row["slug"], **bounds) for row in in_scope
        ],
        series=series_from(series_rows(figures.incidents.get((None, until))), **bounds)
        if series
        else None,
    )


# -- renderings -------------------------------------------------------------------------------


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(f"{prefix}.{key}" if prefix else str(key), inner)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _flatten(f"{prefix}[{index}]", inner)
    else:
        yield prefix, value


def _rows(report: ComplianceReport) -> Iterator[tuple[str, str, Any]]:
    for scope in [report.overall, *report.platforms]:
        label = scope.platform or "(all)"
        data = msgspec.to_builtins(scope)
        data.pop("platform")
        for metric, value in _flatten("", data):
            yield label, metric, value


#: A text cell beginning with one of these is run as a formula by spreadsheets (OWASP).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell: text that begins like a formula gets a leading ``'``; numbers stay."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def render_csv(report: ComplianceReport) -> bytes:
    """One row per figure: scope (a platform, or ``(all)``), metric path, value."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["scope", "metric", "value"])
    writer.writerow(["(all)", "period_from", report.period_from.isoformat()])
    writer.writerow(["(all)", "period_to", report.period_to.isoformat()])
    for row in _rows(report):
        writer.writerow([_cell(v) for v in row])
    return out.getvalue().encode()
