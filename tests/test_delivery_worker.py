"""The delivery worker against a live receiver: retries with backoff, Retry-After, 410,
several workers at once, shutdown, and the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import msgspec

from service.app import create_app
from service.domain.delivery_worker import (
    WorkerConfig,
    deliver_batch,
    parse_retry_after,
    retry_delay,
    run_delivery_worker,
)
from service.metrics import REGISTRY
from service.settings import Settings
from tests.conftest import LOOPBACK, TEST_VAULT, PlatformFixture, make_platform, register_model
from tests.helpers.notices import (
    FAST,
    Receiver,
    add_endpoint,
    admin_headers,
    decide,
    drain,
    host,
    notices_for,
    recall_hosted_model,
)


def test_default_retry_schedule_spans_more_than_a_day() -> None:
    config = WorkerConfig()
    low = sum(
        retry_delay(n, base=config.backoff_base, cap=config.backoff_max, rand=lambda: 0.0)
        for n in range(1, config.max_attempts)
    )
    assert low >= 24 * 3600
    delays = [retry_delay(n, base=5, cap=3600, rand=lambda: 0.5) for n in range(1, 14)]
    assert delays[:3] == [5, 10, 20]
    assert delays[-1] == 3600
    jittered = {retry_delay(3, base=5, cap=3600) for _ in range(50)}
    assert len(jittered) > 1
    assert all(16 <= d <= 24 for d in jittered)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120
    assert parse_retry_after("Fri, 27 Nov 2026 12:01:00 GMT", now=now) == 60
    assert parse_retry_after("Fri, 27 Nov 2026 11:00:00 GMT", now=now) == 0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None
    assert parse_retry_after("99999999", now=now) == 24 * 3600


async def test_a_failing_receiver_that_recovers_gets_the_notice_once(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    path = f"/hooks/{platform.slug}"
    receiver.answer(path, 500, 503, (429, {"Retry-After": "1"}), 200, 200)
    counted_before = {k: _attempts_counted(k) for k in ("retry", "delivered")}
    decision = await recall_hosted_model(
        client, pool, admin, platform, f"acme/flaky-{uniq}", receiver=receiver
    )
    await drain(pool, http, lambda: len(receiver.delivered()) == 1)
    # More rounds deliver nothing more: the receiver answered 2xx once.
    for _ in range(10):
        await drain(pool, http, lambda: True)
        await asyncio.sleep(FAST.poll_interval)
    hits = receiver.to(path)
    assert [h.status for h in hits] == [500, 503, 429, 200]
    assert len({h.msg_id for h in hits}) == 1
    assert all(h.verified for h in hits)

    [notice] = await notices_for(client, admin, decision["id"])
    assert notice["status"] == "delivered"
    assert notice["attempts"] == 4
    r = await client.get(f"/v1/notifications/{notice['id']}/attempts", headers=platform.headers)
    attempts = r.json()["items"]
    assert [a["status_code"] for a in attempts] == [500, 503, 429, 200]
    assert [a["error"] for a in attempts] == ["HTTP 500", "HTTP 503", "HTTP 429", None]
    waits = [
        (datetime.fromisoformat(a["retry_at"]) - datetime.fromisoformat(a["started_at"]))
        for a in attempts[:3]
    ]
    # Backoff grows, and the receiver's Retry-After is honoured over a shorter backoff.
    assert waits[0] < waits[1]
    assert waits[2] >= timedelta(seconds=1)
    assert attempts[3]["retry_at"] is None
    started = [datetime.fromisoformat(a["started_at"]) for a in attempts]
    assert started[3] - started[2] >= timedelta(seconds=0.9)
    # The attempts are counted for the metrics, by outcome.
    assert _attempts_counted("retry") - counted_before["retry"] >= 3
    assert _attempts_counted("delivered") - counted_before["delivered"] >= 1


def _attempts_counted(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "registry_outbox_delivery_attempts_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_an_unreachable_receiver_is_recorded_as_an_error(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    # A port nothing listens on: connection refused, retried.
    r = await client.post(
        f"/v1/platforms/{platform.slug}/endpoints",
        json={"url": receiver.url("/gone").replace(receiver.base_url, "http://127.0.0.1:9")},
        headers=admin,
    )
    assert r.status_code == 201
    endpoint_id = r.json()["endpoint"]["id"]
    decision = await recall_hosted_model(client, pool, admin, platform, f"acme/unreachable-{uniq}")
    [notice] = await notices_for(client, admin, decision["id"])
    await drain(pool, http, lambda: True)
    r = await client.get(f"/v1/notifications/{notice['id']}/attempts", headers=admin)
    [attempt] = r.json()["items"]
    assert attempt["status_code"] is None
    # A fixed phrase: the platform learns what happened, not the registry's network details.
    assert attempt["error"] == "could not connect"
    assert attempt["latency_ms"] >= 0
    assert attempt["retry_at"] is not None
    await client.patch(f"/v1/endpoints/{endpoint_id}", json={"disabled": True}, headers=admin)


async def test_two_workers_deliver_each_notice_exactly_once(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    receiver: Receiver,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    second = await admin_headers(pool)
    hubs = [await make_platform(client, pool, admin, f"pair{i}-{uniq}") for i in range(4)]
    models = [f"acme/pair{i}-{uniq}" for i in range(4)]
    for model in models:
        await register_model(client, admin, model)
        for hub in hubs:
            await host(client, admin, model, hub)
    for hub in hubs:
        await add_endpoint(client, admin, receiver, hub)
    receiver.delay = 0.03
    for model in models:
        await decide(client, admin, second, model)
    expected = len(models) * len(hubs)

    config = WorkerConfig(
        batch_size=3,
        send_timeout=5,
        backoff_base=0.05,
        backoff_max=0.2,
        poll_interval=0.02,
        allowed_networks=LOOPBACK,
        vault=TEST_VAULT,
    )
    stop = asyncio.Event()
    sent: Counter[str] = Counter()

    def counting(name: str) -> Any:
        async def hook(request: httpx.Request) -> None:
            sent[name] += 1

        return {"request": [hook]}

    async with (
        httpx.AsyncClient(event_hooks=counting("one")) as one,
        httpx.AsyncClient(event_hooks=counting("two")) as two,
    ):
        workers = [
            asyncio.create_task(run_delivery_worker(pool, one, config, stop=stop)),
            asyncio.create_task(run_delivery_worker(pool, two, config, stop=stop)),
        ]
        deadline = time.monotonic() + 30
        while len(receiver.delivered()) < expected:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # time for any double delivery to show
        stop.set()
        await asyncio.gather(*workers)
    counts = Counter(h.msg_id for h in receiver.hits)
    assert len(counts) == expected
    assert set(counts.values()) == {1}
    # Both workers took part.
    assert sent["one"] > 0
    assert sent["two"] > 0


async def test_a_410_disables_the_endpoint_until_an_admin_enables_it(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    path = f"/hooks/{platform.slug}"
    receiver.answer(path, 410)
    first = await recall_hosted_model(
        client, pool, admin, platform, f"acme/gone-{uniq}", receiver=receiver
    )
    await drain(pool, http, lambda: len(receiver.to(path)) == 1)
    [notice] = await notices_for(client, admin, first["id"])
    assert notice["status"] == "failed"
    assert notice["last_status"] == 410
    r = await client.get("/v1/endpoints", headers=platform.headers)
    [endpoint] = r.json()["items"]
    assert endpoint["disabled_at"] is not None
    assert "410" in endpoint["disabled_reason"]

    # While disabled, new notices wait.
    waiting = await recall_hosted_model(client, pool, admin, platform, f"acme/gone-two-{uniq}")
    for _ in range(5):
        await drain(pool, http, lambda: True)
    assert len(receiver.to(path)) == 1
    [pending] = await notices_for(client, admin, waiting["id"])
    assert pending["status"] == "pending"

    r = await client.patch(
        f"/v1/endpoints/{endpoint['id']}", json={"disabled": False}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["disabled_at"] is None
    await drain(pool, http, lambda: len(receiver.delivered(path)) == 1)
    r = await client.get(f"/v1/events?subject_id={endpoint['id']}", headers=admin)
    assert [e["kind"] for e in r.json()["items"]] == [
        "endpoint.created",
        "endpoint.disabled",
        "endpoint.enabled",
    ]


async def test_the_worker_finishes_its_batch_on_shutdown(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    receiver.delay = 0.5
    decision = await recall_hosted_model(
        client, pool, admin, platform, f"acme/shutdown-{uniq}", receiver=receiver
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(run_delivery_worker(pool, http, FAST, stop=stop))
    deadline = time.monotonic() + 10
    while receiver.started == 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    stop.set()  # mid-send
    await worker
    [notice] = await notices_for(client, admin, decision["id"])
    assert notice["status"] == "delivered"
    assert len(receiver.delivered()) == 1


async def test_the_app_runs_the_worker_when_its_setting_says_so(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    settings: Settings,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    await recall_hosted_model(
        client, pool, admin, platform, f"acme/lifespan-{uniq}", receiver=receiver
    )
    on = msgspec.structs.replace(settings, outbox_worker=True, outbox_poll_seconds=0.02)
    app = create_app(on, pool=pool, http=http)
    async with app.lifespan():
        deadline = time.monotonic() + 10
        while not receiver.delivered():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    assert len(receiver.delivered()) == 1


async def test_a_worker_lost_mid_send_resends_with_the_same_webhook_id(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    """The one case of a second delivery: the receiver answered, the claim never committed.

    Receivers must therefore drop a ``webhook-id`` they have already processed.
    """
    receiver.delay = 0.3
    decision = await recall_hosted_model(
        client, pool, admin, platform, f"acme/lost-{uniq}", receiver=receiver
    )
    lost = asyncio.create_task(deliver_batch(pool, http, FAST))
    deadline = time.monotonic() + 10
    while receiver.started == 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    lost.cancel()  # the worker dies while the receiver is answering
    with contextlib.suppress(asyncio.CancelledError):
        await lost
    [notice] = await notices_for(client, admin, decision["id"])
    assert notice["status"] == "pending"
    assert notice["attempts"] == 0
    receiver.delay = 0
    await drain(pool, http, lambda: len(receiver.delivered()) == 2)
    first, second = receiver.delivered()
    assert first.msg_id == second.msg_id == notice["id"]
    assert first.payload == second.payload
