"""A proposed decision may cite only incidents, audit findings and policies that exist;
a reference to anything else is refused (422, naming the field) and nothing is written."""

from __future__ import annotations

from uuid import UUID, uuid4

import httpx
import pytest

from tests.conftest import register_model

MISSING = str(UUID(int=7))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("incident_ids", [MISSING]),
        ("finding_ids", [MISSING]),
        ("policy_id", MISSING),
    ],
)
async def test_a_reference_to_no_record_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str, field: str, value: object
) -> None:
    model = await register_model(client, admin, f"refs-{uniq}/{uuid4().hex[:8]}")
    body = {"model": model["name"], "reason": "cited", "action": "recall", field: value}
    r = await client.post("/v1/decommissions", json=body, headers=admin)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["key"] == field
    r = await client.get("/v1/decommissions", params={"model_id": str(model["id"])}, headers=admin)
    assert r.json()["items"] == []


async def test_existing_references_are_accepted_and_kept(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    model = await register_model(client, admin, f"refs-{uniq}/cited")
    r = await client.post(
        "/v1/incidents",
        json={
            "title": "weights leak a training set",
            "category": "privacy",
            "severity": "medium",
            "models": [model["name"]],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    incident_id = r.json()["id"]
    r = await client.post(
        "/v1/decommissions",
        json={
            "model": model["name"],
            "reason": "cited",
            "action": "recall",
            "incident_ids": [incident_id, incident_id],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["incident_ids"] == [incident_id]
