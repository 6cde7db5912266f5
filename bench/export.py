"""Benchmark: streaming exports of a large ledger, beside PostgreSQL's own COPY.

Fills a fresh database with ``--events`` ledger events (default one million), then, for CSV
and for JSON lines:

1. PostgreSQL's own limit: ``psql`` runs ``COPY (<the export's query>) TO STDOUT`` into
   /dev/null;
2. the service: a live ``serve`` process streams ``GET /v1/exports/events`` to a client that
   counts the bytes, while the service's resident memory is sampled every 20 ms.

Prints rows/s for both, their ratio and the service's peak resident memory, and writes the
figures as JSON under ``bench/results/``.

    .venv/bin/python -m bench.export                    # one million events
    .venv/bin/python -m bench.export --events 100000    # a quick run
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import fresh_database, pg_bin, pg_server, serving, write_results
from service.db.pool import init_connection
from service.db.queries.exports import DATASETS
from service.domain.keys import create_key
from service.schemas.keys import ApiKeyIn

BATCH = 250_000

POPULATE = """
INSERT INTO events (stage, kind, subject_type, subject_id, model_id, platform_id,
                    occurred_at, recorded_at, payload)
SELECT (ARRAY['prevent', 'detect', 'respond'])[1 + i % 3],
       'hosting.updated', 'hosting', gen_random_uuid(), gen_random_uuid(), gen_random_uuid(),
       now() - make_interval(secs => $1 - i), now() - make_interval(secs => $1 - i),
       jsonb_build_object(
         'state', jsonb_build_object(
           'revision', md5(i::text), 'licence', 'apache-2.0', 'downloads', i,
           'url', 'https://hub.example/org/model-' || i, 'status', 'hosted'),
         'changes', jsonb_build_object('revision', jsonb_build_object(
           'from', md5((i - 1)::text), 'to', md5(i::text))))
FROM generate_series($2::bigint, $3::bigint) AS i
"""


async def _populate(url: str, events: int) -> None:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    try:
        for start in range(1, events + 1, BATCH):
            end = min(start + BATCH - 1, events)
            await conn.execute(POPULATE, events, start, end)
            print(f"  populated {end:,} / {events:,} events", flush=True)
        await conn.execute("ANALYZE events")
    finally:
        await conn.close()


def _copy_sql(fmt: str) -> str:
    """The export's own query with every filter unset, as PostgreSQL's COPY runs it."""
    query = re.sub(r"\$\d", "NULL", DATASETS["events"])
    if fmt == "csv":
        return f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)"
    return (
        f"COPY (SELECT row_to_json(x) FROM ({query}) x) TO STDOUT "  # noqa: S608 - constants
        "WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
    )


def _pg_copy(url: str, fmt: str) -> float:
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - a fixed PostgreSQL client command
        [pg_bin("psql"), url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", _copy_sql(fmt)],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _service_export(base: str, key: str, fmt: str, pid: int) -> dict[str, Any]:
    peak = [_rss_kib(pid)]
    idle_kib = peak[0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_kib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    size = lines = 0
    started = time.perf_counter()
    with httpx.stream(
        "GET",
        f"{base}/v1/exports/events",
        params={"format": fmt},
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx.Timeout(30.0, read=600.0),
    ) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    return {
        "seconds": round(elapsed, 3),
        "bytes": size,
        "lines": lines,
        "rss_idle_mib": round(idle_kib / 1024, 1),
        "rss_peak_mib": round(peak[0] / 1024, 1),
    }


async def _regulator_key(url: str) -> tuple[str, int]:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    try:
        async with conn.transaction():
            created = await create_key(
                conn, data=ApiKeyIn(role="regulator", name="benchmark"), actor_id=None
            )
        rows = int(await conn.fetchval("SELECT count(*) FROM events"))
    finally:
        await conn.close()
    return created.key, rows


def measure(url: str) -> dict[str, Any]:
    """Export every event as CSV and as JSON lines, beside psql's COPY of the same query."""
    key, rows = asyncio.run(_regulator_key(url))
    results: dict[str, Any] = {"benchmark": "export", "events": rows, "formats": {}}
    with serving(url, REGISTRY_SEALER="false") as (base, proc):
        for fmt in ("csv", "jsonl"):
            _pg_copy(url, fmt)  # warm the cache for both sides alike
            pg_seconds = _pg_copy(url, fmt)
            service = _service_export(base, key, fmt, proc.pid)
            figures = {
                "postgres_copy_rows_per_s": round(rows / pg_seconds),
                "service_rows_per_s": round(rows / service["seconds"]),
                "ratio": round(pg_seconds / service["seconds"], 3),
                "postgres_copy_seconds": round(pg_seconds, 3),
                **service,
            }
            results["formats"][fmt] = figures
            print(
                f"{fmt:5}  COPY {figures['postgres_copy_rows_per_s']:>10,} rows/s   "
                f"service {figures['service_rows_per_s']:>10,} rows/s   "
                f"ratio {figures['ratio']:.2f}   "
                f"service RSS {service['rss_idle_mib']} -> {service['rss_peak_mib']} MiB",
                flush=True,
            )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    with pg_server() as admin_url, fresh_database(admin_url, "rr_bench_export") as url:
        print(f"populating {args.events:,} events", flush=True)
        asyncio.run(_populate(url, args.events))
        results = measure(url)
    path = write_results("export", results)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
