"""A platform manages its own signing secrets and notice endpoints with its own key.

Everything goes through the HTTP API with a platform key, as a platform's engineer would,
against the real database; notices are delivered by the delivery worker to a live receiver
that verifies them with the ``standardwebhooks`` library. Each operation is also tried on
another platform's records, both ways, and must answer 404 without changing them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from service.domain.delivery_worker import run_delivery_worker
from service.domain.endpoints import MAX_ENDPOINTS_PER_PLATFORM
from tests.conftest import PlatformFixture, register_model
from tests.helpers.notices import FAST, Receiver, admin_headers, decide, drain, host
from tests.helpers.webhooks import deliver, hosted


async def _create_secret(client: httpx.AsyncClient, who: dict[str, str], slug: str) -> Any:
    r = await client.post(f"/v1/platforms/{slug}/webhook-secrets", headers=who)
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_platform_rotates_its_own_signing_secrets(
    client: httpx.AsyncClient, platform: PlatformFixture, uniq: str
) -> None:
    old = await _create_secret(client, platform.headers, platform.slug)
    new = await _create_secret(client, platform.headers, platform.slug)
    assert old["webhook_secret"]["platform"] == platform.slug

    # Both verify until the old one is retired.
    for n, created in enumerate((old, new)):
        r = await deliver(client, platform.slug, created["secret"], hosted(f"org/m{n}-{uniq}"))
        assert r.status_code in (200, 201, 202), r.text

    r = await client.get(f"/v1/platforms/{platform.slug}/webhook-secrets", headers=platform.headers)
    assert r.status_code == 200, r.text
    assert {s["id"] for s in r.json()["items"]} == {
        old["webhook_secret"]["id"],
        new["webhook_secret"]["id"],
    }
    assert old["secret"] not in r.text
    assert new["secret"] not in r.text

    old_id = old["webhook_secret"]["id"]
    r = await client.delete(
        f"/v1/platforms/{platform.slug}/webhook-secrets/{old_id}", headers=platform.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["retired_at"] is not None

    r = await deliver(client, platform.slug, old["secret"], hosted(f"org/m2-{uniq}"))
    assert r.status_code == 401, r.text
    r = await deliver(client, platform.slug, new["secret"], hosted(f"org/m3-{uniq}"))
    assert r.status_code in (200, 201, 202), r.text

    r = await client.get(
        f"/v1/platforms/{platform.slug}/webhook-secrets",
        params={"include_retired": "true"},
        headers=platform.headers,
    )
    assert len(r.json()["items"]) == 2


async def test_a_platform_never_touches_another_platforms_secrets(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    auditor: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    mine = await _create_secret(client, platform.headers, platform.slug)
    theirs = await _create_secret(client, other_platform.headers, other_platform.slug)

    for me, them, their_secret, my_secret in (
        (platform, other_platform, theirs, mine),
        (other_platform, platform, mine, theirs),
    ):
        base = f"/v1/platforms/{them.slug}/webhook-secrets"
        their_id = their_secret["webhook_secret"]["id"]
        assert (await client.post(base, headers=me.headers)).status_code == 404
        assert (await client.get(base, headers=me.headers)).status_code == 404
        r = await client.delete(f"{base}/{their_id}", headers=me.headers)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        # Naming their secret under my own slug finds nothing either.
        r = await client.delete(
            f"/v1/platforms/{me.slug}/webhook-secrets/{their_id}", headers=me.headers
        )
        assert r.status_code == 404, r.text
        # Their secret still verifies; mine is where it was.
        r = await deliver(client, them.slug, their_secret["secret"], hosted(f"org/x-{them.slug}"))
        assert r.status_code in (200, 201, 202), r.text
        r = await client.get(f"/v1/platforms/{me.slug}/webhook-secrets", headers=me.headers)
        assert [s["id"] for s in r.json()["items"]] == [my_secret["webhook_secret"]["id"]]

    # Other roles may not, admins may for every platform.
    base = f"/v1/platforms/{platform.slug}/webhook-secrets"
    assert (await client.get(base, headers=auditor)).status_code == 403
    assert (await client.post(base, headers=auditor)).status_code == 403
    r = await client.delete(f"{base}/{mine['webhook_secret']['id']}", headers=admin)
    assert r.status_code == 200, r.text
    created = await _create_secret(client, admin, other_platform.slug)
    assert created["webhook_secret"]["platform"] == other_platform.slug
    r = await deliver(client, platform.slug, mine["secret"], hosted(f"org/y-{uniq}"))
    assert r.status_code == 401


async def _register(
    client: httpx.AsyncClient,
    who: dict[str, str],
    receiver: Receiver,
    platform: PlatformFixture,
    path: str,
) -> dict[str, Any]:
    r = await client.post(
        f"/v1/platforms/{platform.slug}/endpoints",
        json={"url": receiver.url(path), "description": "primary"},
        headers=who,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    receiver.secrets[path] = body["secret"]
    return body


async def _test_notice(
    client: httpx.AsyncClient, who: dict[str, str], endpoint_id: str
) -> dict[str, Any]:
    r = await client.post(f"/v1/endpoints/{endpoint_id}/test", headers=who)
    assert r.status_code == 202, r.text
    notice: dict[str, Any] = r.json()
    assert notice["event_type"] == "endpoint.test"
    assert notice["status"] == "pending"
    return notice


async def test_a_platform_manages_its_own_endpoint_end_to_end(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    quiet_endpoints: None,
) -> None:
    me = platform.headers
    path = f"/in/{platform.slug}"
    created = await _register(client, me, receiver, platform, path)
    endpoint_id = created["endpoint"]["id"]
    assert created["secret"].startswith("whsec_")
    assert created["endpoint"]["platform"] == platform.slug

    # Update it, then disable it: a test notice is refused while it is disabled.
    moved = f"/in2/{platform.slug}"
    r = await client.patch(
        f"/v1/endpoints/{endpoint_id}",
        json={"url": receiver.url(moved), "disabled": True},
        headers=me,
    )
    assert r.status_code == 200, r.text
    assert r.json()["url"] == receiver.url(moved)
    assert r.json()["disabled_reason"] == "disabled by the platform"
    receiver.secrets[moved] = created["secret"]
    r = await client.post(f"/v1/endpoints/{endpoint_id}/test", headers=me)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")

    r = await client.patch(f"/v1/endpoints/{endpoint_id}", json={"disabled": False}, headers=me)
    assert r.status_code == 200, r.text
    assert r.json()["disabled_at"] is None

    # A test notice reaches the receiver signed with the endpoint's secret.
    notice = await _test_notice(client, me, endpoint_id)
    await drain(pool, http, lambda: bool(receiver.delivered(moved)))
    (hit,) = receiver.delivered(moved)
    assert hit.msg_id == notice["id"]
    assert hit.payload is not None
    assert hit.payload["type"] == "endpoint.test"
    assert hit.payload["data"]["endpoint_id"] == endpoint_id
    r = await client.get(f"/v1/notifications/{notice['id']}/attempts", headers=me)
    assert [a["status_code"] for a in r.json()["items"]] == [200]

    # Rotation: by default the old secret keeps signing for a day beside the new one, so a
    # receiver still on the old one, or already on the new one, accepts the notice.
    r = await client.post(f"/v1/endpoints/{endpoint_id}/secret", headers=me)
    assert r.status_code == 200, r.text
    rotated = r.json()["secret"]
    assert rotated.startswith("whsec_")
    assert rotated != created["secret"]
    assert r.json()["endpoint"]["previous_secret_until"] is not None
    notice = await _test_notice(client, me, endpoint_id)
    await drain(pool, http, lambda: len(receiver.delivered(moved)) == 2)
    receiver.secrets[moved] = rotated
    notice = await _test_notice(client, me, endpoint_id)
    await drain(pool, http, lambda: len(receiver.delivered(moved)) == 3)

    # With no overlap the old secret stops at once: a receiver still on it refuses, and
    # the notice is delivered once the receiver has the new one.
    r = await client.post(
        f"/v1/endpoints/{endpoint_id}/secret", params={"overlap_hours": 0}, headers=me
    )
    assert r.status_code == 200, r.text
    assert r.json()["endpoint"]["previous_secret_until"] is None
    newest = r.json()["secret"]
    notice = await _test_notice(client, me, endpoint_id)
    await drain(pool, http, lambda: len(receiver.to(moved)) >= 4)
    assert receiver.to(moved)[-1].verified is False
    receiver.secrets[moved] = newest
    r = await client.post(f"/v1/notifications/{notice['id']}/redeliver", headers=me)
    assert r.status_code == 202, r.text
    await drain(pool, http, lambda: len(receiver.delivered(moved)) == 4)
    assert receiver.delivered(moved)[-1].msg_id == notice["id"]
    r = await client.post(
        f"/v1/endpoints/{endpoint_id}/secret", params={"overlap_hours": 169}, headers=me
    )
    assert r.status_code == 400, r.text

    # Deleting it: gone from reads, its pending notices given up, its record kept.
    pending = await _test_notice(client, me, endpoint_id)
    r = await client.delete(f"/v1/endpoints/{endpoint_id}", headers=me)
    assert r.status_code == 204, r.text
    assert (await client.get(f"/v1/endpoints/{endpoint_id}", headers=me)).status_code == 404
    assert (await client.delete(f"/v1/endpoints/{endpoint_id}", headers=me)).status_code == 404
    r = await client.get("/v1/endpoints", headers=me)
    assert r.json()["items"] == []
    r = await client.get(f"/v1/notifications/{pending['id']}", headers=me)
    assert r.json()["status"] == "failed"
    assert r.json()["last_error"] == "the endpoint was deleted"
    r = await client.post(f"/v1/notifications/{pending['id']}/redeliver", headers=me)
    assert r.status_code == 409, r.text
    r = await client.get("/v1/notifications", params={"endpoint_id": endpoint_id}, headers=me)
    assert len(r.json()["items"]) == 5
    before = len(receiver.hits)
    await drain(pool, http, lambda: True)
    assert len(receiver.hits) == before

    # Each change is in the ledger, attributed to the platform's key, without a secret.
    r = await client.get("/v1/events", params={"subject_id": endpoint_id}, headers=admin)
    events = [e for e in r.json()["items"] if e["stage"] == "respond"]
    assert [e["kind"] for e in events] == [
        "endpoint.created",
        "endpoint.disabled",
        "endpoint.enabled",
        "endpoint.secret_rotated",
        "endpoint.secret_rotated",
        "endpoint.deleted",
    ]
    assert "whsec_" not in r.text
    r = await client.get("/v1/events", params={"subject_id": notice["id"]}, headers=admin)
    assert [e["kind"] for e in r.json()["items"]] == [
        "notification.test_requested",
        "notification.redelivery_requested",
    ]


async def test_a_deleted_endpoint_gets_no_new_notices(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    quiet_endpoints: None,
    uniq: str,
) -> None:
    kept = await _register(client, platform.headers, receiver, platform, f"/kept/{uniq}")
    gone = await _register(client, platform.headers, receiver, platform, f"/gone/{uniq}")
    r = await client.delete(f"/v1/endpoints/{gone['endpoint']['id']}", headers=platform.headers)
    assert r.status_code == 204, r.text
    model = f"org/deleted-{uniq}"
    await register_model(client, admin, model)
    await host(client, admin, model, platform)
    decision = await decide(client, admin, await admin_headers(pool), model)

    r = await client.get(
        "/v1/notifications", params={"decision_id": decision["id"]}, headers=platform.headers
    )
    assert [n["endpoint_id"] for n in r.json()["items"]] == [kept["endpoint"]["id"]]


async def test_a_platform_never_touches_another_platforms_endpoints(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    auditor: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    receiver: Receiver,
    quiet_endpoints: None,
) -> None:
    ends = {
        p.slug: await _register(client, p.headers, receiver, p, f"/own/{p.slug}")
        for p in (platform, other_platform)
    }
    for me, them in ((platform, other_platform), (other_platform, platform)):
        theirs = ends[them.slug]["endpoint"]
        url = f"/v1/endpoints/{theirs['id']}"
        answers = [
            await client.post(
                f"/v1/platforms/{them.slug}/endpoints",
                json={"url": receiver.url("/intruder")},
                headers=me.headers,
            ),
            await client.get(url, headers=me.headers),
            await client.patch(url, json={"disabled": True}, headers=me.headers),
            await client.post(f"{url}/secret", headers=me.headers),
            await client.post(f"{url}/test", headers=me.headers),
            await client.delete(url, headers=me.headers),
        ]
        assert [a.status_code for a in answers] == [404] * 6, [a.text for a in answers]
        r = await client.get("/v1/endpoints", params={"platform": them.slug}, headers=me.headers)
        assert r.json()["items"] == []
        # Unchanged, and no notice queued for it.
        r = await client.get(url, headers=admin)
        assert r.json() == theirs
        r = await client.get(
            "/v1/notifications", params={"endpoint_id": theirs["id"]}, headers=admin
        )
        assert r.json()["items"] == []

    # Other roles may not manage endpoints at all.
    theirs = ends[platform.slug]["endpoint"]
    r = await client.post(
        f"/v1/platforms/{platform.slug}/endpoints",
        json={"url": receiver.url("/auditor")},
        headers=auditor,
    )
    assert r.status_code == 403
    assert (
        await client.delete(f"/v1/endpoints/{theirs['id']}", headers=auditor)
    ).status_code == 403

    # Admins keep every power over every platform's endpoints.
    url = f"/v1/endpoints/{theirs['id']}"
    r = await client.patch(url, json={"description": "by admin"}, headers=admin)
    assert r.status_code == 200, r.text
    assert (await client.post(f"{url}/secret", headers=admin)).status_code == 200
    assert (await client.post(f"{url}/test", headers=admin)).status_code == 202
    assert (await client.delete(url, headers=admin)).status_code == 204
    r = await client.post(
        f"/v1/platforms/{other_platform.slug}/endpoints",
        json={"url": receiver.url("/by-admin")},
        headers=admin,
    )
    assert r.status_code == 201, r.text


async def test_the_worker_never_sends_to_a_deleted_endpoint(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    conn: asyncpg.Connection,
    platform: PlatformFixture,
    receiver: Receiver,
    quiet_endpoints: None,
    uniq: str,
) -> None:
    """A notice queued by a decision that read the endpoint just before its deletion."""
    path = f"/late/{uniq}"
    created = await _register(client, platform.headers, receiver, platform, path)
    endpoint_id = created["endpoint"]["id"]
    r = await client.delete(f"/v1/endpoints/{endpoint_id}", headers=platform.headers)
    assert r.status_code == 204, r.text
    late = await conn.fetchval(
        "INSERT INTO outbox (endpoint_id, platform_id, event_type, payload) "
        "VALUES ($1, $2, 'decommission.notice', '{}') RETURNING id",
        endpoint_id,
        platform.id,
    )
    await drain(pool, http, lambda: True)
    assert receiver.to(path) == []
    assert await conn.fetchval("SELECT attempts FROM outbox WHERE id = $1", late) == 0

    # The worker's sweep gives it up, as the deletion did the endpoint's other notices.
    stop = asyncio.Event()
    worker = asyncio.create_task(run_delivery_worker(pool, http, FAST, stop=stop))
    await asyncio.sleep(0.5)
    stop.set()
    await worker
    row = await conn.fetchrow("SELECT status, last_error FROM outbox WHERE id = $1", late)
    assert row is not None
    assert (row["status"], row["last_error"]) == ("failed", "the endpoint was deleted")
    assert receiver.to(path) == []


async def test_a_platform_has_a_bounded_number_of_endpoints_and_one_test_notice_at_a_time(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    receiver: Receiver,
    quiet_endpoints: None,
    uniq: str,
) -> None:
    limit = MAX_ENDPOINTS_PER_PLATFORM
    ends = [
        await _register(client, platform.headers, receiver, platform, f"/many/{uniq}/{n}")
        for n in range(limit)
    ]
    url = f"/v1/platforms/{platform.slug}/endpoints"
    r = await client.post(url, json={"url": receiver.url("/one-more")}, headers=platform.headers)
    assert r.status_code == 409, r.text
    assert f"at most {limit} endpoints" in r.json()["detail"]
    first = ends[0]["endpoint"]["id"]
    assert (
        await client.delete(f"/v1/endpoints/{first}", headers=platform.headers)
    ).status_code == 204
    r = await client.post(url, json={"url": receiver.url("/one-more")}, headers=platform.headers)
    assert r.status_code == 201, r.text

    # A second test notice while the first is pending names the first.
    endpoint_id = ends[1]["endpoint"]["id"]
    notice = await _test_notice(client, platform.headers, endpoint_id)
    r = await client.post(f"/v1/endpoints/{endpoint_id}/test", headers=platform.headers)
    assert r.status_code == 409, r.text
    assert notice["id"] in r.json()["detail"]
    r = await client.get(
        "/v1/notifications", params={"endpoint_id": endpoint_id}, headers=platform.headers
    )
    assert len(r.json()["items"]) == 1
