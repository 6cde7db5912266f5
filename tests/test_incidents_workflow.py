"""The triage workflow: every legal move, every illegal one, response metrics, and
duplicate detection and merging."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest

from service.domain.triage import TRANSITIONS
from tests.conftest import register_model

STATUSES = ["received", "triaged", "investigating", "mitigated", "closed", "duplicate", "rejected"]
# The moves that lead from a new report to each status.
PATH = {
    "received": [],
    "triaged": ["triaged"],
    "investigating": ["triaged", "investigating"],
    "mitigated": ["triaged", "investigating", "mitigated"],
    "closed": ["triaged", "investigating", "mitigated", "closed"],
    "rejected": ["rejected"],
    "duplicate": ["duplicate"],
}
LEGAL = {
    ("received", "triaged"),
    ("received", "rejected"),
    ("received", "duplicate"),
    ("triaged", "investigating"),
    ("triaged", "rejected"),
    ("triaged", "duplicate"),
    ("investigating", "mitigated"),
    ("investigating", "rejected"),
    ("investigating", "duplicate"),
    ("mitigated", "closed"),
}


def test_the_table_is_the_documented_workflow() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == LEGAL


async def _new(
    client: httpx.AsyncClient, admin: dict[str, str], name: str, **fields: object
) -> dict[str, Any]:
    r = await client.post(
        "/v1/incidents",
        json={
            "title": "t",
            "category": "malfunction",
            "severity": "medium",
            "models": [name],
            **fields,
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return cast("dict[str, Any]", r.json())


def _move(to: str, survivor: str) -> dict[str, object]:
    body: dict[str, object] = {"to": to}
    if to == "rejected":
        body["reason"] = "not an AI incident"
    if to == "duplicate":
        body["duplicate_of"] = survivor
    return body


async def _bring_to(
    client: httpx.AsyncClient, admin: dict[str, str], incident: str, status: str, survivor: str
) -> None:
    for step in PATH[status]:
        r = await client.post(
            f"/v1/incidents/{incident}/transitions", json=_move(step, survivor), headers=admin
        )
        assert r.status_code == 200, (step, r.text)


@pytest.mark.parametrize("source", STATUSES)
async def test_every_move_from(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str, source: str
) -> None:
    name = f"acme/wf-{source}-{uniq}"
    await register_model(client, admin, name)
    survivor = (await _new(client, admin, name))["id"]
    for target in STATUSES:
        incident = (await _new(client, admin, name))["id"]
        await _bring_to(client, admin, incident, source, survivor)
        r = await client.post(
            f"/v1/incidents/{incident}/transitions", json=_move(target, survivor), headers=admin
        )
        expected = 200 if (source, target) in LEGAL else 409
        assert r.status_code == expected, (source, target, r.text)
        if expected == 200:
            assert r.json()["status"] == target
        else:
            assert r.json()["type"].endswith(":conflict")


async def test_timestamps_metrics_and_ledger(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    name = f"acme/metrics-{uniq}"
    await register_model(client, admin, name)
    incident = await _new(client, admin, name)
    reported = incident["reported_at"]
    import datetime as dt

    base = dt.datetime.fromisoformat(reported)
    # Claimed times may not run ahead of the registry's clock by more than the skew (five
    # minutes): seconds after the report stay within it.
    for step, seconds in (("triaged", 1), ("investigating", 2), ("mitigated", 5), ("closed", 9)):
        at = (base + dt.timedelta(seconds=seconds)).isoformat()
        r = await client.post(
            f"/v1/incidents/{incident['id']}/transitions",
            json={"to": step, "at": at},
            headers=admin,
        )
        assert r.status_code == 200, r.text
    final = r.json()
    assert final["metrics"] == {
        "time_to_triage": 1.0,
        "time_to_mitigation": 5.0,
        "time_to_close": 9.0,
    }
    r = await client.get("/v1/events", params={"subject_id": incident["id"]}, headers=admin)
    kinds = [e["kind"] for e in r.json()["items"]]
    assert kinds == [
        "incident.reported",
        "incident.triaged",
        "incident.investigating",
        "incident.mitigated",
        "incident.closed",
    ]
    assert all(e["stage"] == "detect" and e["actor_id"] for e in r.json()["items"][1:])
    assert r.json()["items"][-1]["payload"]["state"]["status"] == "closed"
    # A closed incident takes no more corrections.
    r = await client.patch(
        f"/v1/incidents/{incident['id']}", json={"severity": "low"}, headers=admin
    )
    assert r.status_code == 409


async def test_transition_input_rules(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    name = f"acme/rules-{uniq}"
    await register_model(client, admin, name)
    incident = (await _new(client, admin, name))["id"]
    url = f"/v1/incidents/{incident}/transitions"
    assert (await client.post(url, json={"to": "rejected"}, headers=admin)).status_code == 422
    assert (await client.post(url, json={"to": "duplicate"}, headers=admin)).status_code == 422
    r = await client.post(url, json={"to": "duplicate", "duplicate_of": incident}, headers=admin)
    assert r.status_code == 422
    r = await client.post(url, json={"to": "triaged", "at": "2000-01-01T00:00:00Z"}, headers=admin)
    assert r.status_code == 422
    r = await client.post(
        "/v1/incidents/00000000-0000-7000-8000-000000000000/transitions",
        json={"to": "triaged"},
        headers=admin,
    )
    assert r.status_code == 404
    r = await client.post(url, json={"to": "rejected", "reason": "spam"}, headers=admin)
    assert r.json()["rejection_reason"] == "spam"
    assert r.json()["metrics"]["time_to_close"] is not None


async def test_duplicates_are_offered_and_merged(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    a, b = f"acme/dup-a-{uniq}", f"acme/dup-b-{uniq}"
    await register_model(client, admin, a)
    await register_model(client, admin, b)
    first = await _new(client, admin, a, evidence_urls=["https://e.example/1"])
    second = await _new(client, admin, a, evidence_urls=["https://e.example/2"])
    other_category = await _new(client, admin, a, category="privacy")
    other_model = await _new(client, admin, b)
    # A second report on model b.
    both = await _new(client, admin, b)
    r = await client.get(f"/v1/incidents/{first['id']}/duplicates", headers=admin)
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == [second["id"]]
    assert other_category["id"] not in {i["id"] for i in r.json()["items"]}
    assert {
        i["id"]
        for i in (
            await client.get(f"/v1/incidents/{other_model['id']}/duplicates", headers=admin)
        ).json()["items"]
    } == {both["id"]}

    r = await client.post(
        f"/v1/incidents/{second['id']}/transitions",
        json={"to": "duplicate", "duplicate_of": first["id"]},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["status"] == "duplicate"
    assert merged["duplicate_of"] == first["id"]
    survivor = (await client.get(f"/v1/incidents/{first['id']}", headers=admin)).json()
    assert set(survivor["evidence_urls"]) == {"https://e.example/1", "https://e.example/2"}
    # Merged reports are no longer offered.
    r = await client.get(f"/v1/incidents/{first['id']}/duplicates", headers=admin)
    assert r.json()["items"] == []
    # Nothing merges into a duplicate; the survivor's ledger records the merge.
    r = await client.post(
        f"/v1/incidents/{other_category['id']}/transitions",
        json={"to": "duplicate", "duplicate_of": second["id"]},
        headers=admin,
    )
    assert r.status_code == 409
    events = (
        await client.get("/v1/events", params={"subject_id": first["id"]}, headers=admin)
    ).json()["items"]
    assert events[-1]["kind"] == "incident.duplicate_absorbed"
    assert events[-1]["payload"]["duplicate_id"] == second["id"]

    # The merge brought the other report's models to the survivor.
    r = await client.post(
        f"/v1/incidents/{both['id']}/transitions",
        json={"to": "duplicate", "duplicate_of": first["id"]},
        headers=admin,
    )
    assert r.status_code == 200
    survivor = (await client.get(f"/v1/incidents/{first['id']}", headers=admin)).json()
    assert set(survivor["models"]) == {a, b}
    r = await client.post(
        f"/v1/incidents/{first['id']}/transitions",
        json={"to": "duplicate", "duplicate_of": "00000000-0000-7000-8000-000000000000"},
        headers=admin,
    )
    assert r.status_code == 422
