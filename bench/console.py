"""Benchmark: the console's pages on the populated ledger, each page's time at p50/p99.

Seeds platforms, thousands of hostings, incidents in every status with notes and decisions
with targets beside the events (``bench.console_seed``), signs an admin in (a console
session, as a browser would hold), records one incident on the lineage target, then loads
each page for ``--seconds`` at ``--concurrency`` people (the ``hey`` load generator when
installed; else a Python client, whose figures read worse because it shares the CPU). The
target is 100 ms at p99 per page.

    .venv/bin/python -m bench.console --events 200000   # on its own database
    .venv/bin/python -m bench                           # as one phase of the full run
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import asyncpg

from bench import console_seed, history
from bench.common import fresh_database, get_load, pg_server, serving, write_results
from service.db.pool import init_connection
from service.domain.console_sessions import open_session
from service.domain.incidents import record_incident
from service.domain.keys import create_key
from service.schemas.incidents import IncidentIn
from service.schemas.keys import ApiKeyIn

TARGET_P99_MS = 100.0


async def _prepare(url: str, target: Any) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    try:
        async with conn.transaction():
            model = await conn.fetchval("SELECT name FROM models WHERE id = $1", target)
            incident, _ = await record_incident(
                conn,
                data=IncidentIn(
                    title="Bench incident", category="malfunction", severity="high", models=[model]
                ),
                channel="api",
                reporter_platform_id=None,
                reporter_principal_id=None,
                actor_id=None,
            )
            created = await create_key(
                conn, data=ApiKeyIn(role="admin", name="bench console"), actor_id=None
            )
            opened = await open_session(conn, api_key=created.key, idle=timedelta(hours=1))
        if opened is None:
            raise RuntimeError("the bench key did not open a console session")
        return {"cookie": opened.cookie, "incident": incident.id, "model": model}
    finally:
        await conn.close()


def pages(target: Any, prepared: dict[str, Any]) -> dict[str, str]:
    return {
        "triage queue": "/console/incidents",
        "triage queue, filtered": "/console/incidents?severity=high&q=bench",
        "triage queue, by deadline": "/console/incidents?sort=deadline",
        "triage queue, by severity": "/console/incidents?sort=severity&status=received",
        "incident": f"/console/incidents/{prepared['incident']}",
        "model": f"/console/models/{target}",
        "model, as of": f"/console/models/{target}?as_of={quote(prepared['as_of'])}",
        "models": "/console/models?q=bench/m1",
        "hostings": "/console/hostings",
        "platforms": "/console/platforms",
        "platform view": "/console/platforms/bench-hub",
        "report form": "/report",
    }


def measure(
    url: str,
    setup: dict[str, Any],
    *,
    concurrency: int,
    seconds: int,
    hostings: int = 6_000,
    incidents: int = 3_000,
    decisions: int = 200,
) -> dict[str, Any]:
    target = setup["target"]
    print(
        f"seeding {hostings:,} hostings, {incidents:,} incidents with notes, "
        f"{decisions:,} decisions",
        flush=True,
    )
    seeded = asyncio.run(
        console_seed.seed(
            url, target=target, hostings=hostings, incidents=incidents, decisions=decisions
        )
    )
    prepared = {**asyncio.run(_prepare(url, target)), "as_of": seeded["as_of"]}
    headers = {"Cookie": f"rr_console={prepared['cookie']}"}
    figures: dict[str, Any] = {}
    generator = ""
    with serving(url, REGISTRY_SEALER="false") as (base, _proc):
        for name, path in pages(target, prepared).items():
            get_load(base + path, headers=headers, concurrency=concurrency, seconds=1)
            latencies, statuses, generator = get_load(
                base + path, headers=headers, concurrency=concurrency, seconds=seconds
            )
            if set(statuses) != {200}:
                raise RuntimeError(f"{name}: not every answer was 200: {statuses}")
            summary = history._summary([latency * 1000 for latency in latencies])
            figures[name] = {"path": path, **summary, "under_target": summary["p99_ms"] < 100}
            print(f"  {name:24} p50 {summary['p50_ms']:7.2f} ms  p99 {summary['p99_ms']:7.2f} ms")
    return {
        "benchmark": "console",
        "concurrency": concurrency,
        "seconds": seconds,
        "load_generator": generator,
        "target_p99_ms": TARGET_P99_MS,
        "pages": figures,
        "seeded": seeded,
    }


def report(result: dict[str, Any]) -> None:
    print(f"console pages at {result['concurrency']} people ({result['load_generator']}):")
    for name, page in result["pages"].items():
        mark = "" if page["under_target"] else "  over the 100 ms target"
        print(
            f"  {name:24} p50 {page['p50_ms']:7.2f} ms  p99 {page['p99_ms']:7.2f} ms  "
            f"({page['count']} requests){mark}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--hostings", type=int, default=6_000)
    parser.add_argument("--incidents", type=int, default=3_000)
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with pg_server() as admin_url, fresh_database(admin_url, "rr_bench_console") as url:
        print(f"populating {args.events:,} events over {args.models:,} models", flush=True)
        setup = asyncio.run(history._populate(url, events=args.events, models=args.models))
        result = measure(
            url,
            setup,
            concurrency=args.concurrency,
            seconds=args.seconds,
            hostings=args.hostings,
            incidents=args.incidents,
            decisions=args.decisions,
        )
    result.update(events=args.events, models=args.models)
    written = write_results("console", result)
    report(result)
    print(f"results: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
