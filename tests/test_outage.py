"""The database goes away and comes back: 503 with Retry-After fast, nothing hangs, recovery.

The test runs a PostgreSQL of its own (stopping the suite's shared server would break every
other test) and a real ``serve`` process against it, then stops and restarts that server
under the service with ``pg_ctl``, the way an operator or a failover would.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx

from tests.helpers.own_postgres import PROMISED_SECONDS, OwnPostgres
from tests.helpers.webhooks import signed_delivery
from tests.live_service import LiveService


async def timed(
    client: httpx.AsyncClient, method: str, path: str, **kwargs: object
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert elapsed < PROMISED_SECONDS, f"answered after {elapsed:.2f} s"
    assert int(response.headers["retry-after"]) >= 1


async def test_database_outage_answers_503_fast_and_recovers_without_restart(
    own_postgres: OwnPostgres, own_admin: dict[str, str], tmp_path: Path
) -> None:
    async with (
        LiveService(own_postgres.url, tmp_path) as svc,
        httpx.AsyncClient(base_url=svc.base_url, timeout=10.0) as client,
    ):
        r = await client.get("/v1/platforms", headers=own_admin)
        assert r.status_code == 200, r.text
        assert (await client.get("/readyz")).status_code == 200
        r = await client.post(
            "/v1/platforms",
            json={"slug": "hub", "name": "Hub", "kind": "model_hub"},
            headers=own_admin,
        )
        assert r.status_code == 201, r.text
        r = await client.post("/v1/platforms/hub/webhook-secrets", json={}, headers=own_admin)
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]

        await asyncio.to_thread(own_postgres.stop)

        # A platform's signed delivery: 503 with Retry-After, so the platform retries it.
        body, headers = signed_delivery(secret, "outage/model")
        response, elapsed = await timed(
            client, "POST", "/v1/webhooks/hub", content=body, headers=headers
        )
        assert_unavailable(response, elapsed)

        # Authenticated reads and writes: problem+json 503 with Retry-After, quickly.
        for method, path, payload in [
            ("GET", "/v1/platforms", None),
            ("POST", "/v1/platforms", {"slug": "down", "name": "Down", "kind": "model_hub"}),
            ("GET", "/v1/models", None),
        ]:
            response, elapsed = await timed(client, method, path, json=payload, headers=own_admin)
            assert_unavailable(response, elapsed)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["status"] == 503

        # Readiness turns false; liveness does not (a restart would not bring the database).
        response, elapsed = await timed(client, "GET", "/readyz")
        assert_unavailable(response, elapsed)
        response, elapsed = await timed(client, "GET", "/healthz")
        assert response.status_code == 200
        response, elapsed = await timed(client, "GET", "/metrics")
        assert response.status_code == 200
        assert elapsed < PROMISED_SECONDS

        # Many callers at once: every one answered, none left hanging.
        started = time.monotonic()
        burst = await asyncio.gather(
            *(client.get("/v1/platforms", headers=own_admin) for _ in range(30))
        )
        assert {b.status_code for b in burst} == {503}
        assert time.monotonic() - started < 2 * PROMISED_SECONDS

        await asyncio.to_thread(own_postgres.start)

        # Same process, no restart: ready again within a few seconds, and writes work.
        deadline = time.monotonic() + 15
        while (await client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "the service did not recover"
            await asyncio.sleep(0.2)
        r = await client.post(
            "/v1/platforms",
            json={"slug": "back-again", "name": "Back", "kind": "model_hub"},
            headers=own_admin,
        )
        assert r.status_code == 201, r.text
        assert (await client.get("/v1/platforms", headers=own_admin)).status_code == 200
        # The platform's retry of the refused delivery (same id, same bytes) now goes
        # through: the refusal wrote nothing, so this is not a duplicate.
        r = await client.post("/v1/webhooks/hub", content=body, headers=headers)
        assert r.status_code == 202, r.text
        assert r.json()["duplicate"] is False
        assert svc.process is not None
        assert svc.process.poll() is None

    conn = await asyncpg.connect(own_postgres.url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM platforms WHERE slug = 'down'") == 0
    finally:
        await conn.close()
