"""The migration that makes model names case-insensitive folds case-variant duplicates
into the first-seen model without losing or changing a ledger event (each merge is an
event), or refuses and lists them when they conflict."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from service.db.migrate import upgrade
from tests.conftest import PgServer

BEFORE = "0006_export_bundles"

SEED = """
INSERT INTO platforms (id, slug, name, kind) VALUES
  ('00000000-0000-7000-8000-0000000000a1', 'hub', 'Hub', 'model_hub'),
  ('00000000-0000-7000-8000-0000000000a2', 'forge', 'Forge', 'code_forge');
INSERT INTO models (id, name, provider, created_at) VALUES
  ('00000000-0000-7000-8000-000000000001', 'Acme/Chat-7B', 'Acme', '2026-01-01'),
  ('00000000-0000-7000-8000-000000000002', 'acme/chat-7b', NULL, '2026-02-01'),
  ('00000000-0000-7000-8000-000000000003', 'ACME/CHAT-7B', 'Acme', '2026-03-01'),
  ('00000000-0000-7000-8000-000000000004', 'acme/other', NULL, '2026-01-01');
UPDATE models SET base_model_id = '00000000-0000-7000-8000-000000000002'
WHERE id = '00000000-0000-7000-8000-000000000004';
INSERT INTO hostings (id, model_id, platform_id, url, status) VALUES
  ('00000000-0000-7000-8000-0000000000b1', '00000000-0000-7000-8000-000000000002',
   '00000000-0000-7000-8000-0000000000a1', 'https://hub/acme/chat-7b', 'hosted'),
  ('00000000-0000-7000-8000-0000000000b2', '00000000-0000-7000-8000-000000000003',
   '00000000-0000-7000-8000-0000000000a2', 'https://forge/ACME/CHAT-7B', 'hosted');
INSERT INTO incidents (id, ref, title, category, severity, channel, aware_at, reported_at)
VALUES ('00000000-0000-7000-8000-0000000000c1', 'R-1', 'i', 'malfunction', 'low', 'api',
        '2026-03-02', '2026-03-02');
INSERT INTO incident_models (incident_id, model_id) VALUES
  ('00000000-0000-7000-8000-0000000000c1', '00000000-0000-7000-8000-000000000001'),
  ('00000000-0000-7000-8000-0000000000c1', '00000000-0000-7000-8000-000000000003');
INSERT INTO events (stage, kind, subject_type, subject_id, model_id, occurred_at, payload)
VALUES
  ('prevent', 'model.registered', 'model', '00000000-0000-7000-8000-000000000001',
   '00000000-0000-7000-8000-000000000001', '2026-01-01', '{}'),
  ('prevent', 'model.registered', 'model', '00000000-0000-7000-8000-000000000002',
   '00000000-0000-7000-8000-000000000002', '2026-02-01', '{}'),
  ('prevent', 'hosting.created', 'hosting', '00000000-0000-7000-8000-0000000000b2',
   '00000000-0000-7000-8000-000000000003', '2026-03-01', '{"note": "kept as written"}');
"""

KEEP = "00000000-0000-7000-8000-000000000001"


async def _run(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fetch(url: str, sql: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def test_case_variants_fold_into_the_first_seen_model(pg_server: PgServer) -> None:
    url = pg_server.create_database("rr_fold")
    try:
        upgrade(url, BEFORE)
        asyncio.run(_run(url, SEED))
        events_before = asyncio.run(
            _fetch(url, "SELECT seq, kind, model_id, payload::text FROM events ORDER BY seq")
        )
        upgrade(url)

        models = asyncio.run(
            _fetch(url, "SELECT id::text, name, provider FROM models ORDER BY name")
        )
        assert models == [
            {"id": KEEP, "name": "Acme/Chat-7B", "provider": "Acme"},
            {"id": "00000000-0000-7000-8000-000000000004", "name": "acme/other", "provider": None},
        ]
        refs = asyncio.run(
            _fetch(
                url,
                "SELECT (SELECT array_agg(DISTINCT model_id::text) FROM hostings) AS hostings,"
                " (SELECT array_agg(model_id::text) FROM incident_models) AS incident,"
                " (SELECT base_model_id::text FROM models WHERE name = 'acme/other') AS base",
            )
        )
        assert refs == [{"hostings": [KEEP], "incident": [KEEP], "base": KEEP}]

        events_after = asyncio.run(
            _fetch(url, "SELECT seq, kind, model_id, payload::text FROM events ORDER BY seq")
        )
        # Every event is still there, unchanged; the two merges are new events.
        assert events_after[: len(events_before)] == events_before
        merges = events_after[len(events_before) :]
        assert [m["kind"] for m in merges] == ["model.merged", "model.merged"]
        assert {str(m["model_id"]) for m in merges} == {KEEP}
        merged = sorted(json.loads(m["payload"])["merged_name"] for m in merges)
        assert merged == ["ACME/CHAT-7B", "acme/chat-7b"]
        # The survivor's history reaches the merged models' events.
        indexed = asyncio.run(
            _fetch(
                url,
                "SELECT seq FROM event_models"
                " WHERE model_id = '00000000-0000-7000-8000-000000000001' ORDER BY seq",
            )
        )
        assert {e["seq"] for e in events_before[1:]} <= {r["seq"] for r in indexed}

        # From now on a case variant is the same name.
        with pytest.raises(asyncpg.UniqueViolationError):
            asyncio.run(_run(url, "INSERT INTO models (name) VALUES ('acme/CHAT-7b')"))
    finally:
        pg_server.drop_database(url)


def test_conflicting_case_variants_are_listed_and_nothing_changes(pg_server: PgServer) -> None:
    url = pg_server.create_database("rr_fold_conflict")
    try:
        upgrade(url, BEFORE)
        asyncio.run(_run(url, SEED))
        # Both spellings hosted on the hub: which hosting would survive is not ours to say.
        asyncio.run(
            _run(
                url,
                "INSERT INTO hostings (model_id, platform_id, url, status) VALUES"
                " ('00000000-0000-7000-8000-000000000001',"
                " '00000000-0000-7000-8000-0000000000a1', 'https://hub/Acme/Chat-7B', 'hosted')",
            )
        )
        with pytest.raises(Exception, match="differ only in case") as refused:
            upgrade(url)
        assert "ACME/CHAT-7B, Acme/Chat-7B, acme/chat-7b" in str(refused.value)
        rows = asyncio.run(_fetch(url, "SELECT version_num FROM alembic_version"))
        assert rows != [{"version_num": "0014_model_names_fold"}]
        assert len(asyncio.run(_fetch(url, "SELECT id FROM models"))) == 4
    finally:
        pg_server.drop_database(url)


def test_principals_take_their_creator_from_the_ledger(pg_server: PgServer) -> None:
    """Four eyes on an upgraded registry: a principal whose key another principal minted
    before the upgrade is known to descend from it."""
    url = pg_server.create_database("rr_creators")
    try:
        upgrade(url, BEFORE)
        asyncio.run(
            _run(
                url,
                """
INSERT INTO principals (id, name, role) VALUES
  ('00000000-0000-7000-8000-0000000000d1', 'first', 'admin'),
  ('00000000-0000-7000-8000-0000000000d2', 'minted by first', 'admin');
INSERT INTO api_keys (id, principal_id, lookup, secret_hash) VALUES
  ('00000000-0000-7000-8000-0000000000e1', '00000000-0000-7000-8000-0000000000d1',
   'aaaaaaaaaaaaaaaa', decode(repeat('00', 32), 'hex')),
  ('00000000-0000-7000-8000-0000000000e2', '00000000-0000-7000-8000-0000000000d2',
   'bbbbbbbbbbbbbbbb', decode(repeat('00', 32), 'hex'));
INSERT INTO events (stage, kind, subject_type, subject_id, actor_id, occurred_at) VALUES
  ('prevent', 'api_key.created', 'api_key', '00000000-0000-7000-8000-0000000000e1', NULL,
   now()),
  ('prevent', 'api_key.created', 'api_key', '00000000-0000-7000-8000-0000000000e2',
   '00000000-0000-7000-8000-0000000000d1', now());
""",
            )
        )
        upgrade(url)
        rows = asyncio.run(
            _fetch(url, "SELECT name, created_by::text FROM principals ORDER BY name")
        )
        assert rows == [
            {"name": "first", "created_by": None},
            {"name": "minted by first", "created_by": "00000000-0000-7000-8000-0000000000d1"},
        ]
    finally:
        pg_server.drop_database(url)


#: Records pointing at the models the fold merges, each with an event carrying its state
#: as the service writes it (only the fields the fold moves matter here).
MOVED = """
INSERT INTO decommissions (id, model_id, action, reason, effective_at, sunset_at,
                           successor_model_id)
VALUES ('00000000-0000-7000-8000-0000000000d1', '00000000-0000-7000-8000-000000000003',
        'deprecate', 'old', '2026-04-01', '2026-06-01', '00000000-0000-7000-8000-000000000002');
INSERT INTO events (stage, kind, subject_type, subject_id, model_id, occurred_at, payload)
VALUES
  ('prevent', 'hosting.created', 'hosting', '00000000-0000-7000-8000-0000000000b1',
   '00000000-0000-7000-8000-000000000002', '2026-02-01',
   '{"state": {"id": "00000000-0000-7000-8000-0000000000b1",
               "model_id": "00000000-0000-7000-8000-000000000002", "model": "acme/chat-7b",
               "url": "https://hub/acme/chat-7b", "status": "hosted"}}'),
  ('prevent', 'model.registered', 'model', '00000000-0000-7000-8000-000000000004',
   '00000000-0000-7000-8000-000000000004', '2026-01-01',
   '{"state": {"id": "00000000-0000-7000-8000-000000000004", "name": "acme/other",
               "base_model_id": "00000000-0000-7000-8000-000000000002",
               "base_model": "acme/chat-7b", "provider": null}}'),
  ('prevent', 'model.updated', 'model', '00000000-0000-7000-8000-000000000001',
   '00000000-0000-7000-8000-000000000001', '2026-01-02',
   '{"state": {"id": "00000000-0000-7000-8000-000000000001", "name": "Acme/Chat-7B",
               "base_model_id": null, "provider": null}}'),
  ('respond', 'decommission.proposed', 'decommission', '00000000-0000-7000-8000-0000000000d1',
   '00000000-0000-7000-8000-000000000003', '2026-04-01',
   '{"state": {"id": "00000000-0000-7000-8000-0000000000d1",
               "model_id": "00000000-0000-7000-8000-000000000003", "model": "ACME/CHAT-7B",
               "successor_model_id": "00000000-0000-7000-8000-000000000002"}}');
UPDATE models SET provider = NULL WHERE id = '00000000-0000-7000-8000-000000000001';
"""

#: The fields the fold moves, as the reconciliation names them.
MOVED_FIELDS = ("model_id", "base_model_id", "provider")


async def _reconcile(url: str) -> list[dict[str, Any]]:
    from service.domain.reconciler import reconcile_all

    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        await reconcile_all(pool, batch_size=100)
        rows = await pool.fetch(
            "SELECT dataset, record_id::text, field, found, expected FROM record_divergences"
            " WHERE field = ANY($1::text[]) ORDER BY dataset, record_id, field",
            list(MOVED_FIELDS),
        )
        return [dict(r) for r in rows]
    finally:
        await pool.close()


def test_records_the_fold_moved_agree_with_the_ledger(pg_server: PgServer) -> None:
    """An auditor reconciling an upgraded registry finds no record the fold moved reported
    as differing from its ledger state, and each moved record's new state is an event."""
    url = pg_server.create_database("rr_fold_restate")
    try:
        upgrade(url, BEFORE)
        asyncio.run(_run(url, SEED + MOVED))
        before = asyncio.run(_fetch(url, "SELECT seq, payload::text FROM events ORDER BY seq"))
        upgrade(url)

        assert asyncio.run(_reconcile(url)) == []
        after = asyncio.run(
            _fetch(
                url,
                "SELECT seq, kind, subject_id::text, payload::text FROM events ORDER BY seq",
            )
        )
        assert [(e["seq"], e["payload"]) for e in after[: len(before)]] == [
            (e["seq"], e["payload"]) for e in before
        ]
        restated = {
            (e["kind"], e["subject_id"]): json.loads(e["payload"])
            for e in after[len(before) :]
            if e["kind"] != "model.merged"
        }
        hosting = restated["hosting.model_merged", "00000000-0000-7000-8000-0000000000b1"]
        assert hosting["state"]["model_id"] == KEEP
        assert hosting["state"]["model"] == "Acme/Chat-7B"
        assert hosting["state"]["url"] == "https://hub/acme/chat-7b"  # the rest unchanged
        assert hosting["changes"] == {
            "model_id": {"from": "00000000-0000-7000-8000-000000000002", "to": KEEP}
        }
        based = restated["model.merge_restated", "00000000-0000-7000-8000-000000000004"]
        assert based["state"]["base_model_id"] == KEEP
        assert based["state"]["base_model"] == "Acme/Chat-7B"
        survivor = restated["model.merge_restated", KEEP]
        assert survivor["changes"]["provider"] == {"from": None, "to": "Acme"}
        decision = restated["decommission.model_merged", "00000000-0000-7000-8000-0000000000d1"]
        assert decision["state"]["model_id"] == KEEP
        assert decision["state"]["successor_model_id"] == KEEP
        assert len(restated) == 4
    finally:
        pg_server.drop_database(url)
