"""What a bundle's verifier checks beyond hashes and signatures: that every event in it is
covered by the checkpoint its manifest names, and that every record row in it agrees with
the newest state its events carry (:mod:`service.domain.reconciliation`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from service.domain.reconciliation import DATASETS as RECORD_DATASETS
from service.domain.reconciliation import describe
from service.domain.record_check import check_records, read_rows

if TYPE_CHECKING:
    from service.domain.bundles import Manifest

__all__ = ["check_coverage", "check_records_against"]


def check_coverage(directory: Path, manifest: Manifest) -> list[str]:
    """Every event in the bundle is one the manifest's checkpoint covers."""
    events = next((f for f in manifest.files if f.dataset == "events"), None)
    if events is None:
        return []
    cp = manifest.checkpoint
    limit = cp.last_seq if cp is not None else 0
    size = cp.tree_size if cp is not None else 0
    count, beyond = 0, []
    for event in read_rows(directory / events.name, "events"):
        count += 1
        seq = int(event["seq"])
        if limit is not None and seq > limit:
            beyond.append(seq)
    problems = []
    if beyond:
        problems.append(
            f"{events.name}: {len(beyond)} events beyond the checkpoint (size {size}, last "
            f"seq {limit}), the first seq {min(beyond)}: not covered by a signed checkpoint"
        )
    if count > size:
        problems.append(f"{events.name}: {count} events, more than the checkpoint's {size}")
    return problems


def check_records_against(directory: Path, manifest: Manifest) -> list[str]:
    """Every record file agrees with the newest state of its events in the bundle."""
    datasets = {f.dataset for f in manifest.files}
    if "events" not in datasets or not datasets & set(RECORD_DATASETS):
        return []
    filtered = any(v for k, v in manifest.filters.items() if k != "redacted")
    report = check_records(
        directory,
        skip_subjects=frozenset(manifest.changed_after_checkpoint),
        partial=filtered,
    )
    return report.problems + [describe(d) for d in report.divergences]
