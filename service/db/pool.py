"""The asyncpg pool and the codecs every connection gets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import asyncpg
import msgspec
from asyncpg.pool import PoolAcquireContext, PoolConnectionProxy

from service.db.connection import AbandoningConnection
from service.db.queries import server as server_q
from service.errors import Unavailable
from service.settings import Settings

__all__ = [
    "DB_FAILURES",
    "FairPool",
    "Pool",
    "PooledConnection",
    "acquire",
    "connection",
    "create_pool",
    "init_connection",
    "json_decode",
    "json_encode",
]

Pool = asyncpg.Pool

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def json_encode(value: Any) -> str:
    return _encoder.encode(value).decode()


def json_decode(value: str | bytes) -> Any:
    return _decoder.decode(value)


async def init_connection(conn: asyncpg.Connection) -> None:
    """Give a connection the msgspec JSON codecs for json and jsonb."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=json_encode, decoder=json_decode, schema="pg_catalog"
        )


async def _reset_connection(conn: asyncpg.Connection) -> None:
    # The service keeps no session state on connections, so asyncpg's default reset
    # (RESET ALL; CLOSE ALL; UNLISTEN *; ...) would be a wasted round trip per request.
    # A transaction left open by a failure is still rolled back.
    if conn.is_in_transaction():
        await server_q.rollback(conn)


class FairPool(asyncpg.Pool):
    """An asyncpg pool that hands out connections in the order they were asked for.

    asyncpg's own queue lets a newcomer take a connection just released ahead of the
    callers already waiting: the first waiter is woken, finds the connection gone and
    queues again at the back. Under load some requests then wait many times longer than
    the rest, past the acquire timeout (a 503). Here acquirers pass one at a time through
    a lock, which asyncio grants first come, first served; only the one at its head waits
    on the pool itself.

    Built on asyncpg's public API: ``acquire`` is overridden (so ``pool.fetchval`` and the
    like take their turn too), and the one at the head of the line calls asyncpg's own.
    """

    __slots__ = ("_turn",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn = asyncio.Lock()

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        return _FairAcquire(self, timeout)

    async def take_turn(self, timeout: float | None) -> PooledConnection:  # noqa: ASYNC109 - asyncpg's signature
        """Wait for this caller's turn, then for a connection, within ``timeout`` in all."""
        # asyncpg is given no deadline of its own: it would wrap the wait in a task of its
        # own on every call.
        async with asyncio.timeout(timeout), self._turn:
            return await super().acquire(timeout=None)


class _FairAcquire(PoolAcquireContext):
    """What ``FairPool.acquire`` returns: awaited, or used in ``async with``, as asyncpg's.

    Only the taking changes; giving back (``__aexit__``, ``pool.release``) is asyncpg's.
    """

    __slots__ = ()

    async def __aenter__(self) -> PooledConnection:
        if self.connection is not None or self.done:
            raise asyncpg.InterfaceError("a connection is already acquired")
        self.connection = await self._take()
        return self.connection

    def __await__(self) -> Generator[Any, None, PooledConnection]:
        self.done = True
        return self._take().__await__()

    async def _take(self) -> PooledConnection:
        return await cast("FairPool", self.pool).take_turn(self.timeout)


#: What ``pool.acquire`` hands out: a proxy of a connection (generic only to the type checker).
if TYPE_CHECKING:
    PooledConnection = PoolConnectionProxy[asyncpg.Record]
else:
    PooledConnection = PoolConnectionProxy

#: What a pool or a connection raises when the database cannot answer now.
DB_FAILURES = (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def acquire(pool: asyncpg.Pool, *, timeout: float | None) -> PooledConnection:  # noqa: ASYNC109 - the pool's own deadline
    """A connection from ``pool``, to be given back with ``pool.release``.

    Raises ``Unavailable`` for every way the pool can fail to give one within ``timeout``
    seconds: the wait ran out, the server refused or is unreachable, the pool is closing.
    """
    try:
        conn = await pool.acquire(timeout=timeout)
    except DB_FAILURES as exc:
        raise Unavailable("the database is not answering; retry shortly") from exc
    return conn


@asynccontextmanager
async def connection(
    pool: asyncpg.Pool,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - the pool's own deadline
) -> AsyncIterator[asyncpg.Connection]:
    """A connection from ``pool`` for the block, given back after it (see ``acquire``)."""
    conn = await acquire(pool, timeout=timeout)
    try:
        # A pooled connection is a proxy that behaves as the connection itself.
        yield cast("asyncpg.Connection", conn)
    finally:
        await pool.release(conn)


async def create_pool(settings: Settings, dsn: str) -> asyncpg.Pool:
    """Open the pool; statement_timeout bounds every query on the request path."""
    pool = FairPool(
        dsn,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=init_connection,
        reset=_reset_connection,
        loop=None,
        # A statement the server leaves unanswered closes its connection (see the class).
        connection_class=AbandoningConnection,
        record_class=asyncpg.Record,
        server_settings={
            "statement_timeout": str(int(settings.statement_timeout * 1000)),
            "application_name": "risk-registry",
            # The request path's statements are short; a misestimated cost (a report's
            # join of a few thousand rows) made PostgreSQL spend 150-190 ms compiling
            # one with JIT before running it in 30 ms.
            "jit": "off",
        },
        # How long a statement may go unanswered before the database counts as hung and
        # the request is answered 503; long exports pass timeouts of their own.
        command_timeout=settings.database_answer_seconds,
    )
    await pool
    return pool
