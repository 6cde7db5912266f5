"""Two service replicas on one database: the database keeps them honest.

Two real ``serve`` processes share the suite's database. The same deliveries, sent to both
at once, are recorded once each; and with both replicas' notice workers running, every
notice reaches the platform's receiver exactly once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from tests.conftest import PlatformFixture, make_platform, register_model
from tests.helpers.notices import Receiver, add_endpoint, admin_headers, decide, host
from tests.helpers.webhooks import signed_delivery
from tests.live_service import LiveService

REPLICA_ENV = {
    "REGISTRY_OUTBOX_WORKER": "true",
    "REGISTRY_OUTBOX_POLL_SECONDS": "0.2",
    "REGISTRY_OUTBOX_SWEEP_SECONDS": "0.5",
    # The test's receiver listens on loopback, an on-premise receiver for the service.
    "REGISTRY_NOTICE_ALLOWED_NETWORKS": "127.0.0.0/8",
}


async def test_same_deliveries_to_two_replicas_are_recorded_once(
    database_url: str,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    pool: asyncpg.Pool,
    uniq: str,
    tmp_path: Path,
) -> None:
    r = await client.post(f"/v1/platforms/{platform.slug}/webhook-secrets", json={}, headers=admin)
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    deliveries = [signed_delivery(secret, f"replica{uniq}/m-{i}") for i in range(20)]
    async with (
        LiveService(database_url, tmp_path) as a,
        LiveService(database_url, tmp_path) as b,
        httpx.AsyncClient(timeout=10.0) as http,
    ):
        path = f"/v1/webhooks/{platform.slug}"
        # Each delivery goes to both replicas three times, all at once.
        copies = [
            (body, headers, svc) for body, headers in deliveries for svc in (a, b, a, b, a, b)
        ]
        answers = await asyncio.gather(
            *(
                http.post(svc.base_url + path, content=body, headers=headers)
                for body, headers, svc in copies
            )
        )
        first = [r.status_code for r in answers]
        # A replica short of connections under this burst answers 503 with Retry-After;
        # a platform sends that copy again, as here, until it is answered.
        for i, (body, headers, svc) in enumerate(copies):
            for _ in range(20):
                if answers[i].status_code != 503:
                    break
                await asyncio.sleep(float(answers[i].headers.get("retry-after", "1")))
                answers[i] = await http.post(svc.base_url + path, content=body, headers=headers)
    by_id: dict[str, list[int]] = {}
    for (_, headers), group in zip(
        deliveries, [answers[i : i + 6] for i in range(0, len(answers), 6)], strict=True
    ):
        by_id[headers["webhook-id"]] = sorted(r.status_code for r in group)
    # One replica accepted each delivery; every other copy was a duplicate. (A copy first
    # answered 503 may have been committed all the same: its resend is then a duplicate,
    # and no copy of that delivery says 202; it is still recorded once, as checked below.)
    assert all(set(codes) <= {200, 202} and codes.count(202) <= 1 for codes in by_id.values()), (
        by_id
    )
    assert sum(codes.count(202) for codes in by_id.values()) >= len(by_id) - sum(
        1 for i, r in enumerate(first) if r == 503
    ), by_id
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT delivery_id, count(*) AS n FROM webhook_deliveries "
            "WHERE platform_id = $1 GROUP BY delivery_id",
            UUID(platform.id),
        )
        hostings = await conn.fetchval(
            "SELECT count(*) FROM hostings WHERE platform_id = $1", UUID(platform.id)
        )
    assert {r["delivery_id"]: r["n"] for r in rows} == dict.fromkeys(by_id, 1)
    assert hostings == 20


async def test_two_replicas_deliver_each_notice_exactly_once(
    database_url: str,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    pool: asyncpg.Pool,
    receiver: Receiver,
    quiet_endpoints: None,
    uniq: str,
    tmp_path: Path,
) -> None:
    second = await admin_headers(pool)
    platforms = [await make_platform(client, pool, admin, f"rep{i}-{uniq}") for i in range(4)]
    decisions: list[dict[str, Any]] = []
    async with (
        LiveService(database_url, tmp_path, **REPLICA_ENV),
        LiveService(database_url, tmp_path, **REPLICA_ENV),
    ):
        for i in range(3):
            model = f"acme/replicated-{i}-{uniq}"
            await register_model(client, admin, model)
            for p in platforms:
                await host(client, admin, model, p)
            if i == 0:
                for p in platforms:
                    await add_endpoint(client, admin, receiver, p)
            decisions.append(await decide(client, admin, second, model))
        expected = len(platforms) * len(decisions)
        deadline = time.monotonic() + 30
        while len(receiver.delivered()) < expected:
            assert time.monotonic() < deadline, (
                f"{len(receiver.delivered())} of {expected} notices delivered"
            )
            await asyncio.sleep(0.2)
        # Both workers keep polling a little longer: nothing more may arrive.
        await asyncio.sleep(1.5)
    delivered = receiver.delivered()
    ids = [h.msg_id for h in delivered]
    assert len(ids) == expected
    assert len(set(ids)) == expected, "a notice was delivered twice"
    async with pool.acquire() as conn:
        statuses = await conn.fetch(
            "SELECT status, count(*) AS n FROM outbox WHERE decommission_id = ANY($1::uuid[]) "
            "GROUP BY status",
            [UUID(d["id"]) for d in decisions],
        )
    assert {r["status"]: r["n"] for r in statuses} == {"delivered": expected}
