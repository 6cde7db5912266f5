"""Benchmark: the first page of one model's history on a 5-million-event ledger.

Populates a fresh database (``generate_series``, indexes rebuilt after the load), starts a
real ``serve`` process against it (sealer off, so the load is only the reads), then
measures ``GET /v1/models/{id}/history?limit=50`` at 16 concurrent auditors with the ``hey``
load generator (Debian package ``hey``, installed by ``make bench-tools``; the benchmark
stops at once, naming that target, when it is missing), and the same SELECT run by pgbench
at the same concurrency in the same run. Prints p50/p99 of both and
their ratio, and writes JSON under ``bench/results/``.

    .venv/bin/python -m bench.history                  # 5 million events
    .venv/bin/python -m bench.history --events 200000  # a quick smoke run

Uses ``DATABASE_URL``'s server when set (creating and dropping its own database), else a
private embedded server in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import (
    fresh_database,
    get_load,
    instrument,
    pg_bin,
    pg_server,
    serving,
    write_results,
)
from service.db.pool import init_connection
from service.db.queries.history import HISTORY_NEWEST_ALL
from service.db.queries.models import select_ancestors, select_descendants
from service.domain.keys import create_key
from service.schemas.keys import ApiKeyIn

CHAIN = 5  # models per lineage chain: each derived from the one before

INDEXES = [
    "CREATE INDEX events_model ON events (model_id, seq) WHERE model_id IS NOT NULL",
    "CREATE INDEX events_platform ON events (platform_id, seq) WHERE platform_id IS NOT NULL",
    "CREATE INDEX events_subject ON events (subject_id, seq)",
    "CREATE INDEX events_recorded ON events (recorded_at)",
]


async def _populate(url: str, *, events: int, models: int) -> dict[str, Any]:
    """Models in lineage chains, then ``events`` events spread evenly over them."""
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    try:
        started = time.perf_counter()
        await conn.execute(
            """
            INSERT INTO models (name, provider, base_model_id, derivation)
            SELECT 'bench/m' || g, 'bench', NULL, NULL FROM generate_series(1, $1) g
            """,
            models,
        )
        # Chain them: bench/m(k) derives from bench/m(k-1) within each chain of CHAIN.
        await conn.execute(
            """
            UPDATE models m SET base_model_id = b.id, derivation = 'fine_tune'
            FROM models b
            WHERE m.name LIKE 'bench/m%' AND b.name = 'bench/m' || (substr(m.name, 8)::int - 1)
              AND substr(m.name, 8)::int % $1 <> 1
            """,
            CHAIN,
        )
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM models WHERE name LIKE 'bench/m%' ORDER BY substr(name, 8)::int"
            )
        ]
        platform = await conn.fetchval(
            "INSERT INTO platforms (slug, name, kind) VALUES ('bench-hub', 'Bench hub', "
            "'model_hub') RETURNING id"
        )
        for name in ("events_model", "events_platform", "events_subject", "events_recorded"):
            await conn.execute(f"DROP INDEX IF EXISTS {name}")
        chunk = 500_000
        kinds = ["hosting.recorded", "hosting.updated", "incident.reported", "decision.made"]
        stages = ["prevent", "prevent", "detect", "respond"]
        for start in range(0, events, chunk):
            n = min(chunk, events - start)
            await conn.execute(
                """
                INSERT INTO events (stage, kind, subject_type, subject_id, model_id, platform_id,
                                    actor_id, occurred_at, payload)
                SELECT ($4::text[])[1 + g % 4], ($3::text[])[1 + g % 4], 'hosting',
                       ($1::uuid[])[1 + g % cardinality($1::uuid[])],
                       ($1::uuid[])[1 + g % cardinality($1::uuid[])],
                       CASE WHEN g % 2 = 0 THEN $2::uuid END, NULL,
                       timestamptz '2026-01-01' + g * interval '1 second',
                       jsonb_build_object('state', jsonb_build_object('n', g, 'licence', 'mit'))
                FROM generate_series($5::bigint, $6::bigint) g
                """,
                ids,
                platform,
                kinds,
                stages,
                start,
                start + n - 1,
            )
            print(f"  {start + n:>10,} events", flush=True)
        for sql in INDEXES:
            await conn.execute(sql)
        await conn.execute("VACUUM (ANALYZE) events")
        await conn.execute("ANALYZE")
        loaded = time.perf_counter() - started
        # The target: the middle model of a chain, so it has ancestors and descendants.
        target = ids[CHAIN // 2 + CHAIN * (len(ids) // CHAIN // 2)]
        key = await create_key(
            conn, data=ApiKeyIn(role="auditor", name="bench auditor"), actor_id=None
        )
        return {"target": target, "key": key.key, "load_seconds": loaded}
    finally:
        await conn.close()


def _load(base: str, path: str, key: str, *, concurrency: int, seconds: int) -> list[float]:
    """Latencies in ms of GET ``path`` from the hey load generator, after a short warm-up."""
    headers = {"Authorization": f"Bearer {key}"}
    get_load(base + path, headers=headers, concurrency=concurrency, seconds=2)
    latencies, statuses, _generator = get_load(
        base + path, headers=headers, concurrency=concurrency, seconds=seconds
    )
    if set(statuses) != {200}:
        raise RuntimeError(f"not every answer was 200: {statuses}")
    return [latency * 1000 for latency in latencies]


async def _lineage(url: str, target: Any) -> tuple[int, int]:
    """How many models the target's lineage holds, and how many events they have."""
    c = await asyncpg.connect(url)
    try:
        ids = [target]
        ids += [r["id"] for r in await select_ancestors(c, model_id=target)]
        ids += [r["id"] for r in await select_descendants(c, model_id=target)]
        count = await c.fetchval(
            "SELECT count(*) FROM events WHERE model_id = ANY($1::uuid[])", ids
        )
        return len(ids), int(count)
    finally:
        await c.close()


def _pgbench_sql(model_id: Any) -> str:
    """The service's own history SELECT, its parameters written in as the service sends them."""
    values = {"1": f"'{model_id}'::uuid", "2": "true", "3": "NULL", "4": "51"}
    sql = re.sub(r"\$(\d+)", lambda m: values[m.group(1)], HISTORY_NEWEST_ALL)
    return " ".join(sql.split()) + ";\n"


def _pgbench(url: str, sql: str, *, concurrency: int, seconds: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "history.sql"
        script.write_text(sql)
        cmd = [
            pg_bin("pgbench"),
            "-n",
            "-M",
            "prepared",
            "-c",
            str(concurrency),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-l",
            "--log-prefix",
            str(Path(tmp) / "log"),
            "-f",
            str(script),
            url,
        ]
        subprocess.run(cmd, check=True, capture_output=True, cwd=tmp)  # noqa: S603
        latencies: list[float] = []
        for log in Path(tmp).glob("log*"):
            for line in log.read_text().splitlines():
                latencies.append(int(line.split()[2]) / 1000)
    return latencies


def _summary(latencies: list[float]) -> dict[str, float]:
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"count": len(latencies), "p50_ms": q[49], "p99_ms": q[98]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    instrument("hey")  # before the long population, not after it

    with pg_server() as admin_url, fresh_database(admin_url, "rr_bench_history") as url:
        print(f"populating {args.events:,} events over {args.models:,} models", flush=True)
        setup = asyncio.run(_populate(url, events=args.events, models=args.models))
        result = measure(url, setup, concurrency=args.concurrency, seconds=args.seconds)
    result.update(events=args.events, models=args.models)
    written = write_results("history", result)
    report(result)
    print(f"results: {written}")
    return 0


def measure(url: str, setup: dict[str, Any], *, concurrency: int, seconds: int) -> dict[str, Any]:
    """History reads of the populated lineage's target beside pgbench's same SELECT."""
    generator = instrument("hey")
    target = setup["target"]
    lineage_models, lineage_events = asyncio.run(_lineage(url, target))
    with serving(url, REGISTRY_SEALER="false", REGISTRY_POOL_MAX_SIZE=str(concurrency)) as (
        base,
        _proc,
    ):
        path = f"/v1/models/{target}/history?limit=50"
        print(f"service: {concurrency} auditors for {seconds}s", flush=True)
        service = _summary(
            _load(base, path, setup["key"], concurrency=concurrency, seconds=seconds)
        )
        # For scale: the service's plainest authenticated read, one row by primary key.
        baseline = _summary(
            _load(
                base, f"/v1/models/{target}", setup["key"], concurrency=concurrency, seconds=seconds
            )
        )
    print(f"pgbench: {concurrency} clients for {seconds}s", flush=True)
    pg = _summary(_pgbench(url, _pgbench_sql(target), concurrency=concurrency, seconds=seconds))
    return {
        "benchmark": "history",
        "lineage_models": lineage_models,
        "lineage_events": lineage_events,
        "load_seconds": round(setup["load_seconds"], 1),
        "concurrency": concurrency,
        "seconds": seconds,
        "load_generator": generator,
        "service": service,
        "pgbench": pg,
        "service_model_read_baseline": baseline,
        "ratio_p50": service["p50_ms"] / pg["p50_ms"],
        "ratio_p99": service["p99_ms"] / pg["p99_ms"],
    }


def report(result: dict[str, Any]) -> None:
    service, pg = result["service"], result["pgbench"]
    baseline = result["service_model_read_baseline"]
    print(
        f"load generator {result['load_generator']}, {result['concurrency']} connections\n"
        f"service  p50 {service['p50_ms']:.2f} ms  p99 {service['p99_ms']:.2f} ms  "
        f"({service['count']} requests)\n"
        f"pgbench  p50 {pg['p50_ms']:.2f} ms  p99 {pg['p99_ms']:.2f} ms  "
        f"({pg['count']} queries)\n"
        f"ratio    p50 {result['ratio_p50']:.1f}x  p99 {result['ratio_p99']:.1f}x\n"
        f"baseline GET /v1/models/{{id}}: p50 {baseline['p50_ms']:.2f} ms  "
        f"p99 {baseline['p99_ms']:.2f} ms ({baseline['count']} requests)"
    )


if __name__ == "__main__":
    sys.exit(main())
