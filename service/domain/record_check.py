"""Checking exported records offline against the events exported beside them.

A directory holding ``events.<jsonl|csv>`` and any of ``models``, ``hostings``,
``incidents``, ``audits``, ``decisions`` (as the export endpoint, the ``export`` command
or a bundle writes them) is checked row by row: each record must equal the state carried
by the newest event of its subject in the events file (:mod:`service.domain.reconciliation`
says which columns, and how). Whether the events themselves are the sealed ones is the
ledger verifier's check (``verify --events``), which ``verify --records`` runs first.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from service.domain.reconciliation import (
    DATASETS,
    Divergence,
    compare_row,
    latest_states,
    parse_csv_cell,
)

__all__ = ["RecordsReport", "check_records", "events_file", "read_rows"]


class RecordsReport(msgspec.Struct, kw_only=True):
    """What a check of exported records found."""

    #: dataset -> rows compared with their newest event.
    checked: dict[str, int] = msgspec.field(default_factory=dict)
    #: Rows left unchecked, with why (their subject changed after the export's cut).
    unchecked: int = 0
    divergences: list[Divergence] = msgspec.field(default_factory=list)
    problems: list[str] = msgspec.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.divergences and not self.problems


def _file(directory: Path, dataset: str) -> Path | None:
    for ext in ("jsonl", "csv"):
        path = directory / f"{dataset}.{ext}"
        if path.is_file():
            return path
    return None


def events_file(directory: Path) -> Path | None:
    """The events export in ``directory``, if there is one."""
    return _file(directory, "events")


def read_rows(path: Path, dataset: str) -> Iterator[dict[str, Any]]:
    """The rows of an export file as JSON values, whichever format it is in."""
    if path.suffix == ".jsonl":
        with path.open("rb") as f:
            for line in f:
                if line.strip():
                    yield msgspec.json.decode(line)
        return
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if dataset == "events":
                yield dict(row)
            else:
                yield {k: parse_csv_cell(dataset, k, v) for k, v in row.items()}


def check_records(
    directory: Path,
    *,
    events: Path | None = None,
    skip_subjects: frozenset[str] = frozenset(),
    partial: bool = False,
) -> RecordsReport:
    """Compare every record file in ``directory`` with ``events`` (default: the events file
    there; JSON lines or CSV, as exported or as ``GET /v1/events`` serves them).

    ``skip_subjects`` are records whose newest events lie beyond the export's cut (a
    bundle names them); ``partial`` means the events were filtered, so a record with no
    event in them is not evidence of anything.
    """
    report = RecordsReport()
    events = events or events_file(directory)
    present = [d for d in DATASETS if _file(directory, d) is not None]
    if not present:
        report.problems.append(f"no record files ({', '.join(DATASETS)}) in {directory}")
        return report
    if events is None:
        report.problems.append("no events file (events.jsonl or events.csv) to check against")
        return report
    latest = latest_states(read_rows(events, "events"))
    for dataset in present:
        path = _file(directory, dataset)
        assert path is not None  # noqa: S101 - listed above as present
        checked = 0
        for row in read_rows(path, dataset):
            record_id = str(row.get("id")).lower()
            if record_id in skip_subjects:
                report.unchecked += 1
                continue
            newest = latest.get(record_id)
            if newest is None and partial:
                report.unchecked += 1
                continue
            seq, state = newest if newest is not None else (None, None)
            report.divergences += compare_row(dataset, row, state, seq=seq)
            checked += 1
        report.checked[dataset] = checked
    return report
