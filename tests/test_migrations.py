"""Every revision applies, reverts and applies again on an empty database, to the same
schema (tables, columns, constraints, indexes, triggers and functions); and the ledger the
migrations create is append-only from the first row."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from service.db.migrate import downgrade, upgrade
from tests.conftest import PgServer

#: Everything a migration defines that a rule of the registry rests on, as PostgreSQL
#: itself renders it.
SCHEMA = """
SELECT 'column ' || c.table_name || '.' || c.column_name || ' ' || c.data_type || ' '
       || c.is_nullable || ' ' || coalesce(c.column_default, '') AS item
FROM information_schema.columns c WHERE c.table_schema = 'public'
UNION ALL
SELECT 'constraint ' || t.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'public'
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(g.oid)
FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND NOT g.tgisinternal
UNION ALL
SELECT 'function ' || pg_get_functiondef(p.oid)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p')
"""


async def _schema(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(SCHEMA)
    finally:
        await conn.close()
    return {r["item"] for r in rows}


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
        schema = asyncio.run(_schema(url))
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
        assert any(item.startswith("trigger ") for item in schema)
        downgrade(url, "base")
        assert asyncio.run(_tables(url)) <= {"alembic_version"}
        upgrade(url)
        assert asyncio.run(_tables(url)) == full
        again = asyncio.run(_schema(url))
        assert again == schema, {"lost": schema - again, "gained": again - schema}
    finally:
        pg_server.drop_database(url)


#: Ledger tables and a statement that changes a row of each.
LEDGER = {
    "events": "UPDATE events SET kind = kind",
    "ledger_leaves": "UPDATE ledger_leaves SET leaf_hash = leaf_hash",
    "ledger_nodes": "UPDATE ledger_nodes SET hash = hash",
    "ledger_checkpoints": "UPDATE ledger_checkpoints SET note = note",
}

FIRST_ROWS = """
INSERT INTO events (stage, kind, subject_type, subject_id, occurred_at)
VALUES ('prevent', 'model.registered', 'model', gen_random_uuid(), now());
INSERT INTO ledger_leaves (leaf_index, seq, leaf_hash)
SELECT 0, seq, sha256('leaf') FROM events;
INSERT INTO ledger_nodes (level, idx, hash) VALUES (1, 0, sha256('node'));
INSERT INTO ledger_checkpoints (tree_size, root_hash, last_seq, note)
SELECT 1, sha256('root'), seq, 'note' FROM events;
"""


@pytest.fixture(scope="module")
def migrated(pg_server: PgServer) -> object:
    url = pg_server.create_database("rr_ledger")
    try:
        upgrade(url)
        yield url
    finally:
        pg_server.drop_database(url)


@pytest.mark.parametrize("table", sorted(LEDGER))
async def test_freshly_migrated_ledger_tables_refuse_update_delete_and_truncate(
    migrated: str, table: str
) -> None:
    conn = await asyncpg.connect(migrated)
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(FIRST_ROWS)
            delete, truncate = f"DELETE FROM {table}", f"TRUNCATE {table} CASCADE"  # noqa: S608
            for statement in (LEDGER[table], delete, truncate):
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                    async with conn.transaction():
                        await conn.execute(statement)
            # The row is still there, unchanged.
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 1  # noqa: S608
        finally:
            await tx.rollback()
    finally:
        await conn.close()
