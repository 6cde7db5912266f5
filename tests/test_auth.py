"""Bearer keys and role guards: who may call what, and what a platform key may see."""

from __future__ import annotations

import asyncpg
import httpx

from tests.conftest import PlatformFixture, bearer, make_key, register_model


async def test_missing_and_malformed_keys_are_401_problems(client: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer rr_0000000000000000_nope"},
        {"Authorization": "Bearer not-a-key"},
    ):
        r = await client.get("/v1/platforms", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 401
        assert r.headers["www-authenticate"] == "Bearer"


async def test_a_wrong_secret_for_a_real_lookup_is_refused(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    key = await make_key(pool, "admin")
    prefix, lookup, secret = key.split("_", 2)
    forged = f"{prefix}_{lookup}_{'x' * len(secret)}"
    assert (await client.get("/v1/platforms", headers=bearer(key))).status_code == 200
    assert (await client.get("/v1/platforms", headers=bearer(forged))).status_code == 401


async def test_revoked_key_stops_working_at_once(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    key = await make_key(pool, "auditor")
    assert (await client.get("/v1/models", headers=bearer(key))).status_code == 200
    listed = await client.get("/v1/keys", params={"role": "auditor", "limit": 200}, headers=admin)
    assert listed.status_code == 200
    # The list never carries secrets.
    assert "secret" not in listed.text
    assert key not in listed.text
    lookup_hits = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"role": "auditor", "limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/keys", params=params, headers=admin)).json()
        lookup_hits.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    async with pool.acquire() as c:
        key_id = await c.fetchval("SELECT id FROM api_keys WHERE lookup = $1", key.split("_")[1])
    assert any(item["id"] == str(key_id) for item in lookup_hits)
    r = await client.delete(f"/v1/keys/{key_id}", headers=admin)
    assert r.status_code == 200
    assert r.json()["revoked_at"] is not None
    assert (await client.get("/v1/models", headers=bearer(key))).status_code == 401


async def test_keys_are_stored_as_hashes_only(pool: asyncpg.Pool) -> None:
    key = await make_key(pool, "regulator")
    secret = key.split("_", 2)[2]
    async with pool.acquire() as c:
        row = await c.fetchrow(
            "SELECT lookup, secret_hash FROM api_keys WHERE lookup = $1", key.split("_")[1]
        )
    assert row is not None
    assert len(row["secret_hash"]) == 32
    assert secret.encode() not in bytes(row["secret_hash"])


async def test_last_used_time_is_recorded(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    key = await make_key(pool, "auditor")
    lookup = key.split("_")[1]
    async with pool.acquire() as c:
        assert await c.fetchval("SELECT last_used_at FROM api_keys WHERE lookup=$1", lookup) is None
        await client.get("/v1/models", headers=bearer(key))
        assert (
            await c.fetchval("SELECT last_used_at FROM api_keys WHERE lookup=$1", lookup)
            is not None
        )


async def test_read_only_roles_cannot_write(
    client: httpx.AsyncClient, auditor: dict[str, str], regulator: dict[str, str], uniq: str
) -> None:
    for headers in (auditor, regulator):
        r = await client.post(
            "/v1/platforms",
            json={"slug": f"p-{uniq}", "name": "P", "kind": "model_hub"},
            headers=headers,
        )
        assert r.status_code == 403
        assert r.json()["type"].endswith(":forbidden")
        r = await client.post("/v1/models", json={"name": f"o/m-{uniq}"}, headers=headers)
        assert r.status_code == 403
        r = await client.post("/v1/keys", json={"role": "admin", "name": "x"}, headers=headers)
        assert r.status_code == 403
        assert (await client.get("/v1/keys", headers=headers)).status_code == 403


async def test_platform_key_cannot_manage_keys_or_platforms(
    client: httpx.AsyncClient, platform: PlatformFixture, uniq: str
) -> None:
    assert (await client.get("/v1/keys", headers=platform.headers)).status_code == 403
    r = await client.post(
        "/v1/platforms",
        json={"slug": f"x-{uniq}", "name": "X", "kind": "model_hub"},
        headers=platform.headers,
    )
    assert r.status_code == 403


async def test_platform_sees_only_its_own_hostings_and_platform(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    await register_model(client, admin, f"acme/iso-{uniq}")
    mine = await client.post(
        "/v1/hostings",
        json={"model": f"acme/iso-{uniq}", "url": "https://hub.example/a"},
        headers=platform.headers,
    )
    assert mine.status_code == 201, mine.text
    theirs = await client.post(
        "/v1/hostings",
        json={"model": f"acme/iso-{uniq}", "url": "https://forge.example/a"},
        headers=other_platform.headers,
    )
    assert theirs.status_code == 201
    their_id = theirs.json()["id"]

    # Another platform's record is 404, not 403: ids do not leak.
    r = await client.get(f"/v1/hostings/{their_id}", headers=platform.headers)
    assert r.status_code == 404
    r = await client.patch(
        f"/v1/hostings/{their_id}", json={"licence": "mit"}, headers=platform.headers
    )
    assert r.status_code == 404
    r = await client.get(f"/v1/hostings/{their_id}/events", headers=platform.headers)
    assert r.status_code == 404
    r = await client.get(f"/v1/platforms/{other_platform.slug}", headers=platform.headers)
    assert r.status_code == 404

    listed = await client.get(
        "/v1/hostings", params={"model_id": mine.json()["model_id"]}, headers=platform.headers
    )
    assert [h["id"] for h in listed.json()["items"]] == [mine.json()["id"]]
    # Asking for the other platform by name yields nothing rather than its records.
    listed = await client.get(
        "/v1/hostings", params={"platform": other_platform.slug}, headers=platform.headers
    )
    assert listed.json()["items"] == []
    platforms = await client.get("/v1/platforms", headers=platform.headers)
    assert [p["slug"] for p in platforms.json()["items"]] == [platform.slug]

    # A platform key cannot record a hosting on another platform.
    r = await client.post(
        "/v1/hostings",
        json={
            "model": f"acme/iso-{uniq}",
            "url": "https://x.example/",
            "platform": other_platform.slug,
        },
        headers=platform.headers,
    )
    assert r.status_code == 403
    # The admin sees both.
    both = await client.get(
        "/v1/hostings", params={"model_id": mine.json()["model_id"]}, headers=admin
    )
    assert len(both.json()["items"]) == 2


async def test_health_checks_need_no_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
