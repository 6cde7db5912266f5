"""Server-drawn SVG for the model page: the lineage graph and the downloads chart.

Only layout lives here (coordinates from records the domain returned); every chart is
also given to screen readers as text by the template that shows it.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from service.domain.history import DownloadPoint
from service.schemas.models import Lineage

__all__ = ["BarChart", "DownloadsChart", "LineageGraph", "bars", "downloads_chart", "lineage_graph"]

BOX_W, BOX_H, ROW_H, WIDTH = 220, 40, 80, 760


class Node(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    x: float
    y: float
    current: bool


class Edge(msgspec.Struct, frozen=True, kw_only=True):
    x1: float
    y1: float
    x2: float
    y2: float
    label: str


class LineageGraph(msgspec.Struct, frozen=True, kw_only=True):
    width: int
    height: int
    box_w: int
    box_h: int
    nodes: list[Node]
    edges: list[Edge]


def lineage_graph(lineage: Lineage) -> LineageGraph:
    """Ancestors above the model (root at the top), descendants below, one row per depth."""
    rows: dict[int, list[tuple[str, str, str | None, str | None]]] = {}
    for a in lineage.ancestors:
        rows.setdefault(-a.depth, []).append(
            (str(a.id), a.name, str(a.base_model_id) if a.base_model_id else None, a.derivation)
        )
    m = lineage.model
    rows[0] = [(str(m.id), m.name, str(m.base_model_id) if m.base_model_id else None, m.derivation)]
    for d in lineage.descendants:
        rows.setdefault(d.depth, []).append(
            (str(d.id), d.name, str(d.base_model_id) if d.base_model_id else None, d.derivation)
        )
    order = sorted(rows)
    nodes: dict[str, Node] = {}
    parents: list[tuple[str, str | None, str | None]] = []
    for r, depth in enumerate(order):
        members = rows[depth]
        for i, (node_id, name, base, derivation) in enumerate(members):
            x = (i + 1) * WIDTH / (len(members) + 1) - BOX_W / 2
            nodes[node_id] = Node(
                id=node_id, name=name, x=x, y=10 + r * ROW_H, current=node_id == str(m.id)
            )
            parents.append((node_id, base, derivation))
    edges = []
    for child, base, derivation in parents:
        if base is None or base not in nodes:
            continue
        p, c = nodes[base], nodes[child]
        edges.append(
            Edge(
                x1=p.x + BOX_W / 2,
                y1=p.y + BOX_H,
                x2=c.x + BOX_W / 2,
                y2=c.y,
                label=(derivation or "derived").replace("_", " "),
            )
        )
    return LineageGraph(
        width=WIDTH,
        height=20 + len(order) * ROW_H - (ROW_H - BOX_H),
        box_w=BOX_W,
        box_h=BOX_H,
        nodes=list(nodes.values()),
        edges=edges,
    )


class Point(msgspec.Struct, frozen=True, kw_only=True):
    x: float
    y: float
    at: datetime
    total: int


class DownloadsChart(msgspec.Struct, frozen=True, kw_only=True):
    width: int
    height: int
    left: int
    bottom: int
    points: list[Point]
    polyline: str
    max_total: int
    first: datetime | None
    last: datetime | None


def downloads_chart(series: list[DownloadPoint]) -> DownloadsChart:
    width, height, left, right, top, bottom = 760, 220, 70, 20, 10, 30
    if not series:
        return DownloadsChart(
            width=width,
            height=height,
            left=left,
            bottom=bottom,
            points=[],
            polyline="",
            max_total=0,
            first=None,
            last=None,
        )
    start, end = series[0].at.timestamp(), series[-1].at.timestamp()
    span = max(end - start, 1e-3)
    peak = max(max(p.total for p in series), 1)
    points = [
        Point(
            x=left + (p.at.timestamp() - start) / span * (width - left - right),
            y=top + (1 - p.total / peak) * (height - top - bottom),
            at=p.at,
            total=p.total,
        )
        for p in series
    ]
    return DownloadsChart(
        width=width,
        height=height,
        left=left,
        bottom=bottom,
        points=points,
        polyline=" ".join(f"{p.x:.1f},{p.y:.1f}" for p in points),
        max_total=peak,
        first=series[0].at,
        last=series[-1].at,
    )


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    series: int
    x: float
    y: float
    width: float
    height: float
    value: float | None
    text: str


class BarRow(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    y: float
    bars: list[Bar]


class BarChart(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    width: int
    height: int
    label_w: int
    series: list[str]
    rows: list[BarRow]


def _bar_text(value: float | None, percent: bool) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.1f} %" if percent else f"{value:g}"


def bars(
    chart_id: str,
    rows: list[tuple[str, list[float | None]]],
    *,
    series: list[str],
    percent: bool = False,
) -> BarChart:
    """Horizontal bars, one group per row and one bar per series, scaled to the largest
    value (to 100 % for shares)."""
    label_w, plot_w, bar_h, gap = 170, 440, 18, 14
    values = [v for _, vs in rows for v in vs if v is not None]
    top = 1.0 if percent else max([*values, 1.0])
    laid: list[BarRow] = []
    y = 8.0
    for label, vs in rows:
        group: list[Bar] = []
        for i, v in enumerate(vs):
            width = 0.0 if v is None else plot_w * v / top
            group.append(
                Bar(
                    series=i,
                    x=label_w,
                    y=y + i * bar_h,
                    width=round(width, 2),
                    height=bar_h - 3,
                    value=v,
                    text=_bar_text(v, percent),
                )
            )
        laid.append(BarRow(label=label, y=y + len(vs) * bar_h / 2, bars=group))
        y += len(vs) * bar_h + gap
    return BarChart(
        id=chart_id,
        width=label_w + plot_w + 80,
        height=int(y),
        label_w=label_w,
        series=series,
        rows=laid,
    )
