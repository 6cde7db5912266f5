"""Export bundle jobs: what a regulator asks for, and how far the job has got."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from service.schemas.common import PlatformSlug
from service.schemas.events import Stage

__all__ = ["Dataset", "ExportFile", "ExportFormat", "ExportJob", "ExportJobIn"]

Dataset = Literal["events", "models", "hostings", "incidents", "audits", "decisions"]
ExportFormat = Literal["csv", "jsonl"]


class ExportJobIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A signed bundle of one or more datasets, filtered alike."""

    datasets: Annotated[list[Dataset], msgspec.Meta(min_length=1, max_length=6)]
    format: ExportFormat = "csv"
    #: Start (inclusive) of the time range: ``recorded_at`` for events, else ``created_at``.
    since: datetime | None = msgspec.field(default=None, name="from")
    #: End (exclusive) of the time range.
    until: datetime | None = msgspec.field(default=None, name="to")
    platform: PlatformSlug | None = None
    stage: Stage | None = None
    model_id: UUID | None = None


class ExportFile(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    bytes: int
    #: Where to fetch it (relative to the service's base URL).
    href: str


class ExportJob(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    status: Literal["queued", "running", "done", "failed"]
    datasets: list[str]
    format: ExportFormat
    filters: dict[str, str | None]
    rows_total: int | None
    rows_done: int
    #: Share of rows written so far, 0 to 1 (null until the job has counted its rows).
    progress: float | None
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    #: The bundle's files, once the job is done: the data files, manifest.json, manifest.sig.
    files: list[ExportFile]
