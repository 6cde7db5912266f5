"""Before approving, see the reach: the impact of a decision, and of a draft posted before
anything is proposed, through the API; the proposal's ledger event records it."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.conftest import PlatformFixture, register_model
from tests.helpers.notices import admin_headers


async def _host(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    model: str,
    platform: PlatformFixture,
    downloads: int | None,
    status: str = "hosted",
) -> str:
    body: dict[str, Any] = {
        "model": model,
        "url": f"https://{platform.slug}.example/{model}",
        "platform": platform.slug,
        "status": status,
    }
    if downloads is not None:
        body["downloads"] = downloads
    r = await client.post("/v1/hostings", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_impact_of_a_draft_and_of_the_proposal(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    base = f"acme/reach-{uniq}"
    tuned, adapter = f"acme/reach-tuned-{uniq}", f"acme/reach-adapter-{uniq}"
    grandchild = f"acme/reach-quant-{uniq}"
    await register_model(client, admin, base)
    await register_model(client, admin, tuned, base_model=base, derivation="fine_tune")
    await register_model(client, admin, adapter, base_model=base, derivation="adapter")
    await register_model(client, admin, grandchild, base_model=tuned, derivation="quantisation")
    on_hub = await _host(client, admin, base, platform, 100)
    tuned_hub = await _host(client, admin, tuned, platform, 20)
    quant_forge = await _host(client, admin, grandchild, other_platform, 3)
    await _host(client, admin, adapter, other_platform, 5000, status="removed")

    draft = {"model": base, "action": "recall", "reason": "leaks", "include_derivatives": True}
    before = await client.get("/v1/decommissions", headers=admin)
    r = await client.post("/v1/decommissions/impact", json=draft, headers=admin)
    assert r.status_code == 200, r.text
    impact = r.json()
    # Nothing was proposed.
    assert (await client.get("/v1/decommissions", headers=admin)).json() == before.json()
    assert impact["hostings"] == 3
    assert impact["downloads"] == 123  # the removed hosting's downloads are not reached
    assert impact["notify"] == sorted([platform.slug, other_platform.slug])
    by_platform = {p["platform"]: p for p in impact["platforms"]}
    assert {h["hosting_id"] for h in by_platform[platform.slug]["hostings"]} == {
        on_hub,
        tuned_hub,
    }
    assert by_platform[platform.slug]["downloads"] == 120
    assert [h["hosting_id"] for h in by_platform[other_platform.slug]["hostings"]] == [quant_forge]
    assert {k: [m["model"] for m in v] for k, v in impact["derivatives"].items()} == {
        "fine_tune": [tuned],
        "adapter": [adapter],
        "quantisation": [grandchild],
    }
    assert impact["derivatives"]["quantisation"][0]["base_model"] == tuned

    # Narrowed to one platform and without derivatives, the reach shrinks.
    narrow = {**draft, "include_derivatives": False, "platforms": [other_platform.slug]}
    r = await client.post("/v1/decommissions/impact", json=narrow, headers=admin)
    assert (r.json()["hostings"], r.json()["notify"], r.json()["derivatives"]) == (0, [], {})

    # Proposed, the decision shows the same impact, and its proposal event records it.
    r = await client.post("/v1/decommissions", json=draft, headers=admin)
    assert r.status_code == 201, r.text
    decision_id = r.json()["id"]
    r = await client.get(f"/v1/decommissions/{decision_id}/impact", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == impact
    r = await client.get(
        "/v1/events",
        params={"subject_id": decision_id, "kind": "decommission.proposed"},
        headers=admin,
    )
    [proposed] = r.json()["items"]
    assert proposed["payload"]["impact"] == impact


async def test_impact_refuses_bad_drafts_and_other_roles(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    model = f"acme/reach-bad-{uniq}"
    await register_model(client, admin, model)
    draft = {"model": model, "action": "recall", "reason": "leaks"}
    for body, key in (
        ({**draft, "model": f"acme/unknown-{uniq}"}, "model"),
        ({**draft, "platforms": [f"nowhere-{uniq}"]}, "platforms"),
    ):
        r = await client.post("/v1/decommissions/impact", json=body, headers=admin)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert key in r.text
    r = await client.post("/v1/decommissions/impact", json={"model": model}, headers=admin)
    assert r.status_code == 400, r.text
    r = await client.post("/v1/decommissions/impact", json=draft, headers=platform.headers)
    assert r.status_code == 403, r.text
    r = await client.get(
        "/v1/decommissions/00000000-0000-0000-0000-000000000000/impact", headers=admin
    )
    assert r.status_code == 404, r.text


async def test_an_approval_quoting_the_impact_it_was_shown(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    """A second admin reviews the impact, the reach grows before they approve: the
    approval quoting what they were shown is refused; quoting the new impact it passes,
    and the approval's ledger event records the digest approved."""

    second = await admin_headers(pool)
    model = f"acme/quoted-{uniq}"
    await register_model(client, admin, model)
    await _host(client, admin, model, platform, 10)
    draft = {"model": model, "action": "recall", "reason": "leaks"}
    r = await client.post("/v1/decommissions", json=draft, headers=admin)
    assert r.status_code == 201, r.text
    decision_id = r.json()["id"]
    # The preview of a draft and the proposal's impact carry the same digest.
    shown = (await client.get(f"/v1/decommissions/{decision_id}/impact", headers=second)).json()
    preview = (await client.post("/v1/decommissions/impact", json=draft, headers=admin)).json()
    assert shown["digest"].startswith("sha256:")
    assert preview["digest"] == shown["digest"]

    # The reach grows: the model is hosted on a second platform.
    await _host(client, admin, model, other_platform, 5000)
    approve = f"/v1/decommissions/{decision_id}/approve"
    r = await client.post(approve, json={"impact_digest": shown["digest"]}, headers=second)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    now = (await client.get(f"/v1/decommissions/{decision_id}/impact", headers=second)).json()
    assert now["digest"] != shown["digest"]
    assert shown["digest"] in r.json()["detail"]
    assert now["digest"] in r.json()["detail"]
    r = await client.get(f"/v1/decommissions/{decision_id}", headers=admin)
    assert r.json()["status"] == "proposed"

    for bad in ({"impact_digest": "md5:abc"}, {"impact": now["digest"]}):
        r = await client.post(approve, json=bad, headers=second)
        assert r.status_code in (400, 422), r.text
    r = await client.post(approve, json={"impact_digest": now["digest"]}, headers=second)
    assert r.status_code == 200, r.text
    r = await client.get(
        "/v1/events",
        params={"subject_id": decision_id, "kind": "decommission.approved"},
        headers=admin,
    )
    [approved] = r.json()["items"]
    assert approved["payload"]["impact_digest"] == now["digest"]
    assert approved["payload"]["impact_quoted"] is True


async def test_an_approval_without_a_quote_still_works(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str], uniq: str
) -> None:

    second = await admin_headers(pool)
    model = f"acme/unquoted-{uniq}"
    await register_model(client, admin, model)
    r = await client.post(
        "/v1/decommissions", json={"model": model, "action": "recall", "reason": "x"}, headers=admin
    )
    decision_id = r.json()["id"]
    r = await client.post(f"/v1/decommissions/{decision_id}/approve", headers=second)
    assert r.status_code == 200, r.text
    r = await client.get(
        "/v1/events",
        params={"subject_id": decision_id, "kind": "decommission.approved"},
        headers=admin,
    )
    [approved] = r.json()["items"]
    assert approved["payload"]["impact_quoted"] is False
