"""Run the Alembic revisions under ``migrations/`` against a database URL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from service.db.queries import alembic_version as q

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["alembic_config", "check_revision", "downgrade", "migrations_dir", "upgrade"]


def migrations_dir() -> Path:
    """The revisions: inside the package when installed from a wheel (which carries them
    as ``service/migrations``), else at the top of the source checkout."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "migrations"
    return installed if installed.is_dir() else package.parent / "migrations"


def sqlalchemy_url(url: str) -> str:
    """Turn a libpq-style URL into the asyncpg dialect URL Alembic's engine needs."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "postgresql+asyncpg"):
        raise ValueError(f"not a PostgreSQL URL: scheme {parts.scheme!r}")
    return urlunsplit(("postgresql+asyncpg", *parts[1:]))


def alembic_config(url: str) -> Config:
    # Alembic (and SQLAlchemy under it) takes seconds to import: only commands that migrate
    # or check the revision pay for it.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    # '%' is Alembic's interpolation character; a password may contain it.
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def check_revision(url: str, *, allow_newer: bool = False) -> str | None:
    """Why the database at ``url`` cannot be used by this version, or None if it can.

    With ``allow_newer``, a revision this version does not know (a newer version migrated
    the database, as during a rolling upgrade) is accepted; one it knows but that is not
    its head (the database is behind) never is.
    """
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(url))
    heads = sorted(script.get_heads())

    async def current() -> list[str] | None:
        conn = await asyncpg.connect(url)
        try:
            return await q.select_revisions(conn)
        finally:
            await conn.close()

    found = asyncio.run(current())
    if not found:
        return "the database is not migrated"
    if found == heads:
        return None
    known = {rev.revision for rev in script.walk_revisions()}
    if allow_newer and not known.intersection(found):
        return None
    return f"the database is at revision {', '.join(found)}, this version needs {', '.join(heads)}"


def run_script(sql: str) -> None:
    """Run a multi-statement SQL script inside the current revision's transaction.

    SQLAlchemy's asyncpg adapter prepares every statement, and PostgreSQL refuses to
    prepare several at once, so online runs go through the raw asyncpg connection's
    simple query protocol. Offline (``--sql``) runs just emit the script.
    """
    from alembic import context, op
    from sqlalchemy.util.concurrency import await_

    if context.is_offline_mode():
        op.execute(sql)
        return
    adapted = op.get_bind().connection.dbapi_connection
    if adapted is None:
        raise RuntimeError("the migration connection has no driver connection")
    await_(adapted.driver_connection.execute(sql))
