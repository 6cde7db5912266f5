"""The load benchmark, in one command: ingest, history reads and exports on one database.

Populates a fresh database with ``--events`` ledger events (default five million, in
lineage chains of models), then measures, each beside PostgreSQL's own limit in the same
run:

- history reads (``GET /v1/models/{id}/history``, ``hey``) against pgbench running the same
  SELECT;
- signed webhook deliveries of every hosting event type (``wrk``) against a Litestar route
  that does no work (the framework's floor) and pgbench's single-row inserts;
- streaming exports of every event, CSV and JSON lines, against psql's ``COPY``, with the
  service's peak resident memory;
- the web console's pages, signed in, each page's p50 and p99 against a 100 ms target.

The load generators ``hey`` and ``wrk`` (``make bench-tools``) are checked first: the run
stops, naming that target, when one is missing. Prints each figure with its ratio and
writes all of them as one JSON document under ``bench/results/`` so runs can be compared.

    .venv/bin/python -m bench                                  # the full run
    .venv/bin/python -m bench --events 20000 --seconds 1 --models 200    # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

from bench import console, export, history, ingest
from bench.common import INSTRUMENTS, fresh_database, instrument, pg_server, write_results


def run(*, events: int, models: int, seconds: int, concurrency: int) -> dict[str, Any]:
    # Every load generator is checked before the long population, not after it.
    generators = [instrument(name) for name in INSTRUMENTS]
    started = time.monotonic()
    with pg_server() as admin_url, fresh_database(admin_url, "rr_bench") as url:
        print(f"populating {events:,} events over {models:,} models", flush=True)
        setup = asyncio.run(history._populate(url, events=events, models=models))
        reads = history.measure(url, setup, concurrency=concurrency, seconds=seconds)
        writes = ingest.measure(url, models=min(models, 1000), seconds=seconds, pool=16)
        exports = export.measure(url)
        pages = console.measure(url, setup, concurrency=4, seconds=seconds)
    return {
        "benchmark": "all",
        "events": events,
        "models": models,
        "seconds_per_phase": seconds,
        "cpus": os.cpu_count(),
        "load_average_after": os.getloadavg()[0],
        "wall_seconds": round(time.monotonic() - started, 1),
        "load_generators": generators,
        "history": reads,
        "ingest": writes,
        "export": exports,
        "console": pages,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=15, help="per measured phase")
    parser.add_argument("--concurrency", type=int, default=16, help="for the history reads")
    args = parser.parse_args()
    results = run(
        events=args.events,
        models=args.models,
        seconds=args.seconds,
        concurrency=args.concurrency,
    )
    written = write_results("all", results)
    print("\nhistory reads")
    history.report(results["history"])
    print("\ningest")
    ingest.report(results["ingest"])
    print("\nexports")
    for fmt, figures in results["export"]["formats"].items():
        print(
            f"{fmt:5}  service {figures['service_rows_per_s']:>10,} rows/s  "
            f"COPY {figures['postgres_copy_rows_per_s']:>10,} rows/s  "
            f"ratio {figures['ratio']:.2f}  peak RSS {figures['rss_peak_mib']} MiB"
        )
    print()
    console.report(results["console"])
    print(f"\nresults: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
