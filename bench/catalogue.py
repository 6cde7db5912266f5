"""Benchmark: a platform's whole catalogue synced through a live ``serve`` process, beside
PostgreSQL's own COPY of the same rows into the same table, in the same run.

Sets up a fresh database with one platform and its signing secret, writes an NDJSON
catalogue of ``--hostings`` lines (each a new model, with revision, licence, downloads and a
model card), starts a real ``serve`` process with the sealer on, and sends the catalogue
three times over HTTP: first (every model registered and hosted, two ledger events a line),
again unchanged (nothing written), and with 1% of the lines changed. The service's resident
memory is sampled throughout (its peak in each phase is reported), the machine's load
average is noted before and after each phase (other work on the machine moves every
figure), and after the first sync the time until the sealer has sealed every event of it is
measured. Then ``psql``'s ``\\copy`` (from the embedded server's
package) loads the same rows into ``hostings`` for a second platform: the rate the syncs
are compared with. Last, the first sync's write set (its models, its hostings and their
ledger events, exported with COPY TO once it was sealed) is loaded with ``\\copy`` into a
freshly migrated database holding the same platforms, in one transaction: the least a
sync in one transaction must pay on this server to write what a first sync writes (a model,
a hosting and two events a line), reported beside the others as its ratio to COPY's rate;
and the same
write set loaded by two ``\\copy`` sessions at once, each with half the models and their
hostings and events: the same floor for a sync applied, as the service applies it, in two
parts at once (``REGISTRY_CATALOGUE_PARTS``).

    .venv/bin/python -m bench.catalogue                     # 1,000,000 hostings
    .venv/bin/python -m bench.catalogue --hostings 100000   # a quicker run

Uses ``DATABASE_URL``'s server when set (creating and dropping its own database), else a
private embedded server in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import msgspec

from bench.common import REPO_ROOT, fresh_database, pg_bin, pg_server, write_results
from service.db.pool import init_connection
from service.domain.platforms import create_platform
from service.domain.secrets import create_secret
from service.domain.vault import Vault, open_vault
from service.schemas.platforms import PlatformIn
from service.settings import load_settings

SLUG = "bench-catalogue"
COPY_SLUG = "bench-copy"
_json = msgspec.json.Encoder()


async def _setup(url: str) -> str:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    try:
        async with conn.transaction():
            for slug in (SLUG, COPY_SLUG):
                await create_platform(
                    conn, data=PlatformIn(slug=slug, name=slug, kind="model_hub"), actor_id=None
                )
            settings = load_settings()
            vault = (
                open_vault(settings)
                if settings.secrets_key
                else Vault.load_or_create(REPO_ROOT / settings.secrets_key_path)
            )
            created = await create_secret(conn, slug=SLUG, actor_id=None, vault=vault)
        return created.secret
    finally:
        await conn.close()


def _line(run: str, i: int, revision: str) -> dict[str, Any]:
    model = f"cat{run}/m{i}"
    return {
        "model": model,
        "url": f"https://hub.example/{model}",
        "revision": revision,
        "licence": "apache-2.0",
        "downloads": i,
        "documentation": {"model_card": {"present": True}},
    }


def _write(path: Path, run: str, n: int, *, changed_every: int = 0) -> None:
    with path.open("wb") as f:
        for i in range(n):
            revision = "r2" if changed_every and i % changed_every == 0 else "r1"
            f.write(_json.encode(_line(run, i, revision)) + b"\n")


@contextmanager
def _serving(url: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A live ``serve`` with the sealer on, given minutes to start: on two shared cores
    under load, start-up alone has taken longer than a minute."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REGISTRY_PORT": str(port),
        "REGISTRY_LOG_LEVEL": "WARNING",
        "REGISTRY_SEALER": "true",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError("serve exited before it was ready")
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not become ready in 300 s")
            time.sleep(0.5)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class _Sampler:
    """The service's peak resident memory while it runs, and within each phase."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = self.phase_peak = _rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = _rss_kib(self.pid)
            self.peak = max(self.peak, rss)
            self.phase_peak = max(self.phase_peak, rss)
            time.sleep(0.05)

    def end_phase(self) -> float:
        """The peak since the last phase ended, in MiB; starts the next phase."""
        peak, self.phase_peak = self.phase_peak, _rss_kib(self.pid)
        return round(peak / 1024, 1)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak / 1024, 1)


def _parts(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while part := f.read(1024 * 1024):
            yield part


def _sync(base: str, secret: str, path: Path) -> dict[str, Any]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id = f"bench_{uuid.uuid4().hex}"
    stamp = str(int(time.time()))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode(), hashlib.sha256)
    for part in _parts(path):
        mac.update(part)
    started = time.perf_counter()
    r = httpx.put(
        f"{base}/v1/platforms/{SLUG}/catalogue",
        content=_parts(path),
        headers={
            "content-type": "application/x-ndjson",
            "content-length": str(path.stat().st_size),
            "webhook-id": msg_id,
            "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
        },
        timeout=httpx.Timeout(60.0, read=7200.0),
    )
    elapsed = time.perf_counter() - started
    r.raise_for_status()
    summary = r.json()
    return {
        "seconds": round(elapsed, 2),
        **{k: summary[k] for k in ("added", "changed", "unchanged", "registered", "events")},
    }


async def _sealed_after(url: str, started: float, limit: float) -> float | None:
    """Seconds from ``started`` until every event so far is sealed (None: not within limit)."""
    conn = await asyncpg.connect(url)
    try:
        target = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM events")
        while time.perf_counter() - started < limit:
            sealed = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM ledger_leaves")
            if sealed >= target:
                return round(time.perf_counter() - started, 2)
            await asyncio.sleep(0.5)
        return None
    finally:
        await conn.close()


async def _copy_rows(url: str, run: str, csv_path: Path) -> None:
    """The same hostings as rows of ``hostings``, for the other platform, as CSV."""
    conn = await asyncpg.connect(url)
    try:
        platform_id = await conn.fetchval("SELECT id FROM platforms WHERE slug = $1", COPY_SLUG)
        with csv_path.open("wb") as f:
            await conn.copy_from_query(
                "SELECT m.id, $1::uuid, 'https://hub.example/' || m.name, 'r1', 'apache-2.0',"
                " substring(m.name from '/m([0-9]+)$')::bigint, now(), true, m.name"
                " FROM models m WHERE m.name LIKE $2",
                platform_id,
                f"cat{run}/%",
                output=f,
                format="csv",
            )
    finally:
        await conn.close()


def _psql(url: str, *commands: str) -> float:
    """Seconds ``psql`` takes to run ``commands``, in one transaction."""
    parts = urlsplit(url)
    args = [arg for command in commands for arg in ("-c", command)]
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - PostgreSQL's own client
        [pg_bin("psql"), "-v", "ON_ERROR_STOP=1", "-q", "-1", "-d", url, *args],
        check=True,
        env={"PGPASSWORD": parts.password or ""},
    )
    return time.perf_counter() - started


def _psql_copy(url: str, csv_path: Path) -> float:
    return _psql(
        url,
        "\\copy hostings (model_id, platform_id, url, revision, licence, downloads, "
        f"downloads_at, model_card_present, name) FROM '{csv_path}' CSV",
    )


#: What a first sync writes, table by table in the order they load (a model before its
#: hostings and events), with the columns it gives: the events' sequence numbers and
#: recording times are the database's, as for the sync.
_WRITE_SET = {
    "models": (
        "id, name, provider, modalities, tasks, base_model_id, derivation, weights_openness, "
        "code_openness, data_openness, model_card_openness, created_at, updated_at"
    ),
    "hostings": (
        "id, model_id, platform_id, external_id, url, revision, licence, gated, disabled, "
        "status, downloads, downloads_at, model_card_present, model_card_url, "
        "safety_testing_present, safety_testing_url, risk_analysis_present, "
        "risk_analysis_url, use_guidance_present, use_guidance_url, created_at, updated_at, "
        "name, purl"
    ),
    "events": (
        "stage, kind, subject_type, subject_id, model_id, platform_id, actor_id, occurred_at, "
        "payload"
    ),
}
_PLATFORMS = "id, slug, name, kind, created_at, updated_at, purl_type"


# The write set as the first sync wrote it, each table in its order of insertion.
_EXPORT = {
    "platforms": "SELECT id, slug, name, kind, created_at, updated_at, purl_type FROM platforms",
    "models": """
SELECT id, name, provider, modalities, tasks, base_model_id, derivation, weights_openness,
       code_openness, data_openness, model_card_openness, created_at, updated_at
FROM models WHERE name LIKE $1 ORDER BY id""",
    "hostings": """
SELECT id, model_id, platform_id, external_id, url, revision, licence, gated, disabled, status,
       downloads, downloads_at, model_card_present, model_card_url, safety_testing_present,
       safety_testing_url, risk_analysis_present, risk_analysis_url, use_guidance_present,
       use_guidance_url, created_at, updated_at, name, purl
FROM hostings WHERE platform_id = $1 ORDER BY id""",
    "events": """
SELECT stage, kind, subject_type, subject_id, model_id, platform_id, actor_id, occurred_at,
       payload
FROM events WHERE seq > $1 ORDER BY seq""",
}


async def _export_write_set(
    url: str, run: str, after_seq: int, tmp: Path
) -> tuple[dict[str, Path], dict[str, int]]:
    """The first sync's models, hostings and events (those after ``after_seq``), each in
    the order it wrote them, and the platforms they refer to, as CSV files; with the number
    of rows of each of the first three."""
    conn = await asyncpg.connect(url)
    try:
        platform_id = await conn.fetchval("SELECT id FROM platforms WHERE slug = $1", SLUG)
        queries = {
            "platforms": (_EXPORT["platforms"], ()),
            "models": (_EXPORT["models"], (f"cat{run}/%",)),
            "hostings": (_EXPORT["hostings"], (platform_id,)),
            "events": (_EXPORT["events"], (after_seq,)),
        }
        paths, rows = {}, {}
        for table, (query, args) in queries.items():
            paths[table] = tmp / f"write-set-{table}.csv"
            with paths[table].open("wb") as f:
                status = await conn.copy_from_query(query, *args, output=f, format="csv")
            if table in _WRITE_SET:
                rows[table] = int(status.split()[-1])
        return paths, rows
    finally:
        await conn.close()


def _write_set_copy(
    admin_url: str, platforms: Path, parts: list[dict[str, Path]], *, database: str
) -> float:
    """Seconds ``\\copy`` takes to load the write set into a freshly migrated database
    holding its platforms: each of ``parts`` in its own session and transaction, all at
    once (the whole write set as one part: one session)."""
    with fresh_database(admin_url, database) as url:
        _psql(url, f"\\copy platforms ({_PLATFORMS}) FROM '{platforms}' CSV")
        commands = [
            [f"\\copy {t} ({columns}) FROM '{part[t]}' CSV" for t, columns in _WRITE_SET.items()]
            for part in parts
        ]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(parts)) as sessions:
            list(sessions.map(lambda c: _psql(url, *c), commands))
        return time.perf_counter() - started


def _halves(paths: dict[str, Path]) -> list[dict[str, Path]]:
    """The write set in two halves, each with half the models and their hostings and
    events, streamed line by line (no line of these CSV files holds a newline)."""
    with paths["models"].open("rb") as f:
        half = sum(1 for _ in f) // 2
    first: set[bytes] = set()
    halves: list[dict[str, Path]] = [{}, {}]
    # The model id's field in each table's lines (models: its own id).
    fields = {"models": 0, "hostings": 1, "events": 4}
    for table, field in fields.items():
        outs = [paths[table].with_name(f"half{i}-{table}.csv") for i in (0, 1)]
        with paths[table].open("rb") as src, outs[0].open("wb") as a, outs[1].open("wb") as b:
            for n, line in enumerate(src):
                model_id = line.split(b",", field + 1)[field]
                if table == "models" and n < half:
                    first.add(model_id)
                (a if model_id in first or not model_id else b).write(line)
        for i in (0, 1):
            halves[i][table] = outs[i]
    return halves


def _write_set_copy_two_sessions(admin_url: str, paths: dict[str, Path]) -> float:
    """Seconds two ``\\copy`` sessions take, at once, to load a half of the write set each."""
    halves = _halves(paths)
    try:
        return _write_set_copy(
            admin_url, paths["platforms"], halves, database="bench_catalogue_floor2"
        )
    finally:
        for half in halves:
            for path in half.values():
                path.unlink()


def _load() -> list[float]:
    """The machine's load averages (1, 5, 15 minutes): the syncs share its cores."""
    return [round(x, 2) for x in os.getloadavg()]


def _timed(title: str, run: Callable[[], float]) -> dict[str, Any]:
    """The seconds ``run`` reports, announced by ``title``, with the load before and after."""
    print(title, flush=True)
    load_before = _load()
    seconds = run()
    return {"seconds": round(seconds, 2), "load_before": load_before, "load_after": _load()}


def _phase(sampler: _Sampler, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A sync, with the load before and after it and the service's peak memory during it."""
    load_before = _load()
    sampler.end_phase()
    result = run()
    return {
        **result,
        "rss_peak_mib": sampler.end_phase(),
        "load_before": load_before,
        "load_after": _load(),
    }


async def _last_seq(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM events"))
    finally:
        await conn.close()


def measure(url: str, admin_url: str, *, hostings: int, seal_limit: float) -> dict[str, Any]:
    run = secrets.token_hex(3)
    secret = asyncio.run(_setup(url))
    tmp = Path(tempfile.mkdtemp(prefix="rr-bench-catalogue-"))
    first_path, changed_path = tmp / "catalogue.ndjson", tmp / "changed.ndjson"
    _write(first_path, run, hostings)
    _write(changed_path, run, hostings, changed_every=100)
    results: dict[str, Any] = {"hostings": hostings, "bytes": first_path.stat().st_size}
    with _serving(url) as (base, proc):
        sampler = _Sampler(proc.pid)
        results["rss_idle_mib"] = round(sampler.peak / 1024, 1)
        print(f"first sync of {hostings} hostings", flush=True)
        before_first = asyncio.run(_last_seq(url))
        results["first"] = _phase(sampler, lambda: _sync(base, secret, first_path))
        sealing = time.perf_counter()
        results["sealed_seconds_after_first"] = asyncio.run(_sealed_after(url, sealing, seal_limit))
        results["rss_peak_mib_sealing"] = sampler.end_phase()
        write_set, write_set_rows = asyncio.run(_export_write_set(url, run, before_first, tmp))
        print("second, identical sync", flush=True)
        results["second"] = _phase(sampler, lambda: _sync(base, secret, first_path))
        print("sync with 1% changed", flush=True)
        results["one_percent"] = _phase(sampler, lambda: _sync(base, secret, changed_path))
        results["rss_peak_mib"] = sampler.stop()
    csv_path = tmp / "copy.csv"
    asyncio.run(_copy_rows(url, run, csv_path))
    results["copy"] = _timed(
        "PostgreSQL's COPY of the same rows", lambda: _psql_copy(url, csv_path)
    )
    copy_rate = hostings / results["copy"]["seconds"]
    results["copy"]["rows_per_second"] = round(copy_rate)
    results["write_set_copy"] = _timed(
        "PostgreSQL's COPY of the first sync's write set",
        lambda: _write_set_copy(
            admin_url, write_set["platforms"], [write_set], database="bench_catalogue_floor"
        ),
    )
    results["write_set_copy"]["rows"] = write_set_rows
    results["write_set_copy_two_sessions"] = _timed(
        "the same write set on two sessions at once",
        lambda: _write_set_copy_two_sessions(admin_url, write_set),
    )
    for phase in (
        "first",
        "second",
        "one_percent",
        "write_set_copy",
        "write_set_copy_two_sessions",
    ):
        rate = hostings / results[phase]["seconds"]
        results[phase]["rows_per_second"] = round(rate)
        results[phase]["ratio_to_copy"] = round(rate / copy_rate, 3)
    for path in (first_path, changed_path, csv_path, *write_set.values()):
        path.unlink()
    tmp.rmdir()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hostings", type=int, default=1_000_000)
    parser.add_argument("--seal-limit", type=float, default=1800.0)
    args = parser.parse_args()
    with pg_server() as admin_url, fresh_database(admin_url, "bench_catalogue") as url:
        results = measure(url, admin_url, hostings=args.hostings, seal_limit=args.seal_limit)
    for phase in ("first", "second", "one_percent"):
        f = results[phase]
        print(
            f"{phase:12} {f['seconds']:8.2f} s  {f['rows_per_second']:8} rows/s  "
            f"ratio to COPY {f['ratio_to_copy']:.3f}  events {f['events']}  "
            f"RSS peak {f['rss_peak_mib']} MiB  load {f['load_before'][0]} -> {f['load_after'][0]}"
        )
    c = results["copy"]
    print(
        f"COPY         {c['seconds']:8.2f} s  {c['rows_per_second']:8} rows/s  "
        f"load {c['load_before'][0]} -> {c['load_after'][0]}"
    )
    w = results["write_set_copy"]
    print(
        f"write-set COPY {w['seconds']:6.2f} s  ratio to COPY {w['ratio_to_copy']:.3f}  "
        f"({', '.join(f'{n} {t}' for t, n in w['rows'].items())})  "
        f"load {w['load_before'][0]} -> {w['load_after'][0]}"
    )
    t = results["write_set_copy_two_sessions"]
    print(
        f"on two sessions {t['seconds']:5.2f} s  ratio to COPY {t['ratio_to_copy']:.3f}  "
        f"load {t['load_before'][0]} -> {t['load_after'][0]}"
    )
    print(
        f"service RSS {results['rss_idle_mib']} -> {results['rss_peak_mib']} MiB; "
        f"first sync sealed {results['sealed_seconds_after_first']} s after its answer"
    )
    print(f"results: {write_results('catalogue', results)}")


if __name__ == "__main__":
    main()
