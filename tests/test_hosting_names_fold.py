"""The migration that makes a platform's hosting names unique whatever their case refuses,
listing them, when one platform already hosts two names that differ only in case, and
changes nothing; renamed apart, it runs."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import asyncpg
import pytest

from service.db.migrate import upgrade
from tests.conftest import PgServer

MIGRATION = Path(__file__).parents[1] / "migrations/versions/2026_11_30_0021_hosting_names_fold.py"

SEED = """
INSERT INTO platforms (id, slug, name, kind) VALUES
  ('00000000-0000-7000-8000-0000000000a1', 'hub', 'Hub', 'model_hub'),
  ('00000000-0000-7000-8000-0000000000a2', 'forge', 'Forge', 'code_forge');
INSERT INTO models (id, name) VALUES
  ('00000000-0000-7000-8000-000000000001', 'acme/chat'),
  ('00000000-0000-7000-8000-000000000002', 'acme/other');
INSERT INTO hostings (model_id, platform_id, url, name) VALUES
  ('00000000-0000-7000-8000-000000000001', '00000000-0000-7000-8000-0000000000a1',
   'https://hub/a', 'Acme/Chat'),
  ('00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-0000000000a1',
   'https://hub/b', 'acme/chat'),
  -- The same name on another platform is no clash.
  ('00000000-0000-7000-8000-000000000001', '00000000-0000-7000-8000-0000000000a2',
   'https://forge/a', 'ACME/CHAT');
"""


def _before() -> str:
    spec = importlib.util.spec_from_file_location("hosting_names_fold", MIGRATION)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.down_revision)


async def _run(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        if ";" in sql:
            await conn.execute(sql)
            return []
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def test_case_variant_hosting_names_are_listed_then_refused(pg_server: PgServer) -> None:
    url = pg_server.create_database("rr_hosting_names_fold")
    try:
        upgrade(url, _before())
        asyncio.run(_run(url, SEED))
        with pytest.raises(Exception, match="differ only in case") as refused:
            upgrade(url)
        assert "hub: Acme/Chat, acme/chat" in str(refused.value)
        assert "forge" not in str(refused.value)
        [version] = asyncio.run(_run(url, "SELECT version_num FROM alembic_version"))
        assert version["version_num"] == _before()

        asyncio.run(
            _run(url, "UPDATE hostings SET name = 'acme/other' WHERE url = 'https://hub/b'")
        )
        upgrade(url)
        with pytest.raises(asyncpg.UniqueViolationError):
            asyncio.run(
                _run(url, "UPDATE hostings SET name = 'ACME/OTHER' WHERE url = 'https://hub/a'")
            )
    finally:
        pg_server.drop_database(url)
