"""Server-drawn SVG for the compliance dashboard beyond plain bars: the watch list as a
Pareto curve, and the decision pipeline.

Layout only: every value comes from the compliance report, and the template that shows a
chart also gives its numbers as a table.
"""

from __future__ import annotations

import msgspec

from service.console.charts import BarChart, bars
from service.schemas.compliance import WatchedModel

__all__ = ["ParetoChart", "pareto", "pipeline"]

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
        bar_w=round(step * 0.7, 2),
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
