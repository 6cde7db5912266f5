"""Naming a platform in a listing: a platform key sees its own platform's records only,
whether it names its own, another, one that does not exist, or none; other roles see the
platform named. The same rule on every listing that takes ``?platform=``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import PlatformFixture, register_model


async def _seed(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> dict[str, Any]:
    """One model hosted on both platforms, and a notification endpoint for each."""
    model = await register_model(client, admin, f"scope-{uniq}/shared")
    for owner in (platform, other_platform):
        r = await client.post(
            "/v1/hostings",
            json={"model": model["name"], "url": f"https://{owner.slug}.example/m"},
            headers=owner.headers,
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            f"/v1/platforms/{owner.slug}/endpoints",
            json={"url": f"https://{owner.slug}.example/hook"},
            headers=admin,
        )
        assert r.status_code == 201, r.text
    return model


def _listings(model: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """Every listing that narrows by ``?platform=``, kept to this test's records."""
    model_id = str(model["id"])
    return [
        ("/v1/hostings", {"model_id": model_id}),
        ("/v1/events", {"model_id": model_id}),
        (f"/v1/models/{model_id}/history", {}),
        ("/v1/endpoints", {}),
    ]


def _platforms_in(body: dict[str, Any]) -> set[str]:
    return {item["platform_id"] for item in body["items"]}


@pytest.mark.parametrize("listing", range(4), ids=["hostings", "events", "history", "endpoints"])
async def test_a_platform_key_sees_its_own_platform_whatever_it_names(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
    listing: int,
) -> None:
    model = await _seed(client, admin, platform, other_platform, uniq)
    path, params = _listings(model)[listing]

    async def seen(headers: dict[str, str], **narrow: str) -> set[str]:
        r = await client.get(path, params={**params, **narrow}, headers=headers)
        assert r.status_code == 200, r.text
        return _platforms_in(r.json())

    assert await seen(platform.headers) == {platform.id}
    assert await seen(platform.headers, platform=platform.slug) == {platform.id}
    # Another platform, or one that does not exist: an empty page, not its records, not 404.
    assert await seen(platform.headers, platform=other_platform.slug) == set()
    assert await seen(platform.headers, platform=f"nowhere-{uniq}") == set()

    # An admin sees every platform's (and, in the ledger, the model's own events), or the
    # named platform's only.
    if params:
        assert {platform.id, other_platform.id} <= await seen(admin)
    else:
        # Endpoints are not kept to this test's records: the first page of every platform's
        # may hold none of them, so look at each platform's.
        assert await seen(admin, platform=platform.slug) == {platform.id}
    assert await seen(admin, platform=other_platform.slug) == {other_platform.id}
    assert await seen(admin, platform=f"nowhere-{uniq}") == set()


async def test_which_platform_a_new_hosting_is_recorded_on(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    model = await register_model(client, admin, f"scope-{uniq}/new")

    async def record(headers: dict[str, str], url: str, **named: str) -> httpx.Response:
        body = {"model": model["name"], "url": url, **named}
        return await client.post("/v1/hostings", json=body, headers=headers)

    # A platform key records on its own platform, named or not, and on no other.
    r = await record(platform.headers, "https://a.example/", platform=other_platform.slug)
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await record(platform.headers, "https://a.example/", platform=platform.slug)
    assert r.status_code == 201, r.text
    assert r.json()["platform_id"] == platform.id
    # An admin must name the platform, and one that exists.
    r = await record(admin, "https://b.example/")
    assert r.status_code == 422, r.text
    r = await record(admin, "https://b.example/", platform=f"nowhere-{uniq}")
    assert r.status_code == 422, r.text
    r = await record(admin, "https://b.example/", platform=other_platform.slug)
    assert r.status_code == 201, r.text
    assert r.json()["platform_id"] == other_platform.id
    r = await client.get("/v1/hostings", params={"model_id": str(model["id"])}, headers=admin)
    assert _platforms_in(r.json()) == {platform.id, other_platform.id}
