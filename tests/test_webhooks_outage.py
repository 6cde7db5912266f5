"""A live ``serve`` process loses its database mid-stream: deliveries get a quick 503."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx

from service.db.pool import init_connection
from service.domain.platforms import create_platform
from service.domain.secrets import create_secret
from service.schemas.platforms import PlatformIn
from tests.conftest import TEST_VAULT
from tests.helpers.own_postgres import PROMISED_SECONDS, OwnPostgres

# The test_outage module's server fixture, which this test may stop and start.
from tests.helpers.webhooks import hosted, signed
from tests.live_service import LiveService


async def _secret(url: str) -> str:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    try:
        async with conn.transaction():
            data = PlatformIn(slug="outage-hub", name="Outage hub", kind="model_hub")
            await create_platform(conn, data=data, actor_id=None)
            return (
                await create_secret(conn, slug="outage-hub", actor_id=None, vault=TEST_VAULT)
            ).secret
    finally:
        await conn.close()


async def test_deliveries_during_an_outage_are_503_fast_and_none_is_lost(
    own_postgres: OwnPostgres,
    tmp_path: Path,
) -> None:
    secret = await _secret(own_postgres.url)
    async with (
        LiveService(own_postgres.url, tmp_path) as svc,
        httpx.AsyncClient(base_url=svc.base_url, timeout=10.0) as client,
    ):

        async def send(model: str, msg_id: str) -> tuple[httpx.Response, float]:
            body = hosted(model)
            started = time.monotonic()
            r = await client.post(
                "/v1/webhooks/outage-hub", content=body, headers=signed(secret, body, msg_id=msg_id)
            )
            return r, time.monotonic() - started

        r, _ = await send("org/before", "before")
        assert r.status_code == 202, r.text

        await asyncio.to_thread(own_postgres.stop)
        answers = await asyncio.gather(*(send(f"org/during{i}", f"during-{i}") for i in range(10)))
        for r, elapsed in answers:
            assert r.status_code == 503, r.text
            assert elapsed < PROMISED_SECONDS
            assert int(r.headers["retry-after"]) >= 1
            assert r.headers["content-type"].startswith("application/problem+json")

        await asyncio.to_thread(own_postgres.start)
        deadline = time.monotonic() + 15
        while (await client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "the service did not recover"
            await asyncio.sleep(0.2)
        # The platform retries: each refused delivery is accepted now, none as a duplicate.
        for i in range(10):
            r, _ = await send(f"org/during{i}", f"during-{i}")
            assert r.status_code == 202, r.text
