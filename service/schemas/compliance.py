"""The compliance report regulators pull: figures per platform and for the whole registry."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import msgspec

__all__ = ["ComplianceReport", "Scope"]


class DocumentShare(msgspec.Struct, frozen=True, kw_only=True):
    #: Hostings with this document.
    count: int
    #: ``count`` over all hostings (null when there are none).
    share: float | None
    #: Downloads of hostings with this document over all downloads (null when none).
    download_share: float | None


class WatchedModel(msgspec.Struct, frozen=True, kw_only=True):
    model_id: UUID
    model: str
    downloads: int
    #: This model's share of all downloads in scope.
    share: float
    #: Documents missing on at least one of its hostings in scope.
    gaps: list[str]


class Prevent(msgspec.Struct, frozen=True, kw_only=True):
    #: Hostings (a model on a platform) with status ``hosted``.
    hostings: int
    models: int
    downloads: int
    documentation: dict[str, DocumentShare]
    #: The most-downloaded models that together carry 99% of downloads, most first.
    watch_list: list[WatchedModel]


class Durations(msgspec.Struct, frozen=True, kw_only=True):
    """Seconds from report to the step: median and 90th percentile (null with no data)."""

    p50_seconds: float | None
    p90_seconds: float | None


class Deadlines(msgspec.Struct, frozen=True, kw_only=True):
    """Serious incidents and their EU AI Act Article 73 reporting deadlines."""

    #: Serious incidents, rejected ones included (they have no clock: none of the below).
    serious: int
    #: Initial report sent by the deadline, and recorded by then.
    met: int
    #: Initial report claimed sent by the deadline but recorded after it: not counted as
    #: met, since the claim came only once the deadline had passed.
    recorded_late: int
    missed: int
    pending: int


class IncidentFigures(msgspec.Struct, frozen=True, kw_only=True):
    reported: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    by_severity: dict[str, int]
    deadlines: Deadlines
    time_to_triage: Durations
    time_to_mitigation: Durations
    time_to_close: Durations


class Detect(msgspec.Struct, frozen=True, kw_only=True):
    current: IncidentFigures
    #: The same figures for the previous period of equal length.
    previous: IncidentFigures
    #: current minus previous, for every count and duration (null where either is null).
    change: dict[str, float | None]


class Audits(msgspec.Struct, frozen=True, kw_only=True):
    completed: int
    outcomes: dict[str, int]
    open_findings_by_severity: dict[str, int]


class OverduePlatform(msgspec.Struct, frozen=True, kw_only=True):
    platform: str
    decisions: int
    hostings: int
    oldest_deadline: datetime


class Respond(msgspec.Struct, frozen=True, kw_only=True):
    proposed: int
    by_action: dict[str, int]
    by_status: dict[str, int]
    time_to_execution: Durations
    #: Platforms that have not confirmed a decision past its deadline, as of now.
    overdue_platforms: list[OverduePlatform]


class FigureRecords(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Where the records a figure counts are (see ``service.domain.figure_records``)."""

    #: The export (``/v1/exports/...``, with its filters) returning exactly those records.
    export: str | None = None
    #: The console list showing them (it may show more: it is not bounded by the period).
    console: str | None = None


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    #: The platform's slug, or null for the whole registry.
    platform: str | None
    prevent: Prevent
    detect: Detect
    audits: Audits
    respond: Respond
    #: Each figure's path in this scope (``prevent.documentation.model_card``,
    #: ``detect.current.deadlines.missed``, ...) and where the records it counts are.
    records: dict[str, FigureRecords] = msgspec.field(default_factory=dict)


class ComplianceReport(msgspec.Struct, frozen=True, kw_only=True):
    period_from: datetime
    period_to: datetime
    previous_from: datetime
    generated_at: datetime
    overall: Scope
    platforms: list[Scope]
    #: Incidents per week and the distribution of times to triage, for the whole report's
    #: scope (``service.domain.compliance_series``); the CSV leaves them out.
    series: Series | None = None


class WeekCount(msgspec.Struct, frozen=True, kw_only=True):
    #: The Monday (UTC) the week begins on.
    week: date
    #: Incidents reported that week by category (merged duplicates left out).
    by_category: dict[str, int]


class TriageBucket(msgspec.Struct, frozen=True, kw_only=True):
    #: Seconds from report to triage: at least ``from_seconds``, under ``to_seconds``
    #: (null: no upper bound).
    from_seconds: int
    to_seconds: int | None
    incidents: int


class Series(msgspec.Struct, frozen=True, kw_only=True):
    """The report's incidents over time, for charts: the same incidents as ``detect``."""

    #: Every week the period touches, in order, empty weeks included.
    incidents_per_week: list[WeekCount]
    #: Triaged incidents by how long triage took.
    time_to_triage: list[TriageBucket]
