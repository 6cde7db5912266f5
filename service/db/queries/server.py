"""SQL about the server and the session: a liveness probe, ending a transaction left open,
and the catalogue of databases."""

from __future__ import annotations

import asyncpg

__all__ = ["create_database", "database_exists", "ping", "rollback"]

PING = "SELECT 1"

ROLLBACK = "ROLLBACK"

DATABASE_EXISTS = "SELECT 1 FROM pg_database WHERE datname = $1"


async def ping(conn: asyncpg.Connection, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 - a deadline on the query itself
    """One round trip; raises if the server does not answer within ``timeout`` seconds."""
    await conn.fetchval(PING, timeout=timeout)


async def rollback(conn: asyncpg.Connection) -> None:
    """End the transaction a connection was left in, undoing it."""
    await conn.execute(ROLLBACK)


async def database_exists(conn: asyncpg.Connection, *, name: str) -> bool:
    return bool(await conn.fetchval(DATABASE_EXISTS, name))


async def create_database(conn: asyncpg.Connection, *, name: str) -> None:
    """Create database ``name``: one of the service's own constants, never input.

    A database name cannot be a bind parameter, so it is quoted here.
    """
    await conn.execute('CREATE DATABASE "{}"'.format(name.replace('"', '""')))
