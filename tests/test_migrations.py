"""Every revision applies, reverts and applies again on an empty database."""

from __future__ import annotations

import asyncio

import asyncpg

from service.db.migrate import downgrade, upgrade
from tests.conftest import PgServer


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


def test_upgrade_downgrade_upgrade(pg_server: PgServer) -> None:
    url = pg_server.create_database("rr_migrate")
    try:
        upgrade(url)
        full = asyncio.run(_tables(url))
        assert {
            "platforms",
            "principals",
            "api_keys",
            "models",
            "hostings",
            "incidents",
            "audits",
            "decommissions",
            "events",
        } <= full
        downgrade(url, "base")
        assert asyncio.run(_tables(url)) <= {"alembic_version"}
        upgrade(url)
        assert asyncio.run(_tables(url)) == full
    finally:
        pg_server.drop_database(url)
