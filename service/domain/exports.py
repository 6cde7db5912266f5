"""Bulk exports for regulators: whole datasets streamed in bounded memory.

PostgreSQL writes the rows (``COPY ... TO STDOUT``, as CSV or as JSON lines) into a small
bounded queue; the consumer (an HTTP response, or a file on disk) drains it. When the
consumer is slow the queue fills, the COPY callback waits, asyncpg stops reading from the
socket, and the server pauses: memory stays flat however many rows there are.

Each export runs in one REPEATABLE READ, READ ONLY transaction, so it is a consistent
snapshot of the registry, with the statement timeout of the request path lifted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Literal, cast
from uuid import UUID

import asyncpg

from service.db.pool import PooledConnection, acquire
from service.db.queries import exports as q
from service.domain.platforms import get_platform
from service.errors import InvalidInput, NotFound
from service.schemas.keys import Principal

__all__ = ["COLUMNS", "DATASETS", "ExportFilters", "Format", "redacts_for", "start_export"]

Format = Literal["csv", "jsonl"]
DATASETS = tuple(q.DATASETS)
#: Each dataset's columns, in order: CSV headers and JSON keys.
COLUMNS = q.COLUMNS

#: Chunks held between PostgreSQL and the consumer (asyncpg hands over up to ~64 KiB each).
QUEUE_CHUNKS = 16
_DONE = object()


def redacts_for(caller: Principal, *, redact_for_regulators: bool) -> bool:
    """Whether an export made for ``caller`` withholds incidents' free text: a regulator's
    does when the registry is set to redact it for regulators."""
    return caller.role == "regulator" and redact_for_regulators


class ExportFilters:
    """What to export: a time range, a platform, a stage, a model (each optional), and
    ``narrow``, filters on the rows' own fields that only some datasets take (see
    ``q.NARROWING``): the compliance report names them as the export of what it counts."""

    __slots__ = ("model_id", "narrow", "platform_id", "since", "stage", "until")

    def __init__(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        platform_id: UUID | None = None,
        stage: str | None = None,
        model_id: UUID | None = None,
        narrow: Mapping[str, str | bool | None] | None = None,
    ) -> None:
        if since is not None and until is not None and since >= until:
            raise InvalidInput("'from' must be before 'to'", key="from")
        self.narrow = {k: v for k, v in (narrow or {}).items() if v is not None} or None
        self.since = since
        self.until = until
        self.platform_id = platform_id
        self.stage = stage
        self.model_id = model_id

    def as_params(self) -> q.Filters:
        return (self.since, self.until, self.platform_id, self.stage, self.model_id, self.narrow)

    def check_dataset(self, dataset: str) -> None:
        """Refuse a narrowing filter the dataset has no field for."""
        extra = sorted(set(self.narrow or ()) - q.NARROWING.get(dataset, frozenset()))
        if extra:
            raise InvalidInput(
                f"the {dataset} export takes no filter {', '.join(map(repr, extra))}",
                key=extra[0],
            )

    def with_platform(self, platform_id: UUID) -> ExportFilters:
        return ExportFilters(
            since=self.since,
            until=self.until,
            platform_id=platform_id,
            stage=self.stage,
            model_id=self.model_id,
            narrow=self.narrow,
        )


async def start_export(
    pool: asyncpg.Pool,
    *,
    dataset: str,
    fmt: Format,
    filters: ExportFilters,
    seconds: float,
    acquire_timeout: float,
    platform: str | None = None,
    redact: bool = False,
) -> AsyncIterator[bytes]:
    """Start an export and return its bytes as PostgreSQL produces them.

    ``platform`` (a slug) narrows the export to that platform; NotFound if there is none.
    The connection is taken and the first chunk awaited before this returns, so an
    unavailable database or a failing query is reported before any response is sent.
    """
    if dataset not in q.DATASETS:
        raise InvalidInput(f"no dataset {dataset!r}", key="dataset")
    filters.check_dataset(dataset)
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=QUEUE_CHUNKS)

    async def sink(chunk: bytes) -> None:
        # asyncpg hands over a view into its read buffer; copy it before the buffer moves on.
        await queue.put(bytes(chunk))

    async def produce(conn: PooledConnection) -> None:
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await q.set_export_session(cast("asyncpg.Connection", conn))
                copy = q.copy_csv if fmt == "csv" else q.copy_jsonl
                await copy(
                    cast("asyncpg.Connection", conn),  # a pooled proxy behaves as one
                    dataset=dataset,
                    filters=filters.as_params(),
                    output=sink,
                    seconds=seconds,
                    redact=redact,
                )
        except Exception as exc:
            await queue.put(exc)
            return
        await queue.put(_DONE)

    conn = await acquire(pool, timeout=acquire_timeout)
    if platform is not None:
        try:
            found = await get_platform(cast("asyncpg.Connection", conn), slug=platform)
        except NotFound as exc:
            await pool.release(conn)
            raise NotFound(f"no platform {platform!r}") from exc
        except BaseException:
            await pool.release(conn)
            raise
        filters = filters.with_platform(found.id)
    producer = asyncio.create_task(produce(conn))
    try:
        first = await queue.get()
    except BaseException:
        await _stop(pool, conn, producer)
        raise
    if isinstance(first, Exception):
        await producer
        await pool.release(conn)
        raise first
    return _drain(pool, conn, producer, queue, first)


async def _drain(
    pool: asyncpg.Pool,
    conn: PooledConnection,
    producer: asyncio.Task[None],
    queue: asyncio.Queue[object],
    item: object,
) -> AsyncIterator[bytes]:
    try:
        while item is not _DONE:
            if isinstance(item, Exception):
                raise item
            if not isinstance(item, bytes):
                raise TypeError("an export queue carries only bytes")
            yield item
            item = await queue.get()
        await producer
    finally:
        if producer.done():
            await pool.release(conn)
        else:
            await _stop(pool, conn, producer)


async def _stop(pool: asyncpg.Pool, conn: PooledConnection, producer: asyncio.Task[None]) -> None:
    """The consumer went away mid-export: stop the COPY and drop the half-read connection."""
    producer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await producer
    conn.terminate()
    await pool.release(conn)
