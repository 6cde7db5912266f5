"""Server-drawn SVG for the compliance dashboard beyond plain bars: the watch list as a
Pareto curve, and the decision pipeline.

Layout only: every value comes from the compliance report, and the template that shows a
chart also gives its numbers as a table.
"""

from __future__ import annotations

import msgspec

from service.console.charts import BarChart, bars
from service.schemas.compliance import Series, WatchedModel

__all__ = ["ParetoChart", "StackedChart", "pareto", "pipeline", "triage_times", "weekly"]

#: Decision statuses in the order a decision moves through them.
PIPELINE = ("proposed", "approved", "notified", "executed", "withdrawn")


class ParetoPoint(msgspec.Struct, frozen=True, kw_only=True):
    rank: int
    model: str
    x: float
    y: float
    bar_y: float
    bar_h: float
    share: float
    cumulative: float
    gaps: list[str]


class ParetoChart(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    width: int
    height: int
    left: int
    top: int
    plot_w: int
    plot_h: int
    bar_w: float
    points: list[ParetoPoint]
    polyline: str


def pareto(chart_id: str, watch_list: list[WatchedModel]) -> ParetoChart:
    """Each watched model's share of downloads as a bar, most first, with the running total
    as a line up to 99 %; a model with a documentation gap gets a marked bar."""
    width, height, left, right, top, bottom = 640, 240, 50, 20, 10, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(watch_list), 1)
    points: list[ParetoPoint] = []
    running = 0.0
    for rank, m in enumerate(watch_list, start=1):
        running += m.share
        x = left + (rank - 0.5) * step
        points.append(
            ParetoPoint(
                rank=rank,
                model=m.model,
                x=round(x, 2),
                y=round(top + (1 - min(running, 1.0)) * plot_h, 2),
                bar_y=round(top + (1 - m.share) * plot_h, 2),
                bar_h=round(m.share * plot_h, 2),
                share=m.share,
                cumulative=round(running, 6),
                gaps=m.gaps,
            )
        )
    return ParetoChart(
        id=chart_id,
        width=width,
        height=height,
        left=left,
        top=top,
        plot_w=plot_w,
        plot_h=plot_h,
        bar_w=round(min(step * 0.7, 40), 2),
        points=points,
        polyline=" ".join(f"{p.x},{p.y}" for p in points),
    )


def pipeline(chart_id: str, by_status: dict[str, int]) -> BarChart:
    """Decisions proposed in the period by where they stand now, in pipeline order."""
    order = [s for s in PIPELINE if s in by_status] + sorted(set(by_status) - set(PIPELINE))
    rows: list[tuple[str, list[float | None]]] = [
        (status, [float(by_status[status])]) for status in order
    ]
    return bars(chart_id, rows, series=["decisions"])


def _span(seconds: int | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds // 86_400} d" if seconds >= 86_400 else f"{seconds // 3600} h"


def bucket_label(low: int, high: int | None) -> str:
    """``1 h to 4 h``, ``7 d or more``."""
    if high is None:
        return f"{_span(low)} or more"
    if low == 0:
        return f"under {_span(high)}"
    return f"{_span(low)} to {_span(high)}"


def triage_times(chart_id: str, series: Series | None) -> BarChart:
    """Triaged incidents by how long triage took."""
    buckets = series.time_to_triage if series is not None else []
    rows: list[tuple[str, list[float | None]]] = [
        (bucket_label(b.from_seconds, b.to_seconds), [float(b.incidents)]) for b in buckets
    ]
    return bars(chart_id, rows, series=["incidents"])


class Segment(msgspec.Struct, frozen=True, kw_only=True):
    series: int
    category: str
    y: float
    height: float
    value: int


class Column(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    x: float
    total: int
    segments: list[Segment]


class StackedChart(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    width: int
    height: int
    left: int
    top: int
    plot_h: int
    bar_w: float
    peak: int
    categories: list[str]
    columns: list[Column]


def weekly(chart_id: str, series: Series | None) -> StackedChart:
    """Incidents per week as columns, stacked by category (colour per category)."""
    weeks = series.incidents_per_week if series is not None else []
    categories = sorted({c for w in weeks for c in w.by_category})
    width, height, left, right, top, bottom = 640, 220, 40, 10, 10, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([sum(w.by_category.values()) for w in weeks] + [1])
    step = plot_w / max(len(weeks), 1)
    columns = []
    for i, w in enumerate(weeks):
        base = float(top + plot_h)
        segments = []
        for c in categories:
            n = w.by_category.get(c, 0)
            if not n:
                continue
            h = n / peak * plot_h
            base -= h
            segments.append(
                Segment(
                    series=categories.index(c),
                    category=c,
                    y=round(base, 2),
                    height=round(h, 2),
                    value=n,
                )
            )
        columns.append(
            Column(
                label=w.week.strftime("%d %b"),
                x=round(left + i * step + step * 0.15, 2),
                total=sum(w.by_category.values()),
                segments=segments,
            )
        )
    return StackedChart(
        id=chart_id,
        width=width,
        height=height,
        left=left,
        top=top,
        plot_h=plot_h,
        bar_w=round(min(step * 0.7, 48), 2),
        peak=peak,
        categories=categories,
        columns=columns,
    )
