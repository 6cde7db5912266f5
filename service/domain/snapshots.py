"""Frozen compliance reports: stored, signed, bound to the ledger, checkable offline.

Freezing builds the report (``service.domain.compliance.build_report``) in the same
REPEATABLE READ snapshot as it picks the checkpoint that binds it: the newest checkpoint,
provided its tree covers every event recorded before the period's end, which are all the
report reads (see ``service.db.queries.compliance``). When the sealer has not got that far
yet the request is retried for a moment and then refused with ``LedgerNotSealed`` (503):
the snapshot waits for the sealer rather than sealing itself.

The signed note (C2SP signed-note, the checkpoint key) has the text::

    risk-registry/compliance-report-snapshot/v1
    <checkpoint origin>
    <tree size>
    <root hash, base64>
    <the report's RFC 8785 (JCS) bytes>

so the figures themselves are signed, and the checkpoint lines say which tree they rest
on; the checkpoint's own note is served beside them.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import report_snapshots as q
from service.domain.checkpoints import (
    CheckpointError,
    Signer,
    open_checkpoint,
    signed_text,
)
from service.domain.compliance import build_report
from service.domain.figure_records import with_records
from service.domain.jcs import canonicalize
from service.domain.periods import report_period
from service.errors import InvalidInput, NotFound, Unavailable
from service.schemas.compliance import ComplianceReport
from service.schemas.snapshots import ReportSnapshot, SnapshotCheckpoint

__all__ = [
    "HEADER",
    "LedgerNotSealed",
    "canonical_json",
    "freeze_report",
    "get_snapshot",
    "verify_snapshot",
]

HEADER = "risk-registry/compliance-report-snapshot/v1"
_DASH = "\u2014"


class LedgerNotSealed(Unavailable):
    """No checkpoint covers the period's end yet: the sealer has not caught up."""


def canonical_json(value: Any) -> bytes:
    """``value`` (plain JSON data) in the RFC 8785 canonical encoding, as leaves are."""
    return canonicalize(value)


# -- freezing and serving ---------------------------------------------------------------------


def _note_text(*, origin: str, tree_size: int, root_hash: bytes, report: bytes) -> str:
    root = base64.b64encode(root_hash).decode()
    return f"{HEADER}\n{origin}\n{tree_size}\n{root}\n{report.decode()}\n"


async def freeze_report(
    conn: asyncpg.Connection,
    *,
    signer: Signer,
    since: datetime,
    until: datetime,
    platform: str | None,
    created_by: UUID | None,
    now: datetime,
    seconds: float | None = None,
) -> ReportSnapshot:
    """Build, sign and store the report for ``[since, until)``. Run in one REPEATABLE READ
    transaction, so that the report and the checkpoint it is bound to see the same data;
    ``seconds``, how long each of the report's statements may take to answer."""
    period = report_period(since, until)
    if period.until > now:
        raise InvalidInput(
            "only a period that has ended can be frozen: 'to' is later than now", key="to"
        )
    checkpoint = await q.select_covering_checkpoint(conn, until=period.until)
    if checkpoint is None:
        raise LedgerNotSealed(
            "the ledger is not yet sealed up to the period's end; retry in a moment"
        )
    # Frozen as the API serves it: with its series and the exports behind each figure.
    report = await build_report(
        conn,
        since=period.since,
        until=period.until,
        platform=platform,
        series=True,
        seconds=seconds,
    )
    report = with_records(report)
    jcs = canonical_json(msgspec.to_builtins(report))
    size, root = int(checkpoint["tree_size"]), bytes(checkpoint["root_hash"])
    note = signer.sign(_note_text(origin=signer.name, tree_size=size, root_hash=root, report=jcs))
    row = await q.insert_snapshot(
        conn,
        since=period.since,
        until=period.until,
        platform=platform,
        report=jcs,
        tree_size=size,
        note=note,
        created_by=created_by,
    )
    return ReportSnapshot(
        id=row["id"],
        period_from=period.since,
        period_to=period.until,
        platform=platform,
        created_at=row["created_at"],
        checkpoint=SnapshotCheckpoint(
            origin=signer.name,
            tree_size=size,
            root_hash=base64.b64encode(root).decode(),
            note=checkpoint["note"],
        ),
        report=report,
        note=note,
    )


async def get_snapshot(conn: asyncpg.Connection, *, snapshot_id: UUID) -> ReportSnapshot:
    row = await q.select_snapshot(conn, snapshot_id=snapshot_id)
    if row is None:
        raise NotFound(f"no report snapshot {snapshot_id}")
    checkpoint_note: str = row["checkpoint_note"]
    return ReportSnapshot(
        id=row["id"],
        period_from=row["period_from"],
        period_to=row["period_to"],
        platform=row["platform"],
        created_at=row["created_at"],
        checkpoint=SnapshotCheckpoint(
            origin=checkpoint_note.split("\n", 1)[0],
            tree_size=row["tree_size"],
            root_hash=base64.b64encode(bytes(row["root_hash"])).decode(),
            note=checkpoint_note,
        ),
        report=msgspec.json.decode(bytes(row["report"]), type=ComplianceReport),
        note=row["note"],
    )


# -- offline verification ---------------------------------------------------------------------


class _Document(msgspec.Struct, kw_only=True):
    checkpoint: SnapshotCheckpoint
    report: dict[str, Any]
    note: str


def verify_snapshot(document: bytes, vkey: str) -> list[str]:
    """What is wrong with a snapshot document (as the API serves it); empty when its note is
    signed by ``vkey``, its report is the one signed, and its checkpoint is signed by the same
    key and is the one the note names."""
    try:
        doc = msgspec.json.decode(document, type=_Document)
    except (msgspec.DecodeError, RecursionError) as exc:
        return [f"not a report snapshot: {exc}"]
    try:
        text = signed_text(doc.note, vkey)
    except CheckpointError as exc:
        return [f"signature: {exc}"]
    lines = text.split("\n")
    if len(lines) != 6 or lines[0] != HEADER or lines[5] != "":
        return ["the signed note is not a report snapshot"]
    _, origin, size, root, signed_report, _ = lines
    problems = []
    try:
        if canonical_json(doc.report).decode() != signed_report:
            problems.append("report: the figures differ from the signed ones")
    except (TypeError, ValueError) as exc:
        problems.append(f"report: not plain JSON data: {exc}")
    try:
        checkpoint = open_checkpoint(doc.checkpoint.note, vkey, origin=origin)
    except CheckpointError as exc:
        problems.append(f"checkpoint: {exc}")
    else:
        if (str(checkpoint.tree_size), base64.b64encode(checkpoint.root_hash).decode()) != (
            size,
            root,
        ):
            problems.append("checkpoint: not the one the signed note names")
    return problems
