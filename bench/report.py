"""Benchmark: the compliance report, each record read as the ledger held it at ``to``.

Populates the ledger (``bench.history``) and, through the domain functions, thousands of
hostings, incidents in every status and decisions with their ledger states
(``bench.console_seed``); then serves the app and loads the report with the ``hey`` load
generator, one request at a time: for the whole registry over the last 30 days, for one
platform, and, as the limit measured in the same run, for a period that ends before any
record existed (the report's fixed cost: the same queries, nothing in scope). Figures are
p50/p99 and their ratios to that floor and to the 5-second target ("seconds, not
minutes").

    .venv/bin/python -m bench.report --events 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg

from bench import console_seed, history
from bench.common import fresh_database, get_load, pg_server, serving, write_results
from service.db.pool import init_connection
from service.domain.keys import create_key
from service.schemas.keys import ApiKeyIn

TARGET_P99_MS = 5000.0


async def _regulator_key(url: str) -> str:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    try:
        async with conn.transaction():
            created = await create_key(
                conn, data=ApiKeyIn(role="regulator", name="bench report"), actor_id=None
            )
        return created.key
    finally:
        await conn.close()


def measure(url: str, setup: dict[str, Any], *, seconds: int, **sizes: int) -> dict[str, Any]:
    before_seed = datetime.now(UTC) - timedelta(minutes=1)
    print(f"seeding {sizes}", flush=True)
    seeded = asyncio.run(console_seed.seed(url, target=setup["target"], **sizes))
    key = asyncio.run(_regulator_key(url))
    now = datetime.now(UTC) + timedelta(seconds=1)
    month = {"from": (now - timedelta(days=30)).isoformat(), "to": now.isoformat()}
    periods = {
        "floor: a period before any record": {
            "from": (before_seed - timedelta(days=30)).isoformat(),
            "to": before_seed.isoformat(),
        },
        "whole registry, 30 days": month,
        "one platform, 30 days": {**month, "platform": "bench-hub"},
    }
    headers = {"Authorization": f"Bearer {key}"}
    figures: dict[str, Any] = {}
    generator = ""
    with serving(url, REGISTRY_SEALER="false") as (base, _p):
        for name, params in periods.items():
            target = f"{base}/v1/reports/compliance?{urlencode(params)}"
            get_load(target, headers=headers, concurrency=1, seconds=1)
            latencies, statuses, generator = get_load(
                target, headers=headers, concurrency=1, seconds=seconds
            )
            if set(statuses) != {200}:
                raise RuntimeError(f"{name}: not every answer was 200: {statuses}")
            figures[name] = history._summary([latency * 1000 for latency in latencies])
    floor = figures["floor: a period before any record"]["p50_ms"]
    for summary in figures.values():
        summary["p50_over_floor"] = round(summary["p50_ms"] / floor, 2)
        summary["p99_over_target"] = round(summary["p99_ms"] / TARGET_P99_MS, 4)
    return {
        "benchmark": "report",
        "seconds": seconds,
        "load_generator": generator,
        "target_p99_ms": TARGET_P99_MS,
        "periods": figures,
        "seeded": seeded,
    }


def report(result: dict[str, Any]) -> None:
    print(f"compliance report, one request at a time ({result['load_generator']}):")
    for name, p in result["periods"].items():
        print(
            f"  {name:36} p50 {p['p50_ms']:8.1f} ms  p99 {p['p99_ms']:8.1f} ms  "
            f"p50/floor {p['p50_over_floor']:5.2f}  p99/target {p['p99_over_target']:.3f}  "
            f"({p['count']} requests)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--hostings", type=int, default=6_000)
    parser.add_argument("--incidents", type=int, default=3_000)
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with pg_server() as admin_url, fresh_database(admin_url, "rr_bench_report") as url:
        print(f"populating {args.events:,} events over {args.models:,} models", flush=True)
        setup = asyncio.run(history._populate(url, events=args.events, models=args.models))
        result = measure(
            url,
            setup,
            seconds=args.seconds,
            hostings=args.hostings,
            incidents=args.incidents,
            decisions=args.decisions,
        )
    result.update(events=args.events, models=args.models)
    written = write_results("report", result)
    report(result)
    print(f"results: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
