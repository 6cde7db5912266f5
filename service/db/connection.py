"""The connection class of the service's pool: one that gives up on a silent server.

When a statement times out (``command_timeout``), asyncpg keeps the connection and sends
PostgreSQL a cancel request, and the connection's next statement (the ROLLBACK of the
request's transaction, or the pool's own reset) waits for that cancel to be acknowledged,
up to the same timeout again. A server that is stopped or cut off by a silent partition
acknowledges nothing, so one request waited several timeouts in a row. Here a statement that
times out closes its connection at once: the ROLLBACK then fails at once (the request is
answered 503), the pool opens a fresh connection for the next request, and PostgreSQL rolls
back the abandoned transaction when it sees the connection gone. Nothing is half-written:
a transaction is only ever committed by a COMMIT the server answered.
"""

from __future__ import annotations

from typing import Any

import asyncpg

__all__ = ["AbandoningConnection"]


class AbandoningConnection(asyncpg.Connection):
    """An asyncpg connection closed at once when a statement on it times out."""

    __slots__ = ()

    def _abandon(self) -> None:
        if not self.is_closed():
            self.terminate()

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute(*args, **kwargs)
        except TimeoutError:
            self._abandon()
            raise

    async def executemany(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().executemany(*args, **kwargs)
        except TimeoutError:
            self._abandon()
            raise

    async def fetch(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().fetch(*args, **kwargs)
        except TimeoutError:
            self._abandon()
            raise

    async def fetchval(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().fetchval(*args, **kwargs)
        except TimeoutError:
            self._abandon()
            raise

    async def fetchrow(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().fetchrow(*args, **kwargs)
        except TimeoutError:
            self._abandon()
            raise

    async def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().fetchmany(*args, **kwargs)
        except TimeoutError:
            self._abandon()
            raise

    async def copy_from_query(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().copy_from_query(*args, **kwargs)
        except TimeoutError:
            self._abandon()
            raise

    async def copy_records_to_table(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().copy_records_to_table(*args, **kwargs)
        except TimeoutError:
            self._abandon()
            raise
