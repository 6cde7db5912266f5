"""Decisions as CSAF 2.0 advisories, checked by an independent CSAF 2.0 validator."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from csaf.csaf.v20._validator import validate

from tests.conftest import PlatformFixture, make_platform, register_model
from tests.helpers.notices import admin_headers, confirm_target, decide, host, recall_hosted_model


def assert_valid(doc: dict[str, Any]) -> None:
    report = validate(doc, preset="basic")
    failures = [
        (r.id, [e.message for e in r.errors])
        for r in report.results
        if not r.passed and not r.skipped and r.group != "informative"
    ]
    assert report.overall_valid, failures


async def _advisory(
    client: httpx.AsyncClient, headers: dict[str, str], decision_id: str
) -> dict[str, Any]:
    r = await client.get(f"/v1/exports/csaf/decisions/{decision_id}", headers=headers)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


async def test_an_executed_recall_with_derivatives(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    second = await admin_headers(pool)
    base, child = f"acme/csaf-{uniq}", f"acme/csaf-child-{uniq}"
    await register_model(client, admin, base)
    await register_model(client, admin, child, base_model=base, derivation="fine_tune")
    await host(client, admin, base, platform)
    await host(client, admin, child, other_platform)
    decision = await decide(
        client,
        admin,
        second,
        base,
        include_derivatives=True,
        revisions=["9f2c1e0"],
    )
    doc = await _advisory(client, regulator, decision["id"])
    assert_valid(doc)
    assert doc["document"]["tracking"]["status"] == "interim"
    assert [r["summary"] for r in doc["document"]["tracking"]["revision_history"]] == [
        "Decision proposed",
        "Decision approved by a second administrator",
        "Hosting platforms notified",
    ]
    names = sorted(p["name"] for p in doc["product_tree"]["full_product_names"])
    assert names == sorted([base, child])
    [vulnerability] = doc["vulnerabilities"]
    assert vulnerability["remediations"][0]["category"] == "mitigation"
    assert len(vulnerability["product_status"]["known_affected"]) == 2

    for target in decision["targets"]:
        await confirm_target(pool, decision, target)
    doc = await _advisory(client, regulator, decision["id"])
    assert_valid(doc)
    assert doc["document"]["tracking"]["status"] == "final"
    assert doc["document"]["tracking"]["version"] == "4"


@pytest.mark.parametrize(
    ("fields", "category"),
    [
        ({"action": "deprecate", "sunset_at": "2027-01-01T00:00:00Z"}, "no_fix_planned"),
        (
            {
                "action": "licence_change",
                "old_licence": "apache-2.0",
                "new_licence": "research-only",
                "prohibited_uses": ["biometric identification"],
            },
            "mitigation",
        ),
        ({"action": "restrict"}, "mitigation"),
    ],
)
async def test_other_actions_are_valid_advisories(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
    fields: dict[str, Any],
    category: str,
) -> None:
    model = f"acme/csaf-{fields['action']}-{uniq}"
    decision = await recall_hosted_model(
        client, pool, admin, platform, model, notify=False, **fields
    )
    doc = await _advisory(client, regulator, decision["id"])
    assert_valid(doc)
    assert doc["vulnerabilities"][0]["remediations"][0]["category"] == category


async def test_a_withdrawn_decision_is_a_final_advisory_without_remediation(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    regulator: dict[str, str],
    auditor: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    model = f"acme/csaf-withdrawn-{uniq}"
    decision = await recall_hosted_model(client, pool, admin, platform, model, notify=False)
    r = await client.post(
        f"/v1/decommissions/{decision['id']}/withdraw",
        json={"reason": "false report"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    doc = await _advisory(client, regulator, decision["id"])
    assert_valid(doc)
    assert doc["document"]["tracking"]["status"] == "final"
    assert "remediations" not in doc["vulnerabilities"][0]
    # Regulators and admins only; an unknown decision is 404.
    r = await client.get(f"/v1/exports/csaf/decisions/{decision['id']}", headers=auditor)
    assert r.status_code == 403
    r = await client.get(f"/v1/exports/csaf/decisions/{UUID(int=1)}", headers=regulator)
    assert r.status_code == 404


async def test_products_carry_their_purls(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    """CSAF 2.0 has one ``purl`` per product: the first of the model's, the others as
    ``x_generic_uris`` under the purl specification; a model without any has no helper."""
    second = await admin_headers(pool)
    model, child = f"Acme{uniq}/Csaf-Purl", f"Acme{uniq}/Csaf-Plain"
    await register_model(client, admin, model)
    await register_model(client, admin, child, base_model=model, derivation="adapter")
    for fixture, purl_type in ((platform, "huggingface"), (other_platform, "github")):
        r = await client.patch(
            f"/v1/platforms/{fixture.slug}", json={"purl_type": purl_type}, headers=admin
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            "/v1/hostings",
            json={
                "model": model,
                "url": f"https://{fixture.slug}.example/{model}",
                "platform": fixture.slug,
                "revision": "9F2C",
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
    plain = await make_platform(client, pool, admin, f"plain-{uniq}")
    await host(client, admin, child, plain)
    decision = await decide(client, admin, second, model, include_derivatives=True)
    doc = await _advisory(client, regulator, decision["id"])
    assert_valid(doc)
    products = {p["name"]: p for p in doc["product_tree"]["full_product_names"]}
    assert products[model]["product_identification_helper"] == {
        "purl": f"pkg:github/acme{uniq.lower()}/csaf-purl@9F2C",
        "x_generic_uris": [
            {
                "namespace": "https://github.com/package-url/purl-spec",
                "uri": f"pkg:huggingface/Acme{uniq}/Csaf-Purl@9f2c",
            }
        ],
    }
    assert "product_identification_helper" not in products[child]
    r = await client.get(
        "/v1/models", params={"purl": f"pkg:github/acme{uniq}/csaf-purl"}, headers=regulator
    )
    assert [m["id"] for m in r.json()["items"]] == [decision["model_id"]]
