"""SQL for ``export_jobs`` and ``export_files``."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

import asyncpg

__all__ = [
    "claim_job",
    "clear_files",
    "finish_job",
    "insert_chunk",
    "insert_job",
    "record_progress",
    "select_file_chunk",
    "select_files",
    "select_job",
    "select_recent_jobs",
]

JOB_COLUMNS = """
id, requested_by, datasets, format, filters, status, rows_total, rows_done, error,
attempts, created_at, started_at, finished_at
"""

INSERT_JOB = f"""
INSERT INTO export_jobs (requested_by, datasets, format, filters)
VALUES ($1, $2, $3, $4)
RETURNING {JOB_COLUMNS}
"""

SELECT_JOB = f"SELECT {JOB_COLUMNS} FROM export_jobs WHERE id = $1"

# The newest jobs, of one requester or (NULL) of everyone.
SELECT_RECENT_JOBS = f"""
SELECT {JOB_COLUMNS} FROM export_jobs
WHERE $1::uuid IS NULL OR requested_by = $1
ORDER BY created_at DESC, id DESC
LIMIT $2
"""

# A queued job, or a running one whose worker stopped renewing its lease (it died).
CLAIM_JOB = f"""
UPDATE export_jobs
SET status = 'running', attempts = attempts + 1, lease_until = now() + make_interval(secs => $1),
    started_at = coalesce(started_at, now()), rows_done = 0
WHERE id = (
  SELECT id FROM export_jobs
  WHERE status = 'queued' OR (status = 'running' AND lease_until < now())
  ORDER BY created_at
  FOR UPDATE SKIP LOCKED
  LIMIT 1
)
RETURNING {JOB_COLUMNS}
"""

PROGRESS = """
UPDATE export_jobs
SET rows_done = $2, rows_total = $3, lease_until = now() + make_interval(secs => $4)
WHERE id = $1 AND status = 'running'
"""

FINISH = """
UPDATE export_jobs SET status = $2, error = $3, finished_at = now(), lease_until = NULL
WHERE id = $1
"""

CLEAR_FILES = "DELETE FROM export_files WHERE job_id = $1"

INSERT_CHUNK = "INSERT INTO export_files (job_id, name, chunk, data) VALUES ($1, $2, $3, $4)"

SELECT_FILES = """
SELECT name, sum(length(data))::bigint AS size FROM export_files WHERE job_id = $1
GROUP BY name ORDER BY name
"""

SELECT_CHUNK = "SELECT data FROM export_files WHERE job_id = $1 AND name = $2 AND chunk = $3"


async def insert_job(
    conn: asyncpg.Connection,
    *,
    requested_by: UUID | None,
    datasets: list[str],
    fmt: str,
    filters: Mapping[str, object],
) -> asyncpg.Record:
    row = await conn.fetchrow(INSERT_JOB, requested_by, datasets, fmt, filters)
    if row is None:
        raise LookupError("INSERT ... RETURNING returned nothing")
    return row


async def select_job(conn: asyncpg.Connection, *, job_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_JOB, job_id)


async def select_recent_jobs(
    conn: asyncpg.Connection, *, requested_by: UUID | None, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_RECENT_JOBS, requested_by, limit))


async def claim_job(conn: asyncpg.Connection, *, lease_seconds: float) -> asyncpg.Record | None:
    return await conn.fetchrow(CLAIM_JOB, lease_seconds)


async def record_progress(
    conn: asyncpg.Connection, *, job_id: UUID, done: int, total: int, lease_seconds: float
) -> None:
    await conn.execute(PROGRESS, job_id, done, total, lease_seconds)


async def finish_job(
    conn: asyncpg.Connection, *, job_id: UUID, status: str, error: str | None
) -> None:
    await conn.execute(FINISH, job_id, status, error)


async def clear_files(conn: asyncpg.Connection, *, job_id: UUID) -> None:
    await conn.execute(CLEAR_FILES, job_id)


async def insert_chunk(
    conn: asyncpg.Connection, *, job_id: UUID, name: str, chunk: int, data: bytes
) -> None:
    await conn.execute(INSERT_CHUNK, job_id, name, chunk, data)


async def select_files(conn: asyncpg.Connection, *, job_id: UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_FILES, job_id))


async def select_file_chunk(
    conn: asyncpg.Connection, *, job_id: UUID, name: str, chunk: int
) -> bytes | None:
    data = await conn.fetchval(SELECT_CHUNK, job_id, name, chunk)
    return None if data is None else bytes(data)
