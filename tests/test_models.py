"""Models and their lineage: registration, filters, ancestors and descendants."""

from __future__ import annotations

import httpx

from tests.conftest import PlatformFixture, register_model


async def test_register_read_and_update_a_model(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    model = await register_model(
        client,
        admin,
        f"acme/base-{uniq}",
        provider="Acme",
        tasks=["text-generation"],
        modalities=["text"],
        openness={"weights": "open", "code": "restricted"},
    )
    assert model["openness"] == {
        "weights": "open",
        "code": "restricted",
        "data": "unknown",
        "model_card": "unknown",
    }
    r = await client.get(f"/v1/models/{model['id']}", headers=admin)
    assert r.status_code == 200
    assert r.json()["name"] == f"acme/base-{uniq}"

    r = await client.patch(
        f"/v1/models/{model['id']}", json={"provider": "Acme Labs"}, headers=admin
    )
    assert r.status_code == 200
    assert r.json()["provider"] == "Acme Labs"
    events = await client.get("/v1/events", params={"subject_id": str(model["id"])}, headers=admin)
    kinds = [e["kind"] for e in events.json()["items"]]
    assert kinds == ["model.registered", "model.updated"]
    assert events.json()["items"][1]["payload"]["changes"]["provider"] == {
        "from": "Acme",
        "to": "Acme Labs",
    }


async def test_duplicate_name_is_409(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    await register_model(client, admin, f"acme/dup-{uniq}")
    r = await client.post("/v1/models", json={"name": f"acme/dup-{uniq}"}, headers=admin)
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_lineage_lists_ancestors_and_descendants(
    client: httpx.AsyncClient, admin: dict[str, str], auditor: dict[str, str], uniq: str
) -> None:
    base = await register_model(client, admin, f"acme/base-{uniq}")
    chat = await register_model(
        client,
        admin,
        f"acme/chat-{uniq}",
        base_model=f"acme/base-{uniq}",
        derivation="fine_tune",
    )
    quant = await register_model(
        client,
        admin,
        f"tq/chat-q4-{uniq}",
        base_model=f"acme/chat-{uniq}",
        derivation="quantisation",
    )
    r = await client.get(f"/v1/models/{quant['id']}/lineage", headers=auditor)
    assert r.status_code == 200
    body = r.json()
    assert [(a["name"], a["depth"]) for a in body["ancestors"]] == [
        (f"acme/chat-{uniq}", 1),
        (f"acme/base-{uniq}", 2),
    ]
    r = await client.get(f"/v1/models/{base['id']}/lineage", headers=auditor)
    assert [(d["name"], d["depth"], d["derivation"]) for d in r.json()["descendants"]] == [
        (f"acme/chat-{uniq}", 1, "fine_tune"),
        (f"tq/chat-q4-{uniq}", 2, "quantisation"),
    ]
    assert chat["base_model_id"] == base["id"]


async def test_lineage_cannot_loop(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    a = await register_model(client, admin, f"acme/a-{uniq}")
    await register_model(client, admin, f"acme/b-{uniq}", base_model=f"acme/a-{uniq}")
    r = await client.patch(
        f"/v1/models/{a['id']}", json={"base_model": f"acme/b-{uniq}"}, headers=admin
    )
    assert r.status_code == 409
    r = await client.patch(
        f"/v1/models/{a['id']}", json={"base_model": f"acme/a-{uniq}"}, headers=admin
    )
    assert r.status_code == 422


async def test_unknown_base_model_is_422_and_writes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    r = await client.post(
        "/v1/models",
        json={"name": f"acme/orphan-{uniq}", "base_model": f"no/such-{uniq}"},
        headers=admin,
    )
    assert r.status_code == 422
    r = await client.get("/v1/models", params={"name": f"acme/orphan-{uniq}"}, headers=admin)
    assert r.json()["items"] == []


async def test_list_filters_and_keyset_pagination(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    names = [f"pg{uniq}/m-{i}" for i in range(5)]
    for i, name in enumerate(names):
        await register_model(client, admin, name, tasks=["even" if i % 2 == 0 else "odd"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"prefix": f"pg{uniq}/", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/models", params=params, headers=admin)).json()
        assert len(page["items"]) <= 2
        seen += [m["name"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names
    even = await client.get(
        "/v1/models", params={"prefix": f"pg{uniq}/", "task": "even"}, headers=admin
    )
    assert [m["name"] for m in even.json()["items"]] == names[0::2]


async def test_platform_may_register_models(
    client: httpx.AsyncClient, platform: PlatformFixture, uniq: str
) -> None:
    r = await client.post(
        "/v1/models", json={"name": f"acme/by-platform-{uniq}"}, headers=platform.headers
    )
    assert r.status_code == 201
