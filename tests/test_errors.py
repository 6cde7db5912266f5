"""Bad input: a precise 4xx with an RFC 9457 body, never a 500, and nothing half-written."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import PlatformFixture, register_model

PROBLEM = "application/problem+json"


def assert_problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = r.json()
    assert body["status"] == status
    assert isinstance(body["type"], str)
    assert body["type"].startswith("urn:risk-registry:problem:")
    assert isinstance(body["title"], str)
    assert body["title"]
    return body


async def test_unknown_field_names_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    r = await client.post(
        "/v1/models", json={"name": f"a/b-{uniq}", "colour": "red"}, headers=admin
    )
    body = assert_problem(r, 400)
    assert "colour" in str(body["errors"])


@pytest.mark.parametrize(
    "payload",
    [
        {"name": 42},
        {"name": "no-slash"},
        {"name": "a/b", "tasks": "not-a-list"},
        {"name": "a/b", "openness": {"weights": "maybe"}},
        [],
        "just a string",
    ],
)
async def test_wrong_types_and_shapes_are_400(
    client: httpx.AsyncClient, admin: dict[str, str], payload: object
) -> None:
    assert_problem(await client.post("/v1/models", json=payload, headers=admin), 400)


async def test_malformed_json_is_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await client.post(
        "/v1/models", content=b"{not json", headers={**admin, "content-type": "application/json"}
    )
    assert_problem(r, 400)


async def test_oversize_body_is_413(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # The test app's limit is 64 KiB.
    r = await client.post(
        "/v1/models",
        content=b'{"name": "' + b"a" * 70_000 + b'"}',
        headers={**admin, "content-type": "application/json"},
    )
    assert_problem(r, 413)


@pytest.mark.parametrize("cursor", ["%%%", "AAAA", "x" * 65, "////////////"])
async def test_bad_cursor_is_400(
    client: httpx.AsyncClient, admin: dict[str, str], cursor: str
) -> None:
    for path in ("/v1/models", "/v1/events", "/v1/hostings", "/v1/platforms", "/v1/keys"):
        r = await client.get(path, params={"cursor": cursor}, headers=admin)
        assert_problem(r, 400)


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten"])
async def test_bad_limit_is_400(
    client: httpx.AsyncClient, admin: dict[str, str], limit: str
) -> None:
    assert_problem(await client.get("/v1/models", params={"limit": limit}, headers=admin), 400)


async def test_unknown_ids_are_404(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    missing = uuid.uuid4()
    for path in (
        f"/v1/models/{missing}",
        f"/v1/models/{missing}/lineage",
        f"/v1/hostings/{missing}",
        f"/v1/hostings/{missing}/events",
        "/v1/platforms/no-such-platform",
    ):
        assert_problem(await client.get(path, headers=admin), 404)
    assert_problem(await client.delete(f"/v1/keys/{missing}", headers=admin), 404)
    assert_problem(await client.get("/v1/models/not-a-uuid", headers=admin), 404)


async def test_invalid_patch_writes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    await register_model(client, admin, f"acme/p-{uniq}")
    hosting = (
        await client.post(
            "/v1/hostings",
            json={"model": f"acme/p-{uniq}", "url": "https://hub.example/"},
            headers=platform.headers,
        )
    ).json()
    r = await client.patch(
        f"/v1/hostings/{hosting['id']}",
        json={"licence": "mit", "downloads": -5},
        headers=platform.headers,
    )
    assert_problem(r, 400)
    after = (await client.get(f"/v1/hostings/{hosting['id']}", headers=admin)).json()
    assert after["licence"] is None
    events = (await client.get(f"/v1/hostings/{hosting['id']}/events", headers=admin)).json()
    assert len(events["items"]) == 1


async def test_platform_key_needs_platform_for_keys(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    r = await client.post("/v1/keys", json={"role": "platform", "name": "x"}, headers=admin)
    assert_problem(r, 422)
    r = await client.post(
        "/v1/keys", json={"role": "auditor", "name": "x", "platform": f"p-{uniq}"}, headers=admin
    )
    assert_problem(r, 422)


async def test_wrong_method_is_405(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert_problem(await client.put("/v1/models", json={}, headers=admin), 405)


async def test_wrong_content_type_is_a_4xx(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    r = await client.post(
        "/v1/models",
        content=f"name=a/b-{uniq}".encode(),
        headers={**admin, "content-type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= r.status_code < 500
    assert r.headers["content-type"].startswith(PROBLEM)
