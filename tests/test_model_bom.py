"""A model's lineage family as a CycloneDX 1.6 ML-BOM, read over HTTP and checked against
the official schema by cyclonedx-python-lib; a platform can send it back as its catalogue."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import httpx
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.conftest import PlatformFixture, register_model
from tests.helpers.catalogue import CYCLONEDX, push
from tests.helpers.notices import admin_headers, decide
from tests.helpers.webhooks import new_secret

BOM_TYPE = "application/vnd.cyclonedx+json; version=1.6"


def assert_valid(text: str) -> None:
    fault = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert fault is None, fault


async def _bom(client: httpx.AsyncClient, headers: dict[str, str], model_id: object) -> Any:
    r = await client.get(f"/v1/models/{model_id}/bom", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == BOM_TYPE
    assert_valid(r.text)
    return r.json()


async def _host(
    client: httpx.AsyncClient, admin: dict[str, str], model: str, slug: str, **fields: Any
) -> dict[str, Any]:
    r = await client.post(
        "/v1/hostings",
        json={"model": model, "url": f"https://{slug}.example/{model}", "platform": slug, **fields},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    hosting: dict[str, Any] = r.json()
    return hosting


DOCS = {
    "model_card": {"present": True, "url": "https://docs.example/card"},
    "use_guidance": {"present": True, "url": "https://docs.example/use"},
    "risk_analysis": {"present": True},
    "safety_testing": {"present": True, "url": "https://docs.example/safety"},
}


async def _family(
    client: httpx.AsyncClient, admin: dict[str, str], slug: str, uniq: str
) -> tuple[str, str, str, str]:
    """base <- model (fine-tune) <- child (adapter), each hosted on ``slug`` (a Hugging Face
    hub: its hostings have purls); the model's id."""
    typed = {"purl_type": "huggingface"}
    r = await client.patch(f"/v1/platforms/{slug}", json=typed, headers=admin)
    assert r.status_code == 200, r.text
    base, model, child = (f"acme/bom-{n}-{uniq}" for n in ("base", "model", "child"))
    await register_model(client, admin, base)
    created = await register_model(client, admin, model, base_model=base, derivation="fine_tune")
    await register_model(client, admin, child, base_model=model, derivation="adapter")
    await _host(client, admin, base, slug, revision="b1", licence="apache-2.0")
    await _host(client, admin, model, slug, revision="m2", licence="mit", documentation=DOCS)
    await _host(client, admin, child, slug, revision="c3")
    return base, model, child, str(created["id"])


def _components(doc: Any) -> dict[str, Any]:
    return {c["name"]: c for c in doc["components"]}


async def test_the_bom_is_the_lineage_family_with_pedigree_and_model_card(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    auditor: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    base, model, child, model_id = await _family(client, admin, platform.slug, uniq)
    doc = await _bom(client, auditor, model_id)
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.6")
    top = doc["metadata"]["component"]
    assert (top["type"], top["name"], top["version"]) == ("machine-learning-model", model, "m2")
    assert top["purl"] == f"pkg:huggingface/acme/bom-model-{uniq}@m2"
    assert top["pedigree"]["ancestors"][0]["purl"] == f"pkg:huggingface/acme/bom-base-{uniq}@b1"
    assert top["licenses"] == [{"license": {"name": "mit"}}]
    assert [a["name"] for a in top["pedigree"]["ancestors"]] == [base]
    assert {"name": "registry:relation", "value": "fine_tune"} in top["properties"]
    # The family: its ancestor and its descendant, each an ML model with its own pedigree.
    components = _components(doc)
    assert set(components) == {base, child}
    assert all(c["type"] == "machine-learning-model" for c in components.values())
    assert "pedigree" not in components[base]
    assert components[base]["licenses"] == [{"license": {"name": "apache-2.0"}}]
    assert [a["name"] for a in components[child]["pedigree"]["ancestors"]] == [model]
    assert components[child]["purl"] == f"pkg:huggingface/acme/bom-child-{uniq}@c3"
    # The model card from the documentation evidence; absent where there is none.
    card = top["modelCard"]
    assert card["considerations"]["useCases"] == [
        "Use guidance is published: https://docs.example/use"
    ]
    assert card["considerations"]["ethicalConsiderations"] == [{"name": "Risk analysis published"}]
    assert card["quantitativeAnalysis"]["performanceMetrics"][0]["type"] == "safety testing"
    refs = {(r["type"], r["url"]) for r in top["externalReferences"]}
    assert ("model-card", "https://docs.example/card") in refs
    assert ("quality-metrics", "https://docs.example/safety") in refs
    assert ("distribution", f"https://{platform.slug}.example/{model}") in refs
    assert "modelCard" not in components[child]
    assert "annotations" not in doc
    # Every role reads it, as it reads the model; the family is the same from any member.
    child_id = components[child]["bom-ref"].removeprefix("model:")
    doc = await _bom(client, regulator, child_id)
    assert doc["metadata"]["component"]["name"] == child
    assert set(_components(doc)) == {base, model}


async def test_decisions_in_force_are_annotations_and_withdrawn_ones_are_not(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    auditor: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    second = await admin_headers(pool)
    base, _, child, model_id = await _family(client, admin, platform.slug, uniq)
    recall = await decide(client, admin, second, base)
    withdrawn = await decide(client, admin, second, child)
    r = await client.post(
        f"/v1/decommissions/{withdrawn['id']}/withdraw",
        json={"reason": "false report"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    doc = await _bom(client, auditor, model_id)
    [note] = doc["annotations"]
    base_ref = _components(doc)[base]["bom-ref"]
    assert note["subjects"] == [base_ref]
    assert note["annotator"] == {"organization": {"name": "AI lifecycle risk registry"}}
    assert recall["id"] in note["text"]
    assert "recall" in note["text"]
    assert "notified" in note["text"]
    assert "unsafe outputs" in note["text"]
    assert withdrawn["id"] not in str(doc)
    # The platform it was notified to sees it too.
    doc = await _bom(client, platform.headers, model_id)
    assert [n["bom-ref"] for n in doc["annotations"]] == [f"decision:{recall['id']}"]


async def test_a_platform_sees_its_own_hostings_only(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    _, model, _, model_id = await _family(client, admin, platform.slug, uniq)
    await _host(client, admin, model, other_platform.slug, revision="o9", licence="secret-x")
    doc = await _bom(client, other_platform.headers, model_id)
    top = doc["metadata"]["component"]
    assert top["licenses"] == [{"license": {"name": "secret-x"}}]
    assert platform.slug not in str(doc)
    doc = await _bom(client, admin, model_id)
    assert {lic["license"]["name"] for lic in doc["metadata"]["component"]["licenses"]} == {
        "mit",
        "secret-x",
    }


async def test_unknown_model_is_404_and_other_formats_406(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    r = await client.get(f"/v1/models/{UUID(int=7)}/bom", headers=admin)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    created = await register_model(client, admin, f"acme/bom-alone-{uniq}")
    r = await client.get(f"/v1/models/{created['id']}/bom", headers={**admin, "accept": "text/csv"})
    assert r.status_code == 406, r.text
    r = await client.get(f"/v1/models/{created['id']}/bom", headers={**admin, "accept": "*/*"})
    assert r.status_code == 200, r.text
    assert_valid(r.text)
    r = await client.get(f"/v1/models/{created['id']}/bom")
    assert r.status_code == 401


async def test_the_bom_sent_back_as_a_catalogue_yields_the_same_family(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    base, model, child, model_id = await _family(client, admin, platform.slug, uniq)
    r = await client.get(f"/v1/models/{model_id}/bom", headers=admin)
    assert r.status_code == 200, r.text
    lineage = await client.get(f"/v1/models/{model_id}/lineage", headers=admin)
    secret = await new_secret(client, admin, other_platform.slug)
    sync = await push(client, other_platform.slug, secret, r.content, media=CYCLONEDX)
    assert sync.status_code == 200, sync.text
    summary = sync.json()
    assert summary["rejected"] == [], summary
    assert summary["added"] == 2, summary
    r = await client.get(
        "/v1/hostings", params={"platform": other_platform.slug, "limit": 10}, headers=admin
    )
    synced = {h["model"]: h for h in r.json()["items"]}
    assert set(synced) == {base, child}
    assert (synced[base]["revision"], synced[base]["licence"]) == ("b1", "apache-2.0")
    assert synced[child]["revision"] == "c3"
    assert synced[base]["url"] == f"https://{platform.slug}.example/{base}"
    after = await client.get(f"/v1/models/{model_id}/lineage", headers=admin)
    assert after.json() == lineage.json()
    r = await client.get(f"/v1/models/{synced[child]['model_id']}", headers=admin)
    assert (r.json()["base_model"], r.json()["derivation"]) == (model, "adapter")


async def test_the_bom_under_new_names_registers_the_same_lineage(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    """Sent back under names the registry does not know, the components' pedigree registers
    the same lineage (the intake reads ``components``, not ``metadata.component``: the
    model itself arrives as the base model its descendant names)."""
    base, model, child, model_id = await _family(client, admin, platform.slug, uniq)
    r = await client.get(f"/v1/models/{model_id}/bom", headers=admin)
    assert r.status_code == 200, r.text
    fresh = uniq[::-1] + "x"
    body = r.content.replace(uniq.encode(), fresh.encode())
    secret = await new_secret(client, admin, other_platform.slug)
    sync = await push(client, other_platform.slug, secret, body, media=CYCLONEDX)
    assert sync.status_code == 200, sync.text
    assert sync.json()["rejected"] == [], sync.text
    assert sync.json()["registered"] == 3, sync.text
    new = {name: name.replace(uniq, fresh) for name in (base, model, child)}
    found = {}
    for old, name in new.items():
        r = await client.get("/v1/models", params={"name": name}, headers=admin)
        [found[old]] = r.json()["items"]
    assert (found[child]["base_model"], found[child]["derivation"]) == (new[model], "adapter")
    assert found[base]["base_model"] is None
    lineage = await client.get(f"/v1/models/{found[child]['id']}/lineage", headers=admin)
    assert [a["name"] for a in lineage.json()["ancestors"]] == [new[model]]
