"""Benchmark: signed webhook deliveries per second against a live ``serve`` process.

Sets up a fresh database with one platform, its signing secret and ``--models`` hosted
models, starts a real ``serve`` process, then drives unique, signed ``model.updated``
deliveries (each a new revision of one of the models, so each writes a delivery row, a
hosting update and a ledger event) from a small asyncio HTTP/1.1 client at 16 and 64
keep-alive connections, spread over ``--replicas`` service processes (one by default: on
two cores a second replica only adds contention). In the same run, pgbench measures
PostgreSQL's own limit for single-row, one-transaction-each inserts of the same row shape
(a delivery row with its body, headers and unique id) at the same concurrency, and the
same client drives the ``bench.floor`` routes, which answer a delivery without doing any
work: the ceiling the HTTP stack itself sets on this machine. Last, it times a few
``model.downloads`` deliveries that each name every model (up to 1,000), one at a time.
Prints deliveries/s and p50/p99 for each, the ratios to pgbench, and writes JSON under
``bench/results/``.

    .venv/bin/python -m bench.ingest                 # 15 s per level
    .venv/bin/python -m bench.ingest --seconds 5     # a quick run

Uses ``DATABASE_URL``'s server when set (creating and dropping its own database), else a
private embedded server in a temporary directory. The load generator shares the machine
with the service and PostgreSQL, so figures are for this machine as measured.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import msgspec

from bench.common import (
    REPO_ROOT,
    floor_serving,
    fresh_database,
    pg_bin,
    pg_server,
    serving,
    write_results,
)
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

SLUG = "bench-ingest"
LEVELS = (16, 64)
_json = msgspec.json.Encoder()


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


class Signer:
    """Builds unique, signed delivery requests as a Standard Webhooks sender would."""

    def __init__(self, secret: str, port: int, models: int) -> None:
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.host = f"127.0.0.1:{port}"
        self.models = models
        self.n = 0
        self.run = secrets.token_hex(4)

    def body(self, n: int) -> bytes:
        return _json.encode(
            {
                "type": "model.updated",
                "timestamp": datetime.now(UTC).isoformat(),
                "data": {"model": f"ingest/m{n % self.models}", "revision": f"r{self.run}-{n}"},
            }
        )

    def downloads(self, n: int) -> bytes:
        """A ``model.downloads`` naming every model (up to 1,000), each count new."""
        counts = [
            {"model": f"ingest/m{i}", "downloads": n * 1_000_000 + i}
            for i in range(min(self.models, 1000))
        ]
        return _json.encode(
            {
                "type": "model.downloads",
                "timestamp": datetime.now(UTC).isoformat(),
                "data": {"counts": counts},
            }
        )

    def request(self, body: bytes | None = None) -> bytes:
        self.n += 1
        msg_id = f"msg_{self.run}_{self.n}"
        stamp = str(int(time.time()))
        body = self.body(self.n) if body is None else body
        mac = hmac.new(self.key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        head = (
            f"POST /v1/webhooks/{SLUG} HTTP/1.1\r\n"
            f"Host: {self.host}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"webhook-id: {msg_id}\r\n"
            f"webhook-timestamp: {stamp}\r\n"
            f"webhook-signature: v1,{base64.b64encode(mac).decode()}\r\n"
            "\r\n"
        )
        return head.encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _load(
    signer: Signer, ports: list[int], *, concurrency: int, seconds: float, warmup: float = 2.0
) -> tuple[list[float], dict[int, int]]:
    """Latencies (ms) of the measured accepted deliveries, and counts of other answers. The
    connections are spread round robin over ``ports``."""
    latencies: list[float] = []
    failures: dict[int, int] = {}

    async def worker(port: int, start: float, end: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (now := time.perf_counter()) < end:
                request = signer.request()
                t0 = time.perf_counter()
                status = await _exchange(reader, writer, request)
                if status != 202:
                    failures[status] = failures.get(status, 0) + 1
                elif now >= start:
                    latencies.append((time.perf_counter() - t0) * 1000)
        finally:
            writer.close()

    start = time.perf_counter() + warmup
    end = start + seconds
    await asyncio.gather(*(worker(ports[i % len(ports)], start, end) for i in range(concurrency)))
    return latencies, failures


def _download_batches(signer: Signer, port: int, *, batches: int = 5) -> dict[str, float]:
    """Latency of ``model.downloads`` deliveries naming every model, sent one at a time."""

    async def send() -> list[float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        latencies: list[float] = []
        try:
            for i in range(batches):
                request = signer.request(signer.downloads(i + 1))
                t0 = time.perf_counter()
                status = await _exchange(reader, writer, request)
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
    body = signer.body(1)
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


def _summary(latencies: list[float], per_second: float) -> dict[str, float]:
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
    signer: Signer, ports: list[int], pids: list[int], *, level: int, seconds: int
) -> dict[str, float]:
    """One level of load on ``ports``: the summary, with the CPU the ``pids`` used."""
    cpu_before, sent_before = sum(_cpu_seconds(p) for p in pids), signer.n
    lat, refused = asyncio.run(_load(signer, ports, concurrency=level, seconds=seconds))
    cpu = sum(_cpu_seconds(p) for p in pids) - cpu_before
    summary = _summary(lat, len(lat) / seconds)
    summary["refused"] = sum(refused.values())
    # The serving processes' own CPU per delivery (warm-up included): a figure that
    # depends less on what else the machine is running than the rate.
    summary["cpu_ms_per_delivery"] = round(cpu * 1000 / max(1, signer.n - sent_before), 3)
    print(f"  {summary}  refused: {refused}", flush=True)
    return summary


def measure(url: str, *, models: int, seconds: int, pool: int, replicas: int = 1) -> dict[str, Any]:
    """Signed deliveries at each concurrency level beside pgbench's inserts and the floor
    routes, on ``url``; then the latency of a download batch naming every model."""
    levels: list[dict[str, Any]] = []
    print(f"setting up {models} hosted models", flush=True)
    secret = asyncio.run(_setup(url, models=models))
    service: dict[int, dict[str, float]] = {}
    with ExitStack() as stack:
        running = [
            stack.enter_context(
                serving(
                    url,
                    REGISTRY_SEALER="false",
                    REGISTRY_POOL_MAX_SIZE=str(pool),
                    REGISTRY_WEBHOOK_RATE_PER_SECOND="1000000",
                    REGISTRY_WEBHOOK_BURST="1000000",
                )
            )
            for _ in range(replicas)
        ]
        ports = [_port(base) for base, _ in running]
        pids = [proc.pid for _, proc in running]
        signer = Signer(secret, ports[0], models)
        for level in LEVELS:
            print(f"service ({replicas} processes): {level} connections for {seconds}s", flush=True)
            service[level] = _drive(signer, ports, pids, level=level, seconds=seconds)
        print("service: download batches, one at a time", flush=True)
        batch = _download_batches(signer, ports[0])
        print(f"  {batch}", flush=True)

    floor: dict[int, dict[str, dict[str, float]]] = {level: {} for level in LEVELS}
    for app in ("framework", "bare"):
        with floor_serving(app) as (base, proc):
            for level in LEVELS:
                print(f"floor ({app}): {level} connections for {seconds}s", flush=True)
                floor[level][app] = _drive(
                    signer, [_port(base)], [proc.pid], level=level, seconds=seconds
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
    for level in LEVELS:
        print(f"pgbench: {level} clients for {seconds}s", flush=True)
        lat, tps = _pgbench(url, sql, concurrency=level, seconds=seconds)
        pg = _summary(lat, tps)
        svc = service[level]
        levels.append(
            {
                "connections": level,
                "service": svc,
                "pgbench": pg,
                "floor": floor[level],
                "ratio": round(svc["per_second"] / pg["per_second"], 3),
                "floor_ratio": round(floor[level]["framework"]["per_second"] / pg["per_second"], 3),
            }
        )
    return {"levels": levels, "download_batch": batch}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--pool", type=int, default=16, help="each replica's pool size")
    parser.add_argument("--replicas", type=int, default=1, help="service processes")
    args = parser.parse_args()

    with pg_server() as admin_url, fresh_database(admin_url, "rr_bench_ingest") as url:
        figures = measure(
            url, models=args.models, seconds=args.seconds, pool=args.pool, replicas=args.replicas
        )

    result = {
        "benchmark": "ingest",
        "load_average_after": os.getloadavg()[0],
        "event": "model.updated",
        "models": args.models,
        "seconds": args.seconds,
        "pool": args.pool,
        "replicas": args.replicas,
        "cpus": os.cpu_count(),
        **figures,
    }
    written = write_results("ingest", result)
    report(figures)
    print(f"results: {written}")
    return 0


def report(figures: dict[str, Any]) -> None:
    for entry in figures["levels"]:
        s, p = entry["service"], entry["pgbench"]
        print(
            f"{entry['connections']:>3} connections  "
            f"service {s['per_second']:>8.1f}/s  p50 {s['p50_ms']:.1f} ms  p99 {s['p99_ms']:.1f} ms"
            f"  ({s['cpu_ms_per_delivery']:.2f} ms CPU each)"
            f"  |  pgbench {p['per_second']:>8.1f}/s  p50 {p['p50_ms']:.1f} ms  "
            f"p99 {p['p99_ms']:.1f} ms  |  ratio {entry['ratio']:.2f}x"
        )
        for app, f in entry["floor"].items():
            print(
                f"{'':>16}floor ({app}) {f['per_second']:>8.1f}/s  p50 {f['p50_ms']:.1f} ms  "
                f"p99 {f['p99_ms']:.1f} ms  ({f['cpu_ms_per_delivery']:.3f} ms CPU each)  "
                f"|  ratio {f['per_second'] / p['per_second']:.2f}x"
            )
    batch = figures["download_batch"]
    print(
        f"download batch of {batch['counts']} counts: p50 {batch['p50_ms']:.1f} ms, "
        f"max {batch['max_ms']:.1f} ms over {batch['batches']}"
    )


if __name__ == "__main__":
    sys.exit(main())
