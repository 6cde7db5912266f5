"""Benchmark: a full reconciliation pass over a million records, beside PostgreSQL's own read.

Fills a fresh database, with set-based SQL, with ``--records`` records (default one
million: half models, half hostings of them) and one ledger event per record carrying its
state, as the API would have written it; a tenth of a percent of the hostings are then
changed behind the ledger's back. Then, in the same run:

1. PostgreSQL's own limit: one statement reads every row as the export renders it
   (``row_to_json`` of the export's query) with its newest event's state, and counts them;
2. the service's pass: :func:`service.domain.reconciler.reconcile_all` in rounds of
   ``--batch`` records per dataset (the service's default), comparing every row in
   Python and recording what differs.

Prints the pass time, records/s, its ratio to PostgreSQL's read, the divergent records
found (which must equal the number changed) and the machine's load average, and writes
the figures as JSON under ``bench/results/``.

    .venv/bin/python -m bench.reconcile                     # one million records
    .venv/bin/python -m bench.reconcile --records 20000     # a quick run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import asyncpg

from bench.common import fresh_database, pg_server, write_results
from service.db.pool import init_connection
from service.db.queries.exports import query_for
from service.domain.reconciler import reconcile_all

BATCH = 100_000


def _ts(column: str) -> str:
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


MODELS = """
INSERT INTO models (name, provider, modalities, tasks)
SELECT 'bench/m' || i, 'lab ' || (i % 97), ARRAY['text'], ARRAY['chat']
FROM generate_series($1::bigint, $2::bigint) AS i
"""

HOSTINGS = """
INSERT INTO hostings (model_id, platform_id, name, url, revision, licence, downloads,
                      downloads_at)
SELECT m.id, $1, m.name, 'https://hub.example/' || m.name, 'r1', 'apache-2.0',
       length(m.name) * 10, now()
FROM models m WHERE m.name LIKE 'bench/m%' AND NOT EXISTS (
  SELECT 1 FROM hostings h WHERE h.model_id = m.id)
ORDER BY m.id LIMIT $2
"""

MODEL_EVENTS = f"""
INSERT INTO events (stage, kind, subject_type, subject_id, model_id, occurred_at, payload)
SELECT 'prevent', 'model.registered', 'model', m.id, m.id, m.created_at, jsonb_build_object('state',
  jsonb_build_object('id', m.id, 'name', m.name, 'provider', m.provider,
    'modalities', to_jsonb(m.modalities), 'tasks', to_jsonb(m.tasks),
    'base_model_id', m.base_model_id, 'base_model', NULL, 'derivation', m.derivation,
    'openness', jsonb_build_object('weights', m.weights_openness, 'code', m.code_openness,
      'data', m.data_openness, 'model_card', m.model_card_openness),
    'created_at', {_ts("m.created_at")}, 'updated_at', {_ts("m.updated_at")}))
FROM models m
"""  # noqa: S608 - constants only

HOSTING_EVENTS = f"""
INSERT INTO events (stage, kind, subject_type, subject_id, model_id, platform_id,
                    occurred_at, payload)
SELECT 'prevent', 'hosting.recorded', 'hosting', h.id, h.model_id, h.platform_id, h.created_at,
  jsonb_build_object('state', jsonb_build_object('id', h.id, 'model_id', h.model_id,
    'platform_id', h.platform_id, 'name', h.name, 'external_id', h.external_id,
    'url', h.url, 'revision', h.revision, 'licence', h.licence, 'gated', h.gated,
    'disabled', h.disabled, 'status', h.status, 'downloads', h.downloads,
    'downloads_at', {_ts("h.downloads_at")},
    'documentation', jsonb_build_object(
      'model_card', jsonb_build_object('present', h.model_card_present, 'url', NULL),
      'safety_testing', jsonb_build_object('present', h.safety_testing_present, 'url', NULL),
      'risk_analysis', jsonb_build_object('present', h.risk_analysis_present, 'url', NULL),
      'use_guidance', jsonb_build_object('present', h.use_guidance_present, 'url', NULL)),
    'created_at', {_ts("h.created_at")}, 'updated_at', {_ts("h.updated_at")}))
FROM hostings h
"""  # noqa: S608 - constants only

#: A few hostings changed as a superuser would, without an event.
TAMPER = """
UPDATE hostings SET licence = 'proprietary'
WHERE id IN (SELECT id FROM hostings ORDER BY id LIMIT $1)
"""


def _floor_query(dataset: str) -> str:
    """PostgreSQL's own read of what the pass reads: each row as JSON, its newest state."""
    return f"""
SELECT count(*), sum(length(r) + coalesce(length(s), 0)) FROM (
  SELECT row_to_json(x)::text AS r,
         (SELECT (e.payload -> 'state')::text FROM events e
          WHERE e.subject_id = x.id AND e.payload ? 'state'
          ORDER BY e.seq DESC LIMIT 1) AS s
  FROM ({query_for(dataset)}) x) t
"""  # noqa: S608 - the export's own query


async def populate(url: str, records: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    started = time.perf_counter()
    models, hostings = records - records // 2, records // 2
    try:
        platform = await conn.fetchval(
            "INSERT INTO platforms (slug, name, kind) VALUES ('bench-hub', 'Bench', "
            "'model_hub') RETURNING id"
        )
        for start in range(1, models + 1, BATCH):
            await conn.execute(MODELS, start, min(start + BATCH - 1, models))
        for _ in range(0, hostings, BATCH):
            await conn.execute(HOSTINGS, platform, min(BATCH, hostings))
        await conn.execute(MODEL_EVENTS)
        await conn.execute(HOSTING_EVENTS)
        changed = max(1, records // 1000)
        await conn.execute(TAMPER, changed)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return {
        "models": models,
        "hostings": hostings,
        "changed": changed,
        "seconds": round(time.perf_counter() - started, 1),
    }


async def _floor(url: str) -> float:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    try:
        await conn.execute("SET statement_timeout = 0")
        started = time.perf_counter()
        for dataset in ("models", "hostings", "incidents", "audits", "decisions"):
            await conn.fetchrow(_floor_query(dataset), None, None, None, None, None)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def _pass(url: str, batch: int) -> tuple[float, int, int]:
    pool = await asyncpg.create_pool(
        url, min_size=1, max_size=2, init=init_connection, command_timeout=600
    )
    try:
        started = time.perf_counter()
        rows, divergent = await reconcile_all(pool, batch_size=batch)
        return time.perf_counter() - started, rows, divergent
    finally:
        await pool.close()


def measure(url: str, *, batch: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    floor = asyncio.run(_floor(url))
    seconds, rows, divergent = asyncio.run(_pass(url, batch))
    load_after = os.getloadavg()
    return {
        "records": rows,
        "batch": batch,
        "pass_seconds": round(seconds, 1),
        "records_per_second": round(rows / seconds),
        "postgres_read_seconds": round(floor, 1),
        "ratio_to_postgres_read": round(floor / seconds, 3),
        "divergent_records": divergent,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    with pg_server() as admin_url, fresh_database(admin_url, "rr_bench_rec") as url:
        print(f"populating {args.records:,} records with their events", flush=True)
        seeded = asyncio.run(populate(url, args.records))
        print(f"populated in {seeded['seconds']} s; {seeded['changed']} hostings changed")
        results = {"seeded": seeded, **measure(url, batch=args.batch)}
    print(
        f"full pass: {results['records']:,} records in {results['pass_seconds']} s "
        f"({results['records_per_second']:,} records/s), batches of {args.batch}\n"
        f"PostgreSQL's own read of the same rows and states: "
        f"{results['postgres_read_seconds']} s (pass/read ratio "
        f"{results['ratio_to_postgres_read']})\n"
        f"divergent records found: {results['divergent_records']} "
        f"(changed: {seeded['changed']})\n"
        f"load average before/after: {results['load_average_before']} / "
        f"{results['load_average_after']} on {results['cpus']} CPUs"
    )
    print(f"written to {write_results('reconcile', results)}")
    return 0 if results["divergent_records"] == seeded["changed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
