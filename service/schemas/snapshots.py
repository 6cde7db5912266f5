"""Frozen compliance reports: the request, and the snapshot as served and verified."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from service.schemas.common import PlatformSlug
from service.schemas.compliance import ComplianceReport

__all__ = ["ReportSnapshot", "ReportSnapshotIn", "SnapshotCheckpoint"]


class ReportSnapshotIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The report to freeze: a period that has ended, for one platform or the registry."""

    #: Period start (inclusive).
    since: datetime = msgspec.field(name="from")
    #: Period end (exclusive); not later than now.
    until: datetime = msgspec.field(name="to")
    platform: PlatformSlug | None = None


class SnapshotCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """The checkpoint whose tree covers every event the report read."""

    origin: str
    tree_size: int
    #: base64 of the tree's root hash.
    root_hash: str
    #: The signed checkpoint note itself (C2SP tlog-checkpoint), verifiable on its own.
    note: str


class ReportSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A frozen report. ``note`` is a C2SP signed note by the checkpoint key whose text is
    ``risk-registry/compliance-report-snapshot/v1``, the checkpoint's origin, tree size and
    root hash, then the report's RFC 8785 (JCS) bytes on one line; ``risk-registry
    verify-report FILE --key KEY`` checks this document offline."""

    id: UUID
    period_from: datetime
    period_to: datetime
    platform: str | None
    created_at: datetime
    checkpoint: SnapshotCheckpoint
    report: ComplianceReport
    note: str
