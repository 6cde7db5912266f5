"""Export jobs: signed bundles built in the background, stored in the database.

``POST /v1/exports`` queues a job. Every replica runs an export worker that claims queued
jobs with ``FOR UPDATE SKIP LOCKED``; a job whose worker dies is taken up again once its
lease lapses (the worker renews the lease as it reports progress). The bundle's files are
written as 1 MiB chunks into ``export_files``, so any replica can serve them afterwards and
no replica keeps state on local disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from uuid import UUID

import asyncpg

from service.db.pool import connection
from service.db.queries import export_jobs as q
from service.domain.bundles import FileSink, build_bundle
from service.domain.checkpoints import Signer
from service.domain.exports import ExportFilters
from service.domain.platforms import get_platform
from service.errors import Conflict, InvalidInput, NotFound, Unavailable
from service.schemas.exports import ExportFile, ExportJob, ExportJobIn
from service.schemas.keys import Principal

__all__ = [
    "create_job",
    "get_job",
    "list_jobs",
    "run_export_worker",
    "run_next_job",
    "stream_file",
]

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
LEASE_SECONDS = 30.0
PROGRESS_EVERY_SECONDS = 0.5
MAX_ATTEMPTS = 3


async def create_job(
    conn: asyncpg.Connection, *, data: ExportJobIn, requested_by: UUID | None, redact: bool = False
) -> ExportJob:
    if len(set(data.datasets)) != len(data.datasets):
        raise InvalidInput("each dataset may be named once", key="datasets")
    if data.since is not None and data.until is not None and data.since >= data.until:
        raise InvalidInput("'from' must be before 'to'", key="from")
    platform_id = None
    if data.platform is not None:
        try:
            platform_id = (await get_platform(conn, slug=data.platform)).id
        except NotFound as exc:
            raise InvalidInput(f"no platform {data.platform!r}", key="platform") from exc
    filters = {
        "from": data.since.isoformat() if data.since else None,
        "to": data.until.isoformat() if data.until else None,
        "platform": data.platform,
        "platform_id": str(platform_id) if platform_id else None,
        "stage": data.stage,
        "model_id": str(data.model_id) if data.model_id else None,
        # Whether incident free text is withheld (the regulator redaction policy).
        "redacted": "true" if redact else None,
    }
    row = await q.insert_job(
        conn,
        requested_by=requested_by,
        datasets=list(data.datasets),
        fmt=data.format,
        filters=filters,
    )
    return _job(row, [])


def _job(row: asyncpg.Record, files: list[asyncpg.Record]) -> ExportJob:
    total = row["rows_total"]
    progress = None
    if total is not None:
        progress = 1.0 if total == 0 else round(min(row["rows_done"] / total, 1.0), 4)
    if row["status"] == "done":
        progress = 1.0
    filters = {k: v for k, v in row["filters"].items() if k != "platform_id"}
    return ExportJob(
        id=row["id"],
        status=row["status"],
        datasets=list(row["datasets"]),
        format=row["format"],
        filters=filters,
        rows_total=total,
        rows_done=row["rows_done"],
        progress=progress,
        error=row["error"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        files=[
            ExportFile(
                name=f["name"],
                bytes=f["size"],
                href=f"/v1/exports/jobs/{row['id']}/files/{f['name']}",
            )
            for f in files
        ],
    )


async def get_job(
    conn: asyncpg.Connection, *, job_id: UUID, visible_to: Principal | None = None
) -> ExportJob:
    """One job; an admin (or no ``visible_to``) sees every job, anyone else its own."""
    row = await q.select_job(conn, job_id=job_id)
    if row is None or not _sees_job(visible_to, requested_by=row["requested_by"]):
        raise NotFound(f"no export job {job_id}")
    files = await q.select_files(conn, job_id=job_id) if row["status"] == "done" else []
    return _job(row, files)


async def list_jobs(
    conn: asyncpg.Connection, *, visible_to: Principal, limit: int
) -> list[ExportJob]:
    """The newest jobs the caller may read (an admin: everyone's), without their files."""
    requested_by = None if visible_to.role == "admin" else visible_to.id
    rows = await q.select_recent_jobs(conn, requested_by=requested_by, limit=limit)
    return [_job(row, []) for row in rows]


def _sees_job(caller: Principal | None, *, requested_by: UUID) -> bool:
    """An admin sees every export job; anyone else the jobs it asked for."""
    return caller is None or caller.role == "admin" or caller.id == requested_by


async def stream_file(
    pool: asyncpg.Pool, *, job_id: UUID, name: str, acquire_timeout: float
) -> AsyncIterator[bytes]:
    """A finished job's file, one stored chunk at a time."""
    chunk = 0
    while True:
        async with connection(pool, timeout=acquire_timeout) as conn:
            data = await q.select_file_chunk(conn, job_id=job_id, name=name, chunk=chunk)
        if data is None:
            return
        yield data
        chunk += 1


async def check_file(conn: asyncpg.Connection, *, job: ExportJob, name: str) -> None:
    if job.status != "done":
        raise Conflict(f"the export job is {job.status}; its files exist once it is done")
    if name not in {f.name for f in job.files}:
        raise NotFound(f"no file {name!r} in this export")


class _DatabaseFile:
    """A bundle file written as numbered chunks, each in its own short transaction."""

    def __init__(self, pool: asyncpg.Pool, job_id: UUID, name: str) -> None:
        self._pool = pool
        self._job_id = job_id
        self._name = name
        self._buffer = bytearray()
        self._chunk = 0

    async def _flush(self, data: bytes) -> None:
        async with connection(self._pool) as conn:
            await q.insert_chunk(
                conn,
                job_id=self._job_id,
                name=self._name,
                chunk=self._chunk,
                data=data,
            )
        self._chunk += 1

    async def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= CHUNK_BYTES:
            await self._flush(bytes(self._buffer[:CHUNK_BYTES]))
            del self._buffer[:CHUNK_BYTES]

    async def close(self) -> None:
        if self._buffer or self._chunk == 0:
            await self._flush(bytes(self._buffer))
            self._buffer.clear()


async def run_next_job(
    pool: asyncpg.Pool, *, signer: Signer, seconds: float = 3600.0, seal_wait: float = 0.0
) -> bool:
    """Claim and build one job; False when there was none to do. The bundle waits up to
    ``seal_wait`` seconds for the sealer to cover the newest event (see ``build_bundle``)."""
    async with connection(pool) as conn:
        row = await q.claim_job(conn, lease_seconds=LEASE_SECONDS)
    if row is None:
        return False
    job_id: UUID = row["id"]
    filters = row["filters"]
    last_report = 0.0

    async def progress(done: int, total: int) -> None:
        nonlocal last_report
        now = time.monotonic()
        if now - last_report < PROGRESS_EVERY_SECONDS and done < total:
            return
        last_report = now
        async with connection(pool) as c:
            await q.record_progress(
                c,
                job_id=job_id,
                done=done,
                total=total,
                lease_seconds=LEASE_SECONDS,
            )

    async def open_file(name: str) -> FileSink:
        return _DatabaseFile(pool, job_id, name)

    try:
        async with connection(pool) as conn:
            await q.clear_files(conn, job_id=job_id)
        async with connection(pool) as reader:
            await build_bundle(
                reader,
                datasets=list(row["datasets"]),
                fmt=row["format"],
                filters=ExportFilters(
                    since=_parse_time(filters.get("from")),
                    until=_parse_time(filters.get("to")),
                    platform_id=UUID(filters["platform_id"])
                    if filters.get("platform_id")
                    else None,
                    stage=filters.get("stage"),
                    model_id=UUID(filters["model_id"]) if filters.get("model_id") else None,
                ),
                platform=filters.get("platform"),
                signer=signer,
                open_file=open_file,
                progress=progress,
                seconds=seconds,
                redact=filters.get("redacted") == "true",
                seal_wait=seal_wait,
            )
    except (asyncpg.PostgresError, OSError, ValueError) as exc:
        log.exception("export job failed", extra={"job_id": str(job_id)})
        final = row["attempts"] >= MAX_ATTEMPTS
        if final:
            async with connection(pool) as conn:
                await q.finish_job(
                    conn,
                    job_id=job_id,
                    status="failed",
                    error=f"the export failed ({type(exc).__name__}); see the service log",
                )
        # Otherwise the lease lapses, and this or another worker tries again.
        return True
    async with connection(pool) as conn:
        await q.finish_job(conn, job_id=job_id, status="done", error=None)
    log.info("export job done", extra={"job_id": str(job_id)})
    return True


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def run_export_worker(
    pool: asyncpg.Pool,
    *,
    signer: Signer,
    seconds: float,
    poll_interval: float,
    wake: asyncio.Event,
    stop: asyncio.Event,
    seal_wait: float = 0.0,
) -> None:
    """Run queued jobs until ``stop`` is set; when none is queued, sleep ``poll_interval``
    seconds or until ``wake`` is set (a job queued through this process)."""
    while not stop.is_set():
        try:
            busy = await run_next_job(pool, signer=signer, seconds=seconds, seal_wait=seal_wait)
        except (asyncpg.PostgresError, OSError, Unavailable) as exc:
            log.warning("export worker: database unavailable (%s)", type(exc).__name__)
            busy = False
        if busy:
            continue
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=poll_interval)
