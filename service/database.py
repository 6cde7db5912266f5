"""Where the database is: the server named by ``DATABASE_URL``, or the embedded one.

Both ``serve`` and the CLI commands go through :func:`open_database`, so they reach the same
data whichever way the service is run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.db.embedded import EmbeddedServer, start_embedded
from service.settings import Settings

__all__ = ["EMBEDDED_DATABASE", "Database", "open_database"]

#: The database the service uses inside its embedded server.
EMBEDDED_DATABASE = "registry"


class Database:
    """A resolved database URL, and the embedded server behind it if there is one."""

    def __init__(self, url: str, embedded: EmbeddedServer | None) -> None:
        self.url = url
        self.embedded = embedded


def _ensure_database(server: EmbeddedServer, name: str) -> None:
    """Create the service's database inside a fresh embedded server."""
    import asyncio

    import asyncpg

    from service.db.queries import server as server_q

    async def create() -> None:
        conn = await asyncpg.connect(server.url("postgres"))
        try:
            if not await server_q.database_exists(conn, name=name):
                await server_q.create_database(conn, name=name)
        finally:
            await conn.close()

    asyncio.run(create())


@contextmanager
def open_database(settings: Settings) -> Iterator[Database]:
    """Yield the database to use; an embedded server is released on exit."""
    if settings.database_url:
        yield Database(settings.database_url, None)
        return
    server = start_embedded(Path(settings.pg_data_dir))
    try:
        _ensure_database(server, EMBEDDED_DATABASE)
        yield Database(server.url(EMBEDDED_DATABASE), server)
    finally:
        server.close()
