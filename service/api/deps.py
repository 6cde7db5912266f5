"""Per-request dependencies: the transaction and the caller."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any, cast

import asyncpg
from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from service.db.pool import acquire
from service.domain.vault import Vault
from service.schemas.keys import Principal

__all__ = ["Caller", "Db", "dependencies", "vault_of"]

#: The request's connection, inside its one transaction.
Db = NamedDependency[asyncpg.Connection]
#: The authenticated principal making the request.
Caller = NamedDependency[Principal]


#: Methods whose handlers only read: they run without BEGIN/COMMIT, two round trips fewer.
#: A read that needs one snapshot across statements opens its own transaction.
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


async def provide_db(
    state: State, request: Request[Any, Any, Any]
) -> AsyncGenerator[asyncpg.Connection, None]:
    """One connection per request; for writes, one transaction committed before the
    response goes.

    Litestar throws a handler's exception into this generator, so the transaction rolls
    back and nothing is half-written.
    """
    pool: asyncpg.Pool = state.pool
    conn = await acquire(pool, timeout=state.acquire_timeout)
    try:
        # A pooled connection is a proxy that behaves as the connection itself.
        if request.method in READ_ONLY_METHODS:
            yield cast("asyncpg.Connection", conn)
        else:
            tx = conn.transaction()
            await tx.start()
            try:
                yield cast("asyncpg.Connection", conn)
            except BaseException:
                # A statement past its deadline closed the connection (AbandoningConnection):
                # the server ends the transaction with the session, and a ROLLBACK on it
                # would fail and hide the timeout behind it.
                with contextlib.suppress(asyncpg.InterfaceError):
                    await tx.rollback()
                raise
            else:
                await tx.commit()
    finally:
        await pool.release(conn)


async def provide_principal(request: Request[Principal, Any, Any], db: Db) -> Principal:
    """The caller. It names ``db`` only so that Litestar resolves the two one after the
    other: dependencies of the same rank are resolved concurrently in a task group, whose
    cost on every request exceeds the work itself. (A handler that needs the caller but no
    connection reads ``request.user`` instead.)"""
    del db
    return request.user


def vault_of(state: State) -> Vault:
    """The process's vault for secrets at rest (``service.lifespan.process_state``)."""
    vault: Vault = state.vault
    return vault


dependencies = {
    "db": Provide(provide_db),
    "principal": Provide(provide_principal),
}
