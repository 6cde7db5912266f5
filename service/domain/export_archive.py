"""A finished export bundle as one tar archive: its data files, ``manifest.json`` and
``manifest.sig`` in a folder named after the job.

The archive is written as it is sent: a POSIX ustar header per file (its size is known from
the stored chunks), the file's stored chunks one at a time, padding to 512 bytes, and the
two empty blocks that end an archive. Memory stays at one chunk whatever the bundle's size,
and ``tar -xf`` followed by ``risk-registry verify-export`` checks it offline.
"""

from __future__ import annotations

import tarfile
from collections.abc import AsyncIterator

import asyncpg

from service.domain.export_jobs import stream_file
from service.schemas.exports import ExportJob

__all__ = ["archive_folder", "archive_name", "archive_size", "stream_archive"]

BLOCK = 512


def archive_folder(job: ExportJob) -> str:
    """The folder the archive unpacks into (and that ``verify-export`` is given)."""
    return f"export-{job.id}"


def archive_name(job: ExportJob) -> str:
    return f"{archive_folder(job)}.tar"


def _header(name: str, *, size: int, mtime: int, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.mtime = mtime
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.uname = info.gname = "risk-registry"
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _padding(size: int) -> int:
    return -size % BLOCK


def archive_size(job: ExportJob) -> int:
    """The archive's exact length in bytes, before any of it is sent."""
    return BLOCK + sum(BLOCK + f.bytes + _padding(f.bytes) for f in job.files) + 2 * BLOCK


async def stream_archive(
    pool: asyncpg.Pool, *, job: ExportJob, acquire_timeout: float
) -> AsyncIterator[bytes]:
    """The bundle of a done ``job`` (its files as ``get_job`` listed them) as a tar stream."""
    folder = archive_folder(job)
    mtime = int((job.finished_at or job.created_at).timestamp())
    yield _header(folder + "/", size=0, mtime=mtime, directory=True)
    for file in job.files:
        yield _header(f"{folder}/{file.name}", size=file.bytes, mtime=mtime)
        sent = 0
        async for chunk in stream_file(
            pool, job_id=job.id, name=file.name, acquire_timeout=acquire_timeout
        ):
            sent += len(chunk)
            yield chunk
        if sent != file.bytes:
            # The header promised a size: a short or long file would corrupt the archive.
            raise ValueError(f"{file.name}: {sent} bytes stored, {file.bytes} listed")
        if pad := _padding(file.bytes):
            yield bytes(pad)
    yield bytes(2 * BLOCK)
