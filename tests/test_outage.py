"""The database goes away and comes back: 503 with Retry-After fast, nothing hangs, recovery.

The test runs a PostgreSQL of its own (stopping the suite's shared server would break every
other test) and a real ``serve`` process against it, then stops and restarts that server
under the service with ``pg_ctl``, the way an operator or a failover would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from standardwebhooks import Webhook

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


def server_processes(own: OwnPostgres) -> list[int]:
    """The postmaster's pid and its children's (backends, checkpointer, walwriter, ...)."""
    postmaster = int((own.server.data_dir / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:  # the parent pid
            children.append(int(stat.parent.name))
    return [postmaster, *children]


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


async def test_a_hung_database_answers_503_fast_and_recovers_when_it_resumes(
    own_postgres: OwnPostgres, own_admin: dict[str, str], tmp_path: Path
) -> None:
    """SIGSTOP leaves every connection open and silent, like a partition that drops packets:
    requests holding a pooled connection must not wait for the server to answer."""
    async with (
        LiveService(own_postgres.url, tmp_path, REGISTRY_POOL_MIN_SIZE="4") as svc,
        httpx.AsyncClient(base_url=svc.base_url, timeout=30.0) as client,
    ):
        r = await client.post(
            "/v1/platforms",
            json={"slug": "hub", "name": "Hub", "kind": "model_hub"},
            headers=own_admin,
        )
        assert r.status_code == 201, r.text
        r = await client.post("/v1/platforms/hub/webhook-secrets", json={}, headers=own_admin)
        secret = r.json()["secret"]
        body, headers = signed_delivery(secret, "hung/hosted")
        r = await client.post("/v1/webhooks/hub", content=body, headers=headers)
        assert r.status_code == 202, r.text
        # Warm connections in the pool: the case that waited for the command timeout.
        await asyncio.gather(*(client.get("/v1/platforms", headers=own_admin) for _ in range(8)))

        pids = server_processes(own_postgres)
        signal_all(pids, signal.SIGSTOP)
        try:
            body, headers = signed_delivery(secret, "hung/model")
            response, elapsed = await timed(
                client, "POST", "/v1/webhooks/hub", content=body, headers=headers
            )
            assert_unavailable(response, elapsed)
            for method, path, payload in [
                ("GET", "/v1/platforms", None),
                ("POST", "/v1/platforms", {"slug": "hung", "name": "Hung", "kind": "model_hub"}),
                ("GET", "/v1/models", None),
                ("GET", "/readyz", None),
                ("POST", "/v1/reports", {"title": "t", "category": "privacy", "models": ["a/b"]}),
            ]:
                response, elapsed = await timed(
                    client, method, path, json=payload, headers=own_admin
                )
                assert_unavailable(response, elapsed)
            # Liveness stays up, and the metrics still answer in time.
            for path in ("/healthz", "/metrics"):
                response, elapsed = await timed(client, "GET", path)
                assert response.status_code == 200
                assert elapsed < PROMISED_SECONDS, (path, elapsed)
            # The export stream and the group-commit path (model.updated) alike.
            response, elapsed = await timed(client, "GET", "/v1/exports/events", headers=own_admin)
            assert_unavailable(response, elapsed)
            updates = []
            for n in range(4):
                update = json.dumps(
                    {
                        "type": "model.updated",
                        "timestamp": datetime.now(UTC).isoformat(),
                        "data": {"model": "hung/hosted", "revision": f"r{n}"},
                    }
                ).encode()
                msg_id = f"msg_{uuid.uuid4().hex}"
                now = datetime.now(UTC)
                updates.append(
                    timed(
                        client,
                        "POST",
                        "/v1/webhooks/hub",
                        content=update,
                        headers={
                            "content-type": "application/json",
                            "webhook-id": msg_id,
                            "webhook-timestamp": str(int(now.timestamp())),
                            "webhook-signature": Webhook(secret).sign(msg_id, now, update.decode()),
                        },
                    )
                )
            for response, elapsed in await asyncio.gather(*updates):
                assert_unavailable(response, elapsed)
            # Many at once, while earlier connections are still stuck: each answered in time.
            answers = await asyncio.gather(
                *(timed(client, "GET", "/v1/platforms", headers=own_admin) for _ in range(20))
            )
            for response, elapsed in answers:
                assert_unavailable(response, elapsed)
        finally:
            signal_all(pids, signal.SIGCONT)

        deadline = time.monotonic() + 15
        while (await client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "the service did not recover"
            await asyncio.sleep(0.2)
        r = await client.post(
            "/v1/platforms",
            json={"slug": "after-hang", "name": "After", "kind": "model_hub"},
            headers=own_admin,
        )
        assert r.status_code == 201, r.text
        r = await client.post("/v1/webhooks/hub", content=body, headers=headers)
        assert r.status_code == 202, r.text
        assert svc.process is not None
        assert svc.process.poll() is None

    conn = await asyncpg.connect(own_postgres.url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM platforms WHERE slug = 'hung'") == 0
    finally:
        await conn.close()
