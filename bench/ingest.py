"""Benchmark: signed webhook deliveries per second against a live ``serve`` process.

Sets up a fresh database with one platform, its signing secret and ``--models`` hosted
models, starts a real ``serve`` process, then sends it unique, signed deliveries of every
hosting event type in a fixed mix (``bench.deliveries.MIX``: mostly ``model.updated``, with
``model.hosted`` of known and new models, ``model.removed``, ``model.restricted`` and a few
small ``model.downloads``) with the ``wrk`` load generator (Debian package ``wrk``, installed
by ``make bench-tools``; the benchmark stops, naming that target, when it is missing) at 16
and 64 keep-alive connections. The same deliveries then go to the ``bench.floor`` routes,
which answer without doing any work: the ceiling the HTTP stack itself sets on this machine,
and the limit the service's rate is read against. In the same run pgbench measures
PostgreSQL's single-row, one-transaction-each inserts of a delivery row at the same
concurrency, for scale. A profiled run at 64 connections (py-spy, sampling from outside)
splits the service's CPU per delivery by stage (``bench.cpu_split``). Last, it times a few
``model.downloads`` deliveries that each name every model (up to 1,000), one at a time.
Prints each figure with its ratio to the floor, and writes JSON under ``bench/results/``.

    .venv/bin/python -m bench.ingest                 # 15 s per level
    .venv/bin/python -m bench.ingest --seconds 5     # a quick run

Uses ``DATABASE_URL``'s server when set (creating and dropping its own database), else a
private embedded server in a temporary directory. wrk shares the machine with the service
and PostgreSQL, so figures are for this machine as measured; the ratios, taken in one run,
are what compare across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from bench.common import (
    REPO_ROOT,
    RESULTS,
    floor_serving,
    fresh_database,
    instrument,
    pg_bin,
    pg_server,
    serving,
    write_results,
)
from bench.cpu_split import STAGES, Profiler
from bench.deliveries import MIX, SLUG, Signer, exchange, wrk_run
from service.db.pool import init_connection
from service.domain.hostings import record_hosting
from service.domain.models import register_model
from service.domain.platforms import create_platform
from service.domain.secrets import create_secret
from service.domain.vault import Vault, open_vault
from service.schemas.hostings import HostingIn
from service.schemas.models import ModelIn
from service.schemas.platforms import PlatformIn
from service.settings import load_settings

LEVELS = (16, 64)
#: The issue's targets: the service's rate at 64 connections against the framework floor's
#: in the same run, and p99 latency at each level.
TARGET_FLOOR_RATIO = 0.4
TARGET_P99_MS = {16: 20.0, 64: 50.0}
#: Deliveries signed per second of a run: more than the service answers here, so none
#: is sent twice (the floor, which writes nothing, may be sent repeats).
SERVICE_RATE_CEILING = 6000
FLOOR_RATE_CEILING = 1000
WARMUP_SECONDS = 2


async def _setup(url: str, *, models: int) -> str:
    """The platform, its secret and its hostings; returns the secret."""
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    try:
        async with conn.transaction():
            platform = await create_platform(
                conn, data=PlatformIn(slug=SLUG, name="Bench hub", kind="model_hub"), actor_id=None
            )
            # Sealed with the key file the serve processes (started from the repository's
            # root, with this environment) will read.
            settings = load_settings()
            vault = (
                open_vault(settings)
                if settings.secrets_key
                else Vault.load_or_create(REPO_ROOT / settings.secrets_key_path)
            )
            created = await create_secret(conn, slug=SLUG, actor_id=None, vault=vault)
            for i in range(models):
                name = f"ingest/m{i}"
                await register_model(conn, data=ModelIn(name=name), actor_id=None)
                await record_hosting(
                    conn,
                    data=HostingIn(model=name, url=f"https://hub.example/{name}"),
                    platform_id=platform.id,
                    actor_id=None,
                )
        await conn.execute("ANALYZE")
        return created.secret
    finally:
        await conn.close()


def _download_batches(signer: Signer, port: int, *, batches: int = 5) -> dict[str, float]:
    """Latency of ``model.downloads`` deliveries naming every model, sent one at a time."""

    async def send() -> list[float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        latencies: list[float] = []
        try:
            for i in range(batches):
                request = signer.request(signer.downloads(i + 1))
                t0 = time.perf_counter()
                status = await exchange(reader, writer, request)
                if status != 202:
                    raise RuntimeError(f"a download batch was answered {status}")
                latencies.append((time.perf_counter() - t0) * 1000)
        finally:
            writer.close()
        return latencies

    latencies = asyncio.run(send())
    return {
        "counts": min(signer.models, 1000),
        "batches": batches,
        "p50_ms": round(statistics.median(latencies), 1),
        "max_ms": round(max(latencies), 1),
    }


def _pgbench_sql(signer: Signer, platform_id: Any) -> str:
    """One delivery row per transaction: the service's row shape, with a unique id."""
    body = signer.message(1, kind="model.updated")
    headers = json.dumps(
        {
            "content-type": "application/json",
            "webhook-id": "msg_x",
            "webhook-timestamp": "1",
            "webhook-signature": "v1," + "A" * 44,
        }
    )
    # A pgbench script has no bind parameters; every value here is the benchmark's own.
    return (
        "INSERT INTO bench_deliveries (platform_id, delivery_id, source, event_type, "  # noqa: S608
        "body_sha256, body, headers) VALUES ("
        f"'{platform_id}', gen_random_uuid()::text, 'standard', 'model.updated', "
        f"'\\x{hashlib.sha256(body).hexdigest()}'::bytea, '\\x{body.hex()}'::bytea, "
        f"'{headers}'::jsonb);\n"
    )


def _pgbench(url: str, sql: str, *, concurrency: int, seconds: int) -> tuple[list[float], float]:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)
        script = Path(tmp) / "ingest.sql"
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
        out = subprocess.run(cmd, check=True, capture_output=True, cwd=tmp, text=True)  # noqa: S603
        tps = 0.0
        for line in out.stdout.splitlines():
            if line.startswith("tps ="):
                tps = float(line.split()[2])
        latencies: list[float] = []
        for log in Path(tmp).glob("log*"):
            for line in log.read_text().splitlines():
                latencies.append(int(line.split()[2]) / 1000)
    return latencies, tps


def _pg_summary(latencies: list[float], per_second: float) -> dict[str, float]:
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "count": len(latencies),
        "per_second": round(per_second, 1),
        "p50_ms": round(q[49], 2),
        "p99_ms": round(q[98], 2),
    }


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _port(base: str) -> int:
    port = urlsplit(base).port
    if port is None:
        raise RuntimeError(f"{base} has no port")
    return port


def _drive(
    signer: Signer, port: int, pid: int, *, level: int, seconds: int, ceiling: int
) -> dict[str, Any]:
    """One level of load on ``port`` after a warm-up: wrk's figures, with the CPU the
    serving process ``pid`` used per delivery."""
    warmup = wrk_run(signer, port, connections=level, seconds=WARMUP_SECONDS, rate_ceiling=ceiling)
    cpu_before = _cpu_seconds(pid)
    figures = wrk_run(signer, port, connections=level, seconds=seconds, rate_ceiling=ceiling)
    figures["warmup_requests"] = warmup["requests"]
    cpu = _cpu_seconds(pid) - cpu_before
    # The serving process's own CPU per delivery: a figure that depends less on what else
    # the machine is running than the rate.
    figures["cpu_ms_per_delivery"] = round(cpu * 1000 / max(1, figures["requests"]), 3)
    print(f"  {figures}", flush=True)
    return figures


def _batch_sizes(port: int) -> tuple[float, float]:
    """The service's group commit so far, from its ``/metrics``: batches and deliveries."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    found = {"count": 0.0, "sum": 0.0}
    for line in text.splitlines():
        for part in found:
            if line.startswith(f"registry_webhook_batch_size_{part} "):
                found[part] = float(line.split()[-1])
    return found["count"], found["sum"]


def _batched(port: int, before: tuple[float, float], requests: int) -> dict[str, float]:
    """How the deliveries since ``before`` went: the share offered to a group commit (one
    whose hosting does not exist yet then takes the regular path), and the mean batch."""
    count, total = (now - then for now, then in zip(_batch_sizes(port), before, strict=True))
    return {
        "share_offered": round(min(1.0, total / max(1, requests)), 3),
        "mean_batch": round(total / count, 1) if count else 0.0,
    }


def _profiled(signer: Signer, port: int, pid: int, *, seconds: int) -> dict[str, Any]:
    """A run at 64 connections under py-spy: the service's CPU per delivery by stage."""
    profiler = Profiler(pid)
    profiler.start()
    try:
        figures = _drive(
            signer, port, pid, level=LEVELS[-1], seconds=seconds, ceiling=SERVICE_RATE_CEILING
        )
    finally:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        stacks = RESULTS / f"ingest-{stamp}-stacks.txt"
        shares, hot = profiler.stop(keep=stacks)
    each = figures["cpu_ms_per_delivery"]
    return {
        "connections": LEVELS[-1],
        "stacks": str(stacks),
        "hottest": hot,
        "per_second_while_profiled": figures["per_second"],
        "cpu_ms_per_delivery": each,
        "shares": shares,
        "cpu_ms": {stage: round(shares[stage] * each, 3) for stage in STAGES},
    }


def measure(url: str, *, models: int, seconds: int, pool: int) -> dict[str, Any]:
    """Signed deliveries at each concurrency level beside the floor routes and pgbench's
    inserts, on ``url``; the service's CPU split; the latency of a download batch naming
    every model."""
    generator = instrument("wrk")
    print(f"setting up {models} hosted models; load generator {generator}", flush=True)
    secret = asyncio.run(_setup(url, models=models))
    service: dict[int, dict[str, Any]] = {}
    with serving(
        url,
        REGISTRY_SEALER="false",
        REGISTRY_POOL_MAX_SIZE=str(pool),
        REGISTRY_WEBHOOK_RATE_PER_SECOND="1000000",
        REGISTRY_WEBHOOK_BURST="1000000",
    ) as (base, proc):
        port = _port(base)
        signer = Signer(secret, port, models)
        for level in LEVELS:
            print(f"service: {level} connections for {seconds}s", flush=True)
            before = _batch_sizes(port)
            service[level] = _drive(
                signer, port, proc.pid, level=level, seconds=seconds, ceiling=SERVICE_RATE_CEILING
            )
            # (the warm-up's deliveries counted too, hence against all that were sent)
            sent = service[level]["requests"] + service[level].pop("warmup_requests", 0)
            service[level]["group_commit"] = _batched(port, before, sent)
            if service[level]["errors"]["status"] or service[level]["wrapped"]:
                # Still figures, but not of accepted deliveries alone: said, and kept in the
                # results (a 503 is the service shedding load past its pool's wait).
                print("  warning: some deliveries were refused or sent twice", flush=True)
        print(f"service: {LEVELS[-1]} connections for {seconds}s under py-spy", flush=True)
        cpu_split = _profiled(signer, port, proc.pid, seconds=seconds)
        print(f"  {cpu_split}", flush=True)
        print("service: download batches, one at a time", flush=True)
        batch = _download_batches(signer, port)
        print(f"  {batch}", flush=True)

    floor: dict[int, dict[str, dict[str, Any]]] = {level: {} for level in LEVELS}
    for app in ("framework", "bare"):
        with floor_serving(app) as (base, proc):
            for level in LEVELS:
                print(f"floor ({app}): {level} connections for {seconds}s", flush=True)
                floor[level][app] = _drive(
                    signer,
                    _port(base),
                    proc.pid,
                    level=level,
                    seconds=seconds,
                    ceiling=FLOOR_RATE_CEILING,
                )

    async def prepare() -> Any:
        c = await asyncpg.connect(url)
        try:
            await c.execute("CREATE TABLE bench_deliveries (LIKE webhook_deliveries INCLUDING ALL)")
            return await c.fetchval("SELECT id FROM platforms WHERE slug = $1", SLUG)
        finally:
            await c.close()

    platform_id = asyncio.run(prepare())
    sql = _pgbench_sql(signer, platform_id)
    levels: list[dict[str, Any]] = []
    for level in LEVELS:
        print(f"pgbench: {level} clients for {seconds}s", flush=True)
        lat, tps = _pgbench(url, sql, concurrency=level, seconds=seconds)
        pg = _pg_summary(lat, tps)
        svc, framework = service[level], floor[level]["framework"]
        levels.append(
            {
                "connections": level,
                "service": svc,
                "floor": floor[level],
                "pgbench": pg,
                "floor_ratio_of_service": round(svc["per_second"] / framework["per_second"], 3),
                "p99_target_ms": TARGET_P99_MS[level],
                "ratio": round(svc["per_second"] / pg["per_second"], 3),
                "floor_ratio": round(framework["per_second"] / pg["per_second"], 3),
            }
        )
    return {
        "load_generator": generator,
        "mix": dict(MIX),
        "target_floor_ratio": TARGET_FLOOR_RATIO,
        "levels": levels,
        "cpu_split": cpu_split,
        "download_batch": batch,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--pool", type=int, default=16, help="the service's pool size")
    args = parser.parse_args()
    instrument("wrk")

    with pg_server() as admin_url, fresh_database(admin_url, "rr_bench_ingest") as url:
        figures = measure(url, models=args.models, seconds=args.seconds, pool=args.pool)

    result = {
        "benchmark": "ingest",
        "load_average_after": os.getloadavg(),
        "models": args.models,
        "seconds": args.seconds,
        "pool": args.pool,
        "cpus": os.cpu_count(),
        **figures,
    }
    written = write_results("ingest", result)
    report(figures)
    print(f"results: {written}")
    return 0


def report(figures: dict[str, Any]) -> None:
    mix = ", ".join(f"{kind} {weight}" for kind, weight in figures["mix"].items())
    print(f"load generator {figures['load_generator']}; mix per round: {mix}")
    for entry in figures["levels"]:
        s, p = entry["service"], entry["pgbench"]
        f = entry["floor"]["framework"]
        ratio, p99_target = entry["floor_ratio_of_service"], entry["p99_target_ms"]
        print(
            f"{entry['connections']:>3} connections  "
            f"service {s['per_second']:>8.1f}/s  p50 {s['p50_ms']:.1f} ms  p99 {s['p99_ms']:.1f} ms"
            f" (target < {p99_target:.0f}: {'met' if s['p99_ms'] < p99_target else 'NOT met'})"
            f"  {s['cpu_ms_per_delivery']:.3f} ms CPU each"
            f"  {s['group_commit']['share_offered']:.0%} to group commit, mean batch "
            f"{s['group_commit']['mean_batch']}"
            f"  |  {ratio:.2f}x the framework floor"
            + (
                f" (target {figures['target_floor_ratio']}x: "
                f"{'met' if ratio >= figures['target_floor_ratio'] else 'NOT met'})"
                if entry["connections"] == LEVELS[-1]
                else ""
            )
        )
        for app, fl in entry["floor"].items():
            print(
                f"{'':>16}floor ({app}) {fl['per_second']:>8.1f}/s  p50 {fl['p50_ms']:.1f} ms  "
                f"p99 {fl['p99_ms']:.1f} ms  ({fl['cpu_ms_per_delivery']:.3f} ms CPU each)"
            )
        print(
            f"{'':>16}pgbench {p['per_second']:>8.1f}/s  p50 {p['p50_ms']:.1f} ms  "
            f"p99 {p['p99_ms']:.1f} ms  (service {entry['ratio']:.2f}x, "
            f"framework floor {f['per_second'] / p['per_second']:.2f}x)"
        )
    split = figures["cpu_split"]
    parts = "  ".join(
        f"{stage} {split['cpu_ms'][stage]:.3f} ({split['shares'][stage]:.0%})" for stage in STAGES
    )
    print(
        f"service CPU per delivery at {split['connections']} connections, by stage (ms): "
        f"{split['cpu_ms_per_delivery']:.3f} = {parts}"
    )
    print("  hottest service functions (share of samples):")
    for name, share in split["hottest"][:10]:
        print(f"    {share:6.1%}  {name}")
    batch = figures["download_batch"]
    print(
        f"download batch of {batch['counts']} counts: p50 {batch['p50_ms']:.1f} ms, "
        f"max {batch['max_ms']:.1f} ms over {batch['batches']}"
    )


if __name__ == "__main__":
    sys.exit(main())
