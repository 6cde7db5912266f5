"""A report reads a whole period, and may rightly take longer than the pool's answer
timeout, which is there to tell a hung database: its statements wait for PostgreSQL's own
``statement_timeout`` instead, on every path that builds one (the API in each format, the
dashboard, a frozen snapshot)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import asyncpg
import httpx
import msgspec
import pytest

from service.app import create_app
from service.db.pool import create_pool
from service.domain.console_sessions import open_session
from service.settings import Settings
from tests.conftest import bearer, make_key

PERIOD = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}
#: The pool's answer timeout in these tests, and how long the incidents stay locked.
ANSWER, LOCKED = 0.3, 1.2


@pytest.fixture
async def impatient(settings: Settings, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The service with a pool that counts a statement unanswered for 0.3 s as hung."""
    quick = msgspec.structs.replace(settings, database_answer_seconds=ANSWER)
    pool = await create_pool(quick, database_url)
    try:
        app = create_app(quick, pool=pool)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=cast("Any", app)), base_url="http://registry.test"
        ) as client:
            yield client
    finally:
        await pool.close()


async def _while_incidents_are_locked(database_url: str, request: Any) -> httpx.Response:
    """``request()`` while another transaction holds the incidents for ``LOCKED`` seconds:
    a statement reading them answers only then."""
    holder = await asyncpg.connect(database_url)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("LOCK TABLE incidents IN ACCESS EXCLUSIVE MODE")
        pending = asyncio.create_task(request())
        await asyncio.sleep(LOCKED)
        await tx.rollback()
        return cast("httpx.Response", await pending)
    finally:
        await holder.close()


@pytest.mark.parametrize("fmt", ["application/json", "text/csv"])
async def test_a_slow_report_is_answered_not_taken_for_an_outage(
    impatient: httpx.AsyncClient, pool: asyncpg.Pool, database_url: str, fmt: str
) -> None:
    regulator = {**bearer(await make_key(pool, "regulator")), "Accept": fmt}
    r = await _while_incidents_are_locked(
        database_url,
        lambda: impatient.get("/v1/reports/compliance", params=PERIOD, headers=regulator),
    )
    assert r.status_code == 200, r.text
    # The same pool still takes a statement unanswered past its answer timeout elsewhere
    # for an outage.
    admin = bearer(await make_key(pool, "admin"))
    r = await _while_incidents_are_locked(
        database_url, lambda: impatient.get("/v1/incidents", params={"limit": 1}, headers=admin)
    )
    assert r.status_code == 503, r.text


async def test_a_slow_dashboard_is_answered(
    impatient: httpx.AsyncClient, pool: asyncpg.Pool, database_url: str
) -> None:
    async with pool.acquire() as c:
        opened = await open_session(
            cast("asyncpg.Connection", c),
            api_key=await make_key(pool, "regulator"),
            idle=timedelta(minutes=30),
        )
    assert opened is not None
    impatient.cookies.set("rr_console", opened.cookie)
    r = await _while_incidents_are_locked(
        database_url,
        lambda: impatient.get(
            "/console/compliance",
            params={"from": "2026-01-01", "to": "2026-01-31"},
            headers={"accept": "text/html"},
        ),
    )
    assert r.status_code == 200, r.text[:500]
    assert "Compliance dashboard" in r.text
