"""Every way the pool can fail to give a connection is one error, ``Unavailable``: a 503
problem for a request, a false readiness, a skipped probe, and a retry (not a crash) for
the background workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest

from service.app import create_app
from service.db.pool import acquire, connection, create_pool
from service.domain.checkpoints import load_or_create_signer
from service.domain.delivery_worker import WorkerConfig, run_delivery_worker
from service.domain.exports import ExportFilters, start_export
from service.domain.sealer import run_sealer
from service.errors import Unavailable
from service.metrics import REGISTRY
from service.settings import Settings, load_settings
from tests.conftest import bearer, make_key

#: Nothing listens on port 1: every connection attempt is refused at once.
NOWHERE = "postgresql://nobody@127.0.0.1:1/none"


@pytest.fixture
async def dead_pool() -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(NOWHERE, min_size=0, max_size=1)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
async def full_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of one connection, held for the whole test."""
    pool = await create_pool(
        load_settings({}, database_url=database_url, pool_min_size=1, pool_max_size=1),
        database_url,
    )
    held = await pool.acquire()
    yield pool
    await pool.release(held)
    pool.terminate()


async def test_a_refused_exhausted_or_closed_pool_is_unavailable(
    dead_pool: asyncpg.Pool, full_pool: asyncpg.Pool, database_url: str
) -> None:
    with pytest.raises(Unavailable):
        await acquire(dead_pool, timeout=1)
    with pytest.raises(Unavailable):
        async with connection(full_pool, timeout=0.1):
            pass
    closed = await create_pool(load_settings({}, database_url=database_url), database_url)
    await closed.close()
    with pytest.raises(Unavailable):
        async with connection(closed, timeout=1):
            pass


async def test_an_export_that_cannot_get_a_connection_is_unavailable(
    full_pool: asyncpg.Pool,
) -> None:
    with pytest.raises(Unavailable):
        await start_export(
            full_pool,
            dataset="models",
            fmt="csv",
            filters=ExportFilters(),
            seconds=5,
            acquire_timeout=0.1,
        )


def _probe_failures() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.name == "registry_metrics_probe_failures_total"
    )


async def test_requests_readiness_and_metrics_without_a_database(
    settings: Settings, dead_pool: asyncpg.Pool
) -> None:
    app = create_app(settings, pool=dead_pool)
    transport = httpx.ASGITransport(app=cast("Any", app))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as c:
        # An authenticated request: the key cannot even be checked.
        r = await c.get("/v1/platforms", headers={"Authorization": "Bearer rk_anything"})
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert int(r.headers["retry-after"]) >= 1
        # Readiness answers in its own shape, not as an error.
        r = await c.get("/readyz")
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == {"status": "unavailable"}
        assert int(r.headers["retry-after"]) >= 1
        # The scrape still answers; each probe is counted as failed.
        before = _probe_failures()
        r = await c.get("/metrics")
        assert r.status_code == 200
        assert _probe_failures() > before


async def test_the_workers_keep_retrying_while_the_database_is_away(
    settings: Settings, dead_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    stop = asyncio.Event()
    signer = load_or_create_signer(tmp_path / "checkpoint.pem", name="registry.test")
    config = WorkerConfig(poll_interval=0.05, sweep_interval=0.05)
    async with httpx.AsyncClient() as http:
        workers = [
            asyncio.create_task(
                run_sealer(
                    dead_pool,
                    signer=signer,
                    batch_size=10,
                    interval=0.05,
                    gap_grace=1.0,
                    stop=stop,
                )
            ),
            asyncio.create_task(run_delivery_worker(dead_pool, http, config, stop=stop)),
        ]
        await asyncio.sleep(0.5)
        assert not any(w.done() for w in workers), [w.exception() for w in workers if w.done()]
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), timeout=5)


async def test_a_statement_past_its_deadline_is_a_503_and_the_log_names_the_timeout(
    database_url: str, pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    """A statement the database does not answer in time, in a write's transaction, closes
    its connection: the request is a 503 (not a 500 for the ROLLBACK that can no longer
    run), and the warning names the timeout."""
    settings = load_settings({}, database_url=database_url, database_answer_seconds=0.3)
    own = await create_pool(settings, database_url)
    key = await make_key(pool, "admin")
    blocker = await asyncpg.connect(database_url)
    held = blocker.transaction()
    await held.start()
    try:
        # A change reads the hosting in its transaction: held here, the statement waits past
        # its deadline.
        await blocker.execute("LOCK TABLE hostings IN ACCESS EXCLUSIVE MODE")
        transport = httpx.ASGITransport(app=cast("Any", create_app(settings, pool=own)))
        async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as c:
            with caplog.at_level("WARNING", logger="service.api.problems"):
                r = await c.patch(
                    "/v1/hostings/01900000-0000-7000-8000-000000000000",
                    json={"downloads": 1},
                    headers=bearer(key),
                )
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        # The timeout itself, not the failed ROLLBACK on the connection it closed.
        assert "database unavailable: TimeoutError" in caplog.text
    finally:
        await held.rollback()
        await blocker.close()
        await own.close()
