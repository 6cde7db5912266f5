"""Readiness: whether the database answers now."""

from __future__ import annotations

import asyncpg

from service.db.pool import DB_FAILURES, connection
from service.db.queries import server as q
from service.errors import Unavailable

__all__ = ["check_ready"]


async def check_ready(pool: asyncpg.Pool, *, timeout: float) -> None:  # noqa: ASYNC109 - a deadline for the pool and the query alike
    """Return once the database has answered a query; ``Unavailable`` if not within ``timeout``.

    The query has the deadline too: a server that accepted the connection and then stopped
    answering would otherwise hold it for the pool's whole command timeout.
    """
    async with connection(pool, timeout=timeout) as conn:
        try:
            await q.ping(conn, timeout=timeout)
        except DB_FAILURES as exc:
            raise Unavailable("the database is not answering; retry shortly") from exc
