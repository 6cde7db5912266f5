"""Model names are case-insensitive, as on Hugging Face and GitHub: ``Acme/Chat-7B`` and
``acme/chat-7b`` are one model on every path (REST, webhooks, decisions, incidents,
lookups), shown as first spelled."""

from __future__ import annotations

import asyncpg
import httpx

from tests.conftest import PlatformFixture, register_model
from tests.helpers.adapters import gh_repository, gh_send
from tests.helpers.audits import audit_body, grant, new_auditor
from tests.helpers.webhooks import deliver, event, hosted, new_secret


async def test_one_model_whatever_the_case(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    first = f"Acme/Chat-7B-{uniq}"
    lower, upper = first.lower(), first.upper()
    model = await register_model(client, admin, first)
    model_id = str(model["id"])

    # Registering it again in another case is registering it again.
    r = await client.post("/v1/models", json={"name": lower}, headers=admin)
    assert r.status_code == 409, r.text

    # Lookups by name and prefix, in any case, find it under its first spelling.
    for params in ({"name": upper}, {"prefix": lower[:-2]}):
        r = await client.get("/v1/models", params=params, headers=admin)
        assert r.status_code == 200, r.text
        assert [(m["id"], m["name"]) for m in r.json()["items"]] == [(model_id, first)]

    # REST hosting under another spelling.
    r = await client.post(
        "/v1/hostings",
        json={"model": upper, "url": "https://o.example/x", "platform": other_platform.slug},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["model_id"], r.json()["model"]) == (model_id, first)

    # Signed webhooks: hosted, updated and downloads, each in its own case.
    secret = await new_secret(client, admin, platform.slug)
    assert (await deliver(client, platform.slug, secret, hosted(lower))).status_code == 202
    body = event("model.updated", {"model": upper, "licence": "apache-2.0"})
    r = await deliver(client, platform.slug, secret, body)
    assert r.status_code == 202, r.text
    body = event("model.downloads", {"counts": [{"model": first, "downloads": 42}]})
    r = await deliver(client, platform.slug, secret, body)
    assert r.status_code == 202, r.text
    r = await client.get("/v1/hostings", params={"model_id": model_id}, headers=admin)
    mine = [h for h in r.json()["items"] if h["platform"] == platform.slug]
    assert len(mine) == 1
    assert (mine[0]["model"], mine[0]["licence"], mine[0]["downloads"]) == (
        first,
        "apache-2.0",
        42,
    )
    r = await client.get("/v1/models", params={"prefix": lower[:-2]}, headers=admin)
    assert len(r.json()["items"]) == 1

    # The Hugging Face adapter: the Hub made the repo private, named in yet another case.
    swapped = first.swapcase()
    hub = {
        "event": {"action": "update", "scope": "repo.config"},
        "repo": {
            "type": "model",
            "name": swapped,
            "id": f"hf{uniq}",
            "private": True,
            "url": {"web": f"https://huggingface.co/{swapped}"},
        },
        "updatedConfig": {"private": True},
        "webhook": {"id": "6390e855e30d9209411de93b", "version": 3},
    }
    r = await client.post(
        f"/v1/webhooks/{platform.slug}/huggingface",
        json=hub,
        headers={"x-webhook-secret": secret},
    )
    assert r.status_code == 202, r.text
    r = await client.get("/v1/hostings", params={"model_id": model_id}, headers=admin)
    mine = [h for h in r.json()["items"] if h["platform"] == platform.slug]
    assert [(h["model"], h["status"]) for h in mine] == [(first, "restricted")]

    # An incident naming it twice, in two cases, names one model.
    r = await client.post(
        "/v1/incidents",
        json={
            "title": "t",
            "category": "malfunction",
            "severity": "low",
            "models": [lower, upper],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["model_ids"] == [model_id]
    assert r.json()["models"] == [first]

    # A decision on it, named in yet another case, is on the same model and its hostings.
    r = await client.post(
        "/v1/decommissions",
        json={"model": upper, "action": "recall", "reason": "unsafe"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["model_id"], r.json()["model"]) == (model_id, first)
    assert len(r.json()["targets"]) == 2


async def test_the_github_adapter_and_audits_name_one_model_whatever_the_case(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    first = f"Acme/Forge-{uniq}"
    model = await register_model(client, admin, first)
    model_id = str(model["id"])
    secret = await new_secret(client, admin, platform.slug)

    # GitHub: created under a lower-case name, then archived under an upper-case one.
    created = {"action": "created", "repository": gh_repository(first.lower())}
    r = await gh_send(client, platform.slug, secret, "repository", created)
    assert r.status_code == 202, r.text
    archived = {"action": "archived", "repository": gh_repository(first.upper(), archived=True)}
    r = await gh_send(client, platform.slug, secret, "repository", archived)
    assert r.status_code == 202, r.text
    r = await client.get("/v1/hostings", params={"model_id": model_id}, headers=admin)
    mine = [h for h in r.json()["items"] if h["platform"] == platform.slug]
    assert [(h["model"], h["status"]) for h in mine] == [(first, "restricted")]
    r = await client.get("/v1/models", params={"prefix": first.lower()}, headers=admin)
    assert [m["id"] for m in r.json()["items"]] == [model_id]

    # An auditor granted the model in one case audits it named in another.
    auditor = await new_auditor(pool)
    await grant(client, admin, auditor, first.swapcase(), ["weights"])
    r = await client.post("/v1/audits", json=audit_body(first.upper()), headers=auditor.headers)
    assert r.status_code == 201, r.text
    assert r.json()["model_ids"] == [model_id]
    r = await client.get("/v1/audits", params={"model_id": model_id}, headers=admin)
    assert len(r.json()["items"]) == 1
