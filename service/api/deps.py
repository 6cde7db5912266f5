"""Per-request dependencies: the transaction and the caller."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, cast

import asyncpg
from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from service.errors import Unavailable
from service.schemas.keys import Principal

__all__ = ["Caller", "Db", "dependencies"]

#: The request's connection, inside its one transaction.
Db = NamedDependency[asyncpg.Connection]
#: The authenticated principal making the request.
Caller = NamedDependency[Principal]


async def provide_db(state: State) -> AsyncGenerator[asyncpg.Connection, None]:
    """One connection and one transaction per request, committed before the response goes.

    Litestar throws a handler's exception into this generator, so the transaction rolls
    back and nothing is half-written.
    """
    pool: asyncpg.Pool = state.pool
    try:
        conn = await pool.acquire(timeout=state.acquire_timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Unavailable("the database is not answering; retry shortly") from exc
    try:
        async with conn.transaction():
            # A pooled connection is a proxy that behaves as the connection itself.
            yield cast("asyncpg.Connection", conn)
    finally:
        await pool.release(conn)


async def provide_principal(request: Request[Principal, Any, Any]) -> Principal:
    return request.user


dependencies = {
    "db": Provide(provide_db),
    "principal": Provide(provide_principal),
}
