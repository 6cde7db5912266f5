"""Notification endpoints and signed notices, checked by a live receiver.

The receiver (``tests/helpers/notices.py``) is a real HTTP server on 127.0.0.1 that
verifies every notice with the ``standardwebhooks`` library, as a platform would.
"""

from __future__ import annotations

import asyncpg
import httpx

from tests.conftest import PlatformFixture, make_platform, register_model
from tests.helpers.notices import (
    Receiver,
    add_endpoint,
    admin_headers,
    decide,
    drain,
    host,
    recall_hosted_model,
)


async def test_endpoint_secret_is_shown_once_and_platform_sees_only_its_own(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    receiver: Receiver,
    quiet_endpoints: None,
) -> None:
    created = await add_endpoint(client, admin, receiver, platform)
    assert created["secret"].startswith("whsec_")
    assert created["endpoint"]["event_types"] == ["decommission.notice", "decommission.withdrawn"]
    await add_endpoint(client, admin, receiver, other_platform)

    r = await client.get(f"/v1/endpoints/{created['endpoint']['id']}", headers=admin)
    assert r.status_code == 200
    assert "secret" not in r.json()
    r = await client.get("/v1/endpoints", headers=platform.headers)
    assert [e["platform"] for e in r.json()["items"]] == [platform.slug]
    r = await client.get(
        f"/v1/endpoints/{created['endpoint']['id']}", headers=other_platform.headers
    )
    assert r.status_code == 404
    # A platform registers endpoints for itself only: another's is not found.
    r = await client.post(
        f"/v1/platforms/{platform.slug}/endpoints",
        json={"url": receiver.url("/x")},
        headers=other_platform.headers,
    )
    assert r.status_code == 404
    r = await client.post(
        f"/v1/platforms/{platform.slug}/endpoints",
        json={"url": receiver.url("/x"), "event_types": ["model.hosted"]},
        headers=admin,
    )
    assert r.status_code == 400


async def test_notice_is_signed_and_verifies_with_standardwebhooks(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    second = await admin_headers(pool)
    model = f"acme/notice-{uniq}"
    await register_model(client, admin, model)
    hosting_id = await host(client, admin, model, platform)
    await add_endpoint(client, admin, receiver, platform)
    decision = await decide(client, admin, second, model)
    assert decision["status"] == "notified"

    await drain(pool, http, lambda: len(receiver.delivered()) == 1)
    [hit] = receiver.delivered()
    assert hit.verified
    assert hit.payload is not None
    assert hit.payload["type"] == "decommission.notice"
    assert hit.payload["id"] == hit.msg_id
    data = hit.payload["data"]
    assert data["decision_id"] == decision["id"]
    assert data["action"] == "recall"
    assert data["model"] == model
    assert [h["hosting_id"] for h in data["hostings"]] == [hosting_id]
    assert data["confirm_by"] == decision["confirm_by"]

    # The platform lists its notice and the attempt.
    r = await client.get(
        "/v1/notifications", params={"decision_id": decision["id"]}, headers=platform.headers
    )
    [notice] = r.json()["items"]
    assert notice["id"] == hit.msg_id
    assert notice["status"] == "delivered"
    r = await client.get(f"/v1/notifications/{notice['id']}/attempts", headers=platform.headers)
    [attempt] = r.json()["items"]
    assert attempt["status_code"] == 200
    assert attempt["latency_ms"] >= 0
    assert attempt["error"] is None

    # A redelivery on request carries the same webhook-id, so the receiver can drop it.
    r = await client.post(f"/v1/notifications/{notice['id']}/redeliver", headers=platform.headers)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending"
    await drain(pool, http, lambda: len(receiver.delivered()) == 2)
    assert {h.msg_id for h in receiver.delivered()} == {notice["id"]}
    r = await client.get(f"/v1/notifications/{notice['id']}/attempts", headers=admin)
    assert len(r.json()["items"]) == 2


async def test_withdrawal_of_a_notified_decision_is_announced(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    model = f"acme/withdrawn-{uniq}"
    decision = await recall_hosted_model(client, pool, admin, platform, model, receiver=receiver)
    r = await client.post(
        f"/v1/decommissions/{decision['id']}/withdraw",
        json={"reason": "the incident was a false report"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "withdrawn"
    await drain(pool, http, lambda: len(receiver.delivered()) == 2)
    kinds = sorted(h.payload["type"] for h in receiver.delivered() if h.payload)
    assert kinds == ["decommission.notice", "decommission.withdrawn"]


async def test_endpoint_subscribed_to_other_events_gets_no_notice(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    receiver: Receiver,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    second = await admin_headers(pool)
    hub = await make_platform(client, pool, admin, f"quiet-{uniq}")
    model = f"acme/quiet-{uniq}"
    await register_model(client, admin, model)
    await host(client, admin, model, hub)
    await add_endpoint(client, admin, receiver, hub, event_types=["decommission.withdrawn"])
    decision = await decide(client, admin, second, model)
    r = await client.get("/v1/notifications", params={"decision_id": decision["id"]}, headers=admin)
    assert r.json()["items"] == []
    # The decision still applies to the platform: it sees it, and owes a confirmation.
    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=hub.headers)
    assert r.status_code == 200
    assert [t["platform"] for t in r.json()["targets"]] == [hub.slug]
