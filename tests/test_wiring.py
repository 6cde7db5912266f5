"""The wiring, seen from outside: the app's one lifespan opens, runs and stops every
long-lived resource; the per-process state exists from the moment the app is built and is
shared by every request; every webhook route goes through the one adapter registry and the
one intake, whose refusals all reach the platform's delivery log."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar

from service.app import create_app
from service.domain.limits import TokenBucket
from service.lifespan import background
from service.platforms import standard
from service.platforms.registry import ADAPTERS
from service.settings import Settings
from tests.conftest import PlatformFixture

#: Where each adapter's deliveries are posted, below ``/v1/webhooks/{platform}``.
_ROUTES = {"standard": "", "huggingface": "/huggingface", "github": "/github"}
_WORKERS = {"run_sealer", "run_delivery_worker", "run_export_worker"}


def _client(app: Litestar, address: tuple[str, int] = ("127.0.0.1", 50000)) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=cast("Any", app), client=address)
    return httpx.AsyncClient(transport=transport, base_url="http://registry.test")


def _workers_running() -> set[str]:
    return {
        name
        for task in asyncio.all_tasks()
        if not task.done() and (name := getattr(task.get_coro(), "__name__", "")) in _WORKERS
    }


def _signed(source: str, secret: str, body: bytes) -> dict[str, str]:
    """Headers that sign ``body`` with ``secret`` the way ``source`` does."""
    delivery = f"wiring-{secrets.token_hex(8)}"
    headers = {"content-type": "application/json"}
    if source == "standard":
        stamp = str(int(time.time()))
        mac = standard.sign(standard.secret_key(secret), delivery, stamp, body)
        headers |= {
            "webhook-id": delivery,
            "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        }
    elif source == "huggingface":
        headers["x-webhook-secret"] = secret
    else:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers |= {
            "x-github-event": "repository",
            "x-github-delivery": delivery,
            "x-hub-signature-256": f"sha256={digest}",
        }
    return headers


def test_every_adapter_has_its_route(app: Litestar) -> None:
    paths = {route.path for route in app.routes}
    assert set(ADAPTERS) == set(_ROUTES)
    for source in ADAPTERS:
        assert f"/v1/webhooks/{{platform:str}}{_ROUTES[source]}" in paths


@pytest.mark.parametrize("source", sorted(_ROUTES))
async def test_each_route_refuses_through_intake_and_logs_the_refusal(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, source: str
) -> None:
    r = await client.post(f"/v1/platforms/{platform.slug}/webhook-secrets", json={}, headers=admin)
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    url = f"/v1/webhooks/{platform.slug}{_ROUTES[source]}"

    # Signed with a secret the platform does not have: 401, nothing written.
    stranger = standard.new_secret()
    r = await client.post(url, content=b"[]", headers=_signed(source, stranger, b"[]"))
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith(":unauthorized")

    # Signed, but not an event: 400, nothing written.
    r = await client.post(url, content=b"[]", headers=_signed(source, secret, b"[]"))
    assert r.status_code == 400, r.text
    assert r.json()["type"].endswith(":bad-request")

    # The wrong media type: the controller answers 415 itself, and nothing is logged.
    r = await client.post(url, content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415

    r = await client.get(
        f"/v1/webhooks/{platform.slug}/deliveries", params={"outcome": "rejected"}, headers=admin
    )
    assert r.status_code == 200, r.text
    logged = sorted((e["source"], e["status"]) for e in r.json()["items"])
    assert logged == [(source, 400), (source, 401)]


async def test_the_per_process_state_exists_before_any_request_and_is_shared(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    app = create_app(
        msgspec.structs.replace(settings, public_rate_limit=2, public_rate_window_seconds=3600),
        pool=pool,
    )
    gate, limiter = app.state.webhook_gate, app.state.public_limiter
    assert gate.signing is not None
    assert gate.group_commit is not None
    address = ("203.0.113.7", 40000)
    statuses = []
    for _ in range(3):  # three clients, one address: one allowance between them
        async with _client(app, address) as c:
            r = await c.get("/v1/reports/RR-000000000000", headers={"Follow-Up-Token": "x"})
            statuses.append(r.status_code)
    assert statuses == [404, 404, 429]
    assert app.state.webhook_gate is gate
    assert app.state.public_limiter is limiter

    off = create_app(msgspec.structs.replace(settings, group_commit=False), pool=pool)
    assert off.state.webhook_gate.group_commit is None


async def test_the_lifespan_runs_every_worker_and_stops_each_one(
    settings: Settings, regulator: dict[str, str], tmp_path: Path
) -> None:
    assert settings.database_url is not None
    on = msgspec.structs.replace(
        settings,
        sealer=True,
        outbox_worker=True,
        export_worker=True,
        signing_key_file=str(tmp_path / "signing.pem"),
        seal_interval_seconds=0.05,
        outbox_poll_seconds=0.05,
        # Only a job queued through this process wakes the worker this soon.
        export_poll_seconds=60.0,
    )
    app = create_app(on)  # no pool and no HTTP client given: the lifespan opens its own
    assert _workers_running() == set()
    async with app.lifespan():
        assert app.state.signer is not None
        assert (tmp_path / "signing.pem").exists()
        assert _workers_running() == _WORKERS
        async with _client(app) as c:
            r = await c.post(
                "/v1/exports", json={"datasets": ["models"], "format": "csv"}, headers=regulator
            )
            assert r.status_code == 202, r.text
            href = r.headers["location"]
            deadline = time.monotonic() + 30
            while (job := (await c.get(href, headers=regulator)).json())["status"] != "done":
                assert job["status"] in ("queued", "running"), job
                assert time.monotonic() < deadline, job
                await asyncio.sleep(0.05)
        pool, http = app.state.pool, app.state.http
        assert await pool.fetchval("SELECT 1") == 1
    assert _workers_running() == set()
    assert pool.is_closing()
    assert http.is_closed


async def test_the_lifespan_leaves_open_what_it_was_given(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    async with httpx.AsyncClient() as http:
        app = create_app(
            msgspec.structs.replace(settings, outbox_worker=True), pool=pool, http=http
        )
        async with app.lifespan():
            assert app.state.pool is pool
            assert app.state.http is http
            assert _workers_running() == {"run_delivery_worker"}
        assert _workers_running() == set()
        assert not http.is_closed
        assert await pool.fetchval("SELECT 1") == 1


async def test_background_lets_a_worker_finish_its_round_or_abandons_it() -> None:
    finished: list[str] = []

    def worker(name: str) -> Any:
        async def run(stop: asyncio.Event) -> None:
            await stop.wait()
            await asyncio.sleep(0.01)  # the round in hand
            finished.append(name)

        return run

    async with background(worker("patient")), background(worker("abandoned"), abandon=True):
        await asyncio.sleep(0)
    assert finished == ["patient"]


async def test_only_verified_deliveries_spend_the_allowance(
    settings: Settings,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
) -> None:
    r = await client.post(f"/v1/platforms/{platform.slug}/webhook-secrets", json={}, headers=admin)
    secret = r.json()["secret"]
    tight = msgspec.structs.replace(settings, webhook_rate_per_second=0.001, webhook_burst=2)
    url = f"/v1/webhooks/{platform.slug}"
    async with _client(create_app(tight, pool=pool)) as c:
        stranger = standard.new_secret()
        for _ in range(4):  # unsigned junk is refused, and costs the platform nothing
            r = await c.post(url, content=b"[]", headers=_signed("standard", stranger, b"[]"))
            assert r.status_code == 401
        statuses = []
        for _ in range(3):  # signed: verified, then refused as not an event
            r = await c.post(url, content=b"[]", headers=_signed("standard", secret, b"[]"))
            statuses.append(r.status_code)
    assert statuses == [400, 400, 429]
    assert int(r.headers["retry-after"]) >= 1


def test_one_token_bucket_looks_without_spending_and_spends_on_request() -> None:
    bucket = TokenBucket(rate=1.0, burst=2)
    assert bucket.wait("k", now=0.0) == 0
    assert bucket.wait("k", now=0.0) == 0  # looking spends nothing
    bucket.take("k", now=0.0)
    bucket.take("k", now=0.0)
    assert bucket.wait("k", now=0.0) == pytest.approx(1.0)
    assert bucket.spend("k", now=0.0) == pytest.approx(1.0)  # refused: nothing spent
    assert bucket.spend("k", now=1.0) == 0
    assert bucket.wait("k", now=1.0) == pytest.approx(1.0)
