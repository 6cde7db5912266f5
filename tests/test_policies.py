"""Decommission policies: stored, versioned data that proposes decisions, never approves."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import asyncpg
import httpx

from service.domain import decommissions
from service.domain.keys import create_key
from service.domain.policies import propose_for_incident
from service.schemas.keys import ApiKeyIn
from tests.conftest import bearer, register_model


def _policy(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "action": "recall",
        "clause": "Recall on a confirmed critical harmful-content incident (policy 4.2)",
        "conditions": {"categories": ["harmful_content"], "min_severity": "critical"},
        "include_derivatives": True,
        **fields,
    }


async def _incident(
    client: httpx.AsyncClient, admin: dict[str, str], model: str, **fields: Any
) -> str:
    r = await client.post(
        "/v1/incidents",
        json={
            "title": "generates instructions for harm",
            "category": "harmful_content",
            "severity": "critical",
            "models": [model],
            **fields,
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    incident_id: str = r.json()["id"]
    for to in ("triaged", "investigating"):
        r = await client.post(
            f"/v1/incidents/{incident_id}/transitions", json={"to": to}, headers=admin
        )
        assert r.status_code == 200, r.text
    return incident_id


async def get_decision(pool: asyncpg.Pool, decision_id: UUID) -> Any:
    async with pool.acquire() as raw:
        return await decommissions.get_decision(
            cast("asyncpg.Connection", raw), decision_id=decision_id
        )


async def _propose(pool: asyncpg.Pool, incident_id: str, actor_id: UUID | None) -> list[Any]:
    async with pool.acquire() as raw, raw.transaction():
        return await propose_for_incident(
            cast("asyncpg.Connection", raw), incident_id=UUID(incident_id), actor_id=actor_id
        )


async def test_policies_are_versioned_data(
    client: httpx.AsyncClient, admin: dict[str, str], auditor: dict[str, str], uniq: str
) -> None:
    name = f"harm-{uniq}"
    r = await client.post("/v1/decommission-policies", json=_policy(name), headers=admin)
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["version"], first["active"]) == (1, True)
    r = await client.post("/v1/decommission-policies", json=_policy(name), headers=admin)
    assert r.status_code == 409
    r = await client.post("/v1/decommission-policies", json=_policy(name), headers=auditor)
    assert r.status_code == 403
    body = _policy(name)
    del body["name"]
    body["conditions"]["serious"] = True
    r = await client.post(f"/v1/decommission-policies/{name}/versions", json=body, headers=admin)
    assert r.status_code == 201, r.text
    second = r.json()
    assert (second["version"], second["active"]) == (2, True)
    assert second["conditions"]["serious"] is True
    r = await client.get("/v1/decommission-policies", params={"name": name}, headers=auditor)
    assert [(p["version"], p["active"]) for p in r.json()["items"]] == [(1, False), (2, True)]
    # Reactivating version 1 retires version 2: one active version per name.
    r = await client.patch(
        f"/v1/decommission-policies/{first['id']}", json={"active": True}, headers=admin
    )
    assert r.status_code == 200, r.text
    r = await client.get("/v1/decommission-policies", params={"name": name}, headers=admin)
    assert [(p["version"], p["active"]) for p in r.json()["items"]] == [(1, True), (2, False)]
    r = await client.post(
        f"/v1/decommission-policies/nothing-{uniq}/versions", json=body, headers=admin
    )
    assert r.status_code == 404
    r = await client.post(
        "/v1/decommission-policies",
        json=_policy(f"bad-{uniq}", conditions={"colour": "red"}),
        headers=admin,
    )
    assert r.status_code == 400
    r = await client.post(
        "/v1/decommission-policies",
        json=_policy(f"dep-{uniq}", action="deprecate"),
        headers=admin,
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["key"] == "sunset_after_days"
    r = await client.get(f"/v1/events?subject_id={first['id']}", headers=admin)
    assert [e["kind"] for e in r.json()["items"]] == [
        "policy.created",
        "policy.retired",
        "policy.activated",
    ]


async def test_a_matching_incident_proposes_a_decision_citing_the_policy(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str], uniq: str
) -> None:
    async with pool.acquire() as raw, raw.transaction():
        created = await create_key(
            cast("asyncpg.Connection", raw),
            data=ApiKeyIn(role="admin", name="triager"),
            actor_id=None,
        )
    triager, triager_id = bearer(created.key), created.api_key.principal_id
    r = await client.post("/v1/decommission-policies", json=_policy(f"auto-{uniq}"), headers=admin)
    policy = r.json()
    model = f"acme/policy-{uniq}"
    await register_model(client, admin, model)

    # A medium incident does not match.
    # (Other tests' policies share the database: look only at this one's proposals.)
    def mine(decisions: list[Any]) -> list[Any]:
        return [d for d in decisions if d.policy_id == UUID(policy["id"])]

    low = await _incident(client, admin, model, severity="medium")
    assert mine(await _propose(pool, low, triager_id)) == []

    # Moving the incident to investigating proposed the decision already; asking again
    # links the incident to that open proposal instead of making a second one.
    incident_id = await _incident(client, triager, model)
    assert mine(await _propose(pool, incident_id, triager_id)) == []
    r = await client.get("/v1/decommissions", params={"limit": 200}, headers=admin)
    [listed] = [d for d in r.json()["items"] if d["policy_id"] == policy["id"]]
    decision = await get_decision(pool, UUID(listed["id"]))
    assert decision.status == "proposed"
    assert decision.policy_id == UUID(policy["id"])
    assert decision.policy_clause == policy["clause"]
    assert decision.include_derivatives is True
    assert decision.incident_ids == [UUID(incident_id)]
    assert decision.proposed_by == triager_id
    assert decision.approved_by is None

    # A second matching incident joins the open proposal instead of making another.
    again = await _incident(client, admin, model)
    assert mine(await _propose(pool, again, None)) == []
    r = await client.get(f"/v1/decommissions/{decision.id}", headers=admin)
    assert sorted(r.json()["incident_ids"]) == sorted([incident_id, again])

    # Never approved automatically, and not by the one whose move proposed it.
    r = await client.post(f"/v1/decommissions/{decision.id}/approve", headers=triager)
    assert r.status_code == 403
    r = await client.post(f"/v1/decommissions/{decision.id}/approve", headers=admin)
    assert r.status_code == 200

    # A retired policy proposes nothing more.
    await client.patch(
        f"/v1/decommission-policies/{policy['id']}", json={"active": False}, headers=admin
    )
    other = f"acme/policy-other-{uniq}"
    await register_model(client, admin, other)
    later = await _incident(client, admin, other)
    assert mine(await _propose(pool, later, None)) == []


async def test_triage_to_investigating_proposes_through_the_api(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    r = await client.post("/v1/decommission-policies", json=_policy(f"wired-{uniq}"), headers=admin)
    assert r.status_code == 201, r.text
    policy_id = r.json()["id"]
    model = f"acme/wired-{uniq}"
    await register_model(client, admin, model)
    # The helper moves the incident through triage to investigating over the API.
    incident_id = await _incident(client, admin, model)
    r = await client.get("/v1/decommissions", params={"limit": 200}, headers=admin)
    proposed = [d for d in r.json()["items"] if d["policy_id"] == policy_id]
    assert len(proposed) == 1
    assert proposed[0]["status"] == "proposed"
    assert proposed[0]["incident_ids"] == [incident_id]
