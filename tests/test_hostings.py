"""Hostings: the prevent stage's record of which model is hosted where, and how."""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import httpx

from tests.conftest import PlatformFixture, register_model

DOCS = {
    "model_card": {"present": True, "url": "https://hub.example/card"},
    "safety_testing": {"present": True, "url": "https://hub.example/safety"},
}


async def test_record_update_and_ledger(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    await register_model(client, admin, f"acme/h-{uniq}")
    r = await client.post(
        "/v1/hostings",
        json={
            "model": f"acme/h-{uniq}",
            "url": "https://hub.example/acme/h",
            "revision": "abc1",
            "licence": "apache-2.0",
            "downloads": 10,
            "documentation": DOCS,
            "external_id": f"ext-{uniq}",
        },
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    hosting = r.json()
    assert hosting["platform"] == platform.slug
    assert hosting["status"] == "hosted"
    assert hosting["documentation"]["model_card"] == DOCS["model_card"]
    assert hosting["documentation"]["risk_analysis"] == {"present": False, "url": None}
    assert hosting["downloads_at"] is not None

    r = await client.patch(
        f"/v1/hostings/{hosting['id']}",
        json={"revision": "abc2", "documentation": {"risk_analysis": {"present": True}}},
        headers=platform.headers,
    )
    assert r.status_code == 200
    updated = r.json()
    assert updated["revision"] == "abc2"
    # Only the named document changed; the others kept their evidence.
    assert updated["documentation"]["model_card"] == DOCS["model_card"]
    assert updated["documentation"]["risk_analysis"]["present"] is True

    r = await client.patch(
        f"/v1/hostings/{hosting['id']}", json={"status": "removed"}, headers=admin
    )
    assert r.json()["status"] == "removed"
    # A patch that changes nothing appends nothing.
    r = await client.patch(
        f"/v1/hostings/{hosting['id']}", json={"status": "removed"}, headers=admin
    )
    assert r.status_code == 200

    events = (await client.get(f"/v1/hostings/{hosting['id']}/events", headers=admin)).json()
    assert [e["kind"] for e in events["items"]] == [
        "hosting.recorded",
        "hosting.updated",
        "hosting.removed",
    ]
    second = events["items"][1]
    assert second["stage"] == "prevent"
    assert second["payload"]["changes"]["revision"] == {"from": "abc1", "to": "abc2"}
    assert second["payload"]["state"]["revision"] == "abc2"
    assert second["platform_id"] == platform.id
    assert second["model_id"] == hosting["model_id"]


async def test_hosting_of_unregistered_model_is_422(
    client: httpx.AsyncClient, platform: PlatformFixture, uniq: str
) -> None:
    r = await client.post(
        "/v1/hostings",
        json={"model": f"no/such-{uniq}", "url": "https://hub.example/x"},
        headers=platform.headers,
    )
    assert r.status_code == 422


async def test_second_hosting_of_same_model_on_platform_is_409(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    await register_model(client, admin, f"acme/twice-{uniq}")
    body = {"model": f"acme/twice-{uniq}", "url": "https://hub.example/x"}
    assert (
        await client.post("/v1/hostings", json=body, headers=platform.headers)
    ).status_code == 201
    assert (
        await client.post("/v1/hostings", json=body, headers=platform.headers)
    ).status_code == 409


async def test_concurrent_identical_hostings_make_one_record(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
    pool: asyncpg.Pool,
) -> None:
    await register_model(client, admin, f"acme/race-{uniq}")
    body = {"model": f"acme/race-{uniq}", "url": "https://hub.example/race"}
    results = await asyncio.gather(
        *(client.post("/v1/hostings", json=body, headers=platform.headers) for _ in range(10))
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * 9
    async with pool.acquire() as c:
        n = await c.fetchval(
            "SELECT count(*) FROM events e JOIN hostings h ON h.id = e.subject_id "
            "WHERE h.platform_id = $1 AND e.kind = 'hosting.recorded'",
            UUID(platform.id),
        )
    assert n == 1


async def test_filters_missing_documentation_and_downloads(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    for name, downloads, docs in (
        ("a", 1000, DOCS),
        ("b", 5, {}),
        ("c", 50, {"model_card": {"present": True}}),
    ):
        await register_model(client, admin, f"acme/f{name}-{uniq}")
        r = await client.post(
            "/v1/hostings",
            json={
                "model": f"acme/f{name}-{uniq}",
                "url": "https://hub.example/",
                "downloads": downloads,
                "documentation": docs,
                "licence": "mit",
            },
            headers=platform.headers,
        )
        assert r.status_code == 201
    r = await client.get(
        "/v1/hostings",
        params={"platform": platform.slug, "missing": "safety_testing"},
        headers=admin,
    )
    assert sorted(h["model"] for h in r.json()["items"]) == [f"acme/fb-{uniq}", f"acme/fc-{uniq}"]
    r = await client.get(
        "/v1/hostings", params={"platform": platform.slug, "min_downloads": 50}, headers=admin
    )
    assert sorted(h["model"] for h in r.json()["items"]) == [f"acme/fa-{uniq}", f"acme/fc-{uniq}"]
