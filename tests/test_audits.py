"""Audit grants (inside, outside, expired, revoked) and audit records (append-only once
completed, corrections as ledger events, findings that open incidents)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import asyncpg
import httpx
import pytest

from tests.conftest import PlatformFixture, register_model
from tests.helpers.audits import Auditor, audit_body, grant, new_auditor

SHA = "ab" * 32
ALL = ["weights", "code", "data", "documentation"]


@pytest.fixture
async def auditor_a(pool: asyncpg.Pool) -> Auditor:
    return await new_auditor(pool)


@pytest.fixture
async def auditor_b(pool: asyncpg.Pool) -> Auditor:
    return await new_auditor(pool)


async def test_grant_rules(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    regulator: dict[str, str],
    auditor_a: Auditor,
    auditor_b: Auditor,
    platform: PlatformFixture,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    name = f"acme/grant-{uniq}"
    await register_model(client, admin, name)
    g = await grant(client, admin, auditor_a, name, ["weights", "documentation"])
    assert g["components"] == ["documentation", "weights"]
    assert g["model"] == name
    assert g["revoked_at"] is None

    regulator_id = await conn.fetchval(
        "SELECT principal_id FROM api_keys WHERE lookup = $1",
        regulator["Authorization"].split("_")[1],
    )
    bad = [
        (
            {
                "auditor_id": str(regulator_id),
                "model": name,
                "components": ["code"],
                "valid_until": "2999-01-01T00:00:00Z",
            },
            422,
        ),
        (
            {
                "auditor_id": auditor_a.id,
                "model": f"acme/none-{uniq}",
                "components": ["code"],
                "valid_until": "2999-01-01T00:00:00Z",
            },
            422,
        ),
        (
            {
                "auditor_id": auditor_a.id,
                "model": name,
                "components": ["code"],
                "valid_from": "2030-01-02T00:00:00Z",
                "valid_until": "2030-01-01T00:00:00Z",
            },
            422,
        ),
        (
            {
                "auditor_id": auditor_a.id,
                "model": name,
                "components": ["secrets"],
                "valid_until": "2999-01-01T00:00:00Z",
            },
            400,
        ),
        (
            {
                "auditor_id": auditor_a.id,
                "model": name,
                "components": [],
                "valid_until": "2999-01-01T00:00:00Z",
            },
            400,
        ),
    ]
    for body, status in bad:
        r = await client.post("/v1/audit-grants", json=body, headers=admin)
        assert r.status_code == status, (body, r.text)
    for headers in (auditor_a.headers, regulator, platform.headers):
        r = await client.post(
            "/v1/audit-grants",
            json={
                "auditor_id": auditor_a.id,
                "model": name,
                "components": ["code"],
                "valid_until": "2999-01-01T00:00:00Z",
            },
            headers=headers,
        )
        assert r.status_code == 403

    # Each auditor sees its own grants only.
    mine = (await client.get("/v1/audit-grants", headers=auditor_a.headers)).json()["items"]
    assert [x["id"] for x in mine] == [g["id"]]
    assert (await client.get("/v1/audit-grants", headers=auditor_b.headers)).json()["items"] == []
    assert (
        await client.get(f"/v1/audit-grants/{g['id']}", headers=auditor_b.headers)
    ).status_code == 404

    r = await client.post(f"/v1/audit-grants/{g['id']}/revoke", headers=admin)
    assert r.status_code == 200
    assert r.json()["revoked_at"] is not None
    assert (
        await client.post(f"/v1/audit-grants/{g['id']}/revoke", headers=admin)
    ).status_code == 409
    active = await client.get(
        "/v1/audit-grants", params={"active": "true"}, headers=auditor_a.headers
    )
    assert active.json()["items"] == []


async def test_access_inside_outside_and_expired(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    auditor_a: Auditor,
    auditor_b: Auditor,
    platform: PlatformFixture,
    uniq: str,
) -> None:
    inside, outside, expired = (f"acme/in-{uniq}", f"acme/out-{uniq}", f"acme/exp-{uniq}")
    ids = {}
    for name in (inside, outside, expired):
        ids[name] = (await register_model(client, admin, name, provider="Acme"))["id"]
        r = await client.post(
            "/v1/hostings",
            json={
                "model": name,
                "url": f"https://hub.example/{name}",
                "revision": "r1",
                "documentation": {
                    "model_card": {"present": True, "url": "https://hub.example/card"}
                },
            },
            headers=platform.headers,
        )
        assert r.status_code == 201, r.text
    now = datetime.now(UTC)
    await grant(client, admin, auditor_a, inside, ["documentation"])
    await grant(
        client,
        admin,
        auditor_a,
        expired,
        ALL,
        start=now - timedelta(days=10),
        until=now - timedelta(days=1),
    )
    # A grant that has not started yet gives nothing either.
    await grant(client, admin, auditor_a, outside, ALL, start=now + timedelta(days=1))

    async def access(model: str, who: Auditor) -> dict[str, Any]:
        r = await client.get(f"/v1/audit-access/models/{ids[model]}", headers=who.headers)
        assert r.status_code == 200, r.text
        return cast("dict[str, Any]", r.json())

    seen = await access(inside, auditor_a)
    assert seen["model"]["name"] == inside
    assert seen["model"]["provider"] == "Acme"
    assert seen["components"] == ["documentation"]
    assert len(seen["grants"]) == 1
    [h] = seen["hostings"]
    # Documentation granted: the evidence, but not where the weights are.
    assert h["documentation"]["model_card"]["url"] == "https://hub.example/card"
    assert "url" not in h
    assert "revision" not in h

    for model, who in ((outside, auditor_a), (expired, auditor_a), (inside, auditor_b)):
        public = await access(model, who)
        assert public["components"] == []
        assert public["grants"] == []
        assert public["hostings"] == []
        assert set(public["model"]) == {
            "id",
            "name",
            "provider",
            "modalities",
            "tasks",
            "base_model",
            "derivation",
            "openness",
        }

    await grant(client, admin, auditor_b, inside, ["weights"])
    located = await access(inside, auditor_b)
    [h] = located["hostings"]
    assert h["url"] == f"https://hub.example/{inside}"
    assert h["revision"] == "r1"
    assert "documentation" not in h

    # Incidents follow the grants too.
    r = await client.post(
        "/v1/incidents",
        json={"title": "t", "category": "misuse", "severity": "low", "models": [inside, expired]},
        headers=admin,
    )
    incident = r.json()
    r = await client.post(
        "/v1/incidents",
        json={"title": "t", "category": "misuse", "severity": "low", "models": [expired]},
        headers=admin,
    )
    hidden = r.json()
    r = await client.get(f"/v1/incidents/{incident['id']}", headers=auditor_a.headers)
    assert r.status_code == 200
    assert r.json()["reporter_principal_id"] is None
    # Auditors read every incident (grant or not), never its reporter.
    r = await client.get(f"/v1/incidents/{hidden['id']}", headers=auditor_a.headers)
    assert r.status_code == 200
    assert r.json()["reporter_principal_id"] is None
    # Admins see everything a grant could show.
    r = await client.get(f"/v1/audit-access/models/{ids[outside]}", headers=admin)
    assert r.json()["components"] == sorted(ALL)
    assert (
        await client.get(f"/v1/audit-access/models/{ids[inside]}", headers=platform.headers)
    ).status_code == 403


async def test_audits_need_a_grant(
    client: httpx.AsyncClient, admin: dict[str, str], auditor_a: Auditor, uniq: str
) -> None:
    name, other = f"acme/aud-{uniq}", f"acme/aud2-{uniq}"
    await register_model(client, admin, name)
    await register_model(client, admin, other)
    now = datetime.now(UTC)
    r = await client.post("/v1/audits", json=audit_body(name), headers=auditor_a.headers)
    assert r.status_code == 403  # outside any grant
    await grant(
        client,
        admin,
        auditor_a,
        name,
        ALL,
        start=now - timedelta(days=3),
        until=now - timedelta(seconds=1),
    )
    r = await client.post("/v1/audits", json=audit_body(name), headers=auditor_a.headers)
    assert r.status_code == 403  # the grant expired
    await grant(client, admin, auditor_a, name, ["weights", "code"])
    r = await client.post(
        "/v1/audits", json=audit_body(name, components=["data"]), headers=auditor_a.headers
    )
    assert r.status_code == 403  # component not granted
    r = await client.post("/v1/audits", json=audit_body(name, other), headers=auditor_a.headers)
    assert r.status_code == 403  # one model outside the grant
    r = await client.post(
        "/v1/audits",
        json=audit_body(name, components=["code", "weights"]),
        headers=auditor_a.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["models"] == [name]
    r = await client.post("/v1/audits", json=audit_body(name), headers=admin)
    assert r.status_code == 403  # only auditors record audits


async def test_audit_lifecycle(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    regulator: dict[str, str],
    auditor_a: Auditor,
    auditor_b: Auditor,
    platform: PlatformFixture,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    name = f"acme/life-{uniq}"
    model = await register_model(client, admin, name)
    await grant(client, admin, auditor_a, name, ALL)
    r = await client.post(
        "/v1/audits",
        json=audit_body(
            name,
            components=["weights", "data"],
            method="benchmark_evaluation",
            summary="first pass",
            findings=[{"title": "leaks PII", "severity": "high"}],
            evaluations=[
                {"metric": "toxicity", "value": 0.12, "dataset": "rtp", "method": "judge"}
            ],
            artefacts=[{"url": "https://evidence.example/report.pdf", "sha256": SHA}],
        ),
        headers=auditor_a.headers,
    )
    assert r.status_code == 201, r.text
    audit = r.json()
    aid = audit["id"]
    assert audit["findings"][0]["status"] == "open"
    assert audit["evaluations"][0]["value"] == 0.12
    assert audit["artefacts"][0]["sha256"] == SHA
    assert audit["outcome"] is None
    assert audit["corrections"] == []

    h = auditor_a.headers
    r = await client.post(
        f"/v1/audits/{aid}/findings",
        json={"items": [{"title": "jailbreak", "severity": "critical"}]},
        headers=h,
    )
    assert r.status_code == 200
    assert len(r.json()["findings"]) == 2
    r = await client.post(
        f"/v1/audits/{aid}/evaluations",
        json={"items": [{"metric": "refusal", "value": 0.9}]},
        headers=h,
    )
    assert len(r.json()["evaluations"]) == 2
    r = await client.post(
        f"/v1/audits/{aid}/artefacts",
        json={"items": [{"url": "https://e.example/x", "sha256": "cd" * 32}]},
        headers=h,
    )
    assert len(r.json()["artefacts"]) == 2
    r = await client.post(
        f"/v1/audits/{aid}/artefacts",
        json={"items": [{"url": "https://e.example/x", "sha256": "XYZ"}]},
        headers=h,
    )
    assert r.status_code == 400
    # Another auditor reads it but cannot add to it.
    assert (await client.get(f"/v1/audits/{aid}", headers=auditor_b.headers)).status_code == 200
    r = await client.post(
        f"/v1/audits/{aid}/findings", json={"items": []}, headers=auditor_b.headers
    )
    assert r.status_code == 403
    # Corrections are for completed audits.
    correction = {"field": "summary", "correction": "second pass", "reason": "typo"}
    assert (
        await client.post(f"/v1/audits/{aid}/corrections", json=correction, headers=h)
    ).status_code == 409

    r = await client.post(
        f"/v1/audits/{aid}/complete", json={"outcome": "conditional", "summary": "done"}, headers=h
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["outcome"] == "conditional"
    assert done["completed_at"] is not None

    # Append-only from here on: through the API ...
    for url, body in (
        (f"/v1/audits/{aid}/findings", {"items": [{"title": "late", "severity": "low"}]}),
        (f"/v1/audits/{aid}/evaluations", {"items": [{"metric": "m", "value": 1}]}),
        (f"/v1/audits/{aid}/artefacts", {"items": [{"url": "https://e.example/y", "sha256": SHA}]}),
        (f"/v1/audits/{aid}/complete", {"outcome": "pass"}),
    ):
        r = await client.post(url, json=body, headers=h)
        assert r.status_code == 409, (url, r.text)
    # ... and in the database itself.
    for sql in (
        "UPDATE audits SET summary = 'edited' WHERE id = $1",
        "DELETE FROM audit_evaluations WHERE audit_id = $1",
        "UPDATE audit_findings SET title = 'edited' WHERE audit_id = $1",
        "INSERT INTO audit_artefacts (audit_id, url, sha256) VALUES ($1, 'https://x', $2)",
    ):
        args = (UUID(aid), SHA) if "$2" in sql else (UUID(aid),)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(sql, *args)

    # Corrections are ledger events shown beside the record.
    r = await client.post(f"/v1/audits/{aid}/corrections", json=correction, headers=h)
    assert r.status_code == 200, r.text
    corrected = r.json()
    assert corrected["summary"] == "done"
    assert [(c["field"], c["correction"], c["reason"]) for c in corrected["corrections"]] == [
        ("summary", "second pass", "typo")
    ]
    assert (
        await client.post(
            f"/v1/audits/{aid}/corrections", json=correction, headers=auditor_b.headers
        )
    ).status_code == 403
    r = await client.post(f"/v1/audits/{aid}/corrections", json=correction, headers=admin)
    assert r.status_code == 200
    assert len(r.json()["corrections"]) == 2

    # Findings still move through remediation, and can open incidents.
    finding = done["findings"][0]
    r = await client.post(
        f"/v1/audits/{aid}/findings/{finding['id']}/status",
        json={"status": "remediated"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["findings"][0]["status"] == "remediated"
    r = await client.post(
        f"/v1/audits/{aid}/findings/{finding['id']}/incident",
        json={"title": "PII leak found in audit", "category": "privacy", "severity": "high"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    assert incident["models"] == [name]
    assert incident["channel"] == "api"
    r = await client.get(f"/v1/audits/{aid}", headers=regulator)
    assert r.json()["findings"][0]["incident_id"] == incident["id"]
    # Every auditor reads the audit, and so who ran it: the incident names no reporter of
    # its own, for anyone; its report event names the finding.
    r = await client.get(f"/v1/audits/{aid}", headers=auditor_b.headers)
    assert r.json()["findings"][0]["incident_id"] == incident["id"]
    r = await client.get(f"/v1/incidents/{incident['id']}", headers=admin)
    assert (r.json()["reporter_principal_id"], r.json()["reporter_platform_id"]) == (None, None)
    r = await client.get("/v1/events", params={"subject_id": incident["id"]}, headers=admin)
    assert r.json()["items"][0]["payload"]["finding_id"] == finding["id"]
    r = await client.post(
        f"/v1/audits/{aid}/findings/{finding['id']}/incident",
        json={"title": "again", "category": "privacy", "severity": "high"},
        headers=h,
    )
    assert r.status_code == 409

    # Readers: admin, regulator and every auditor; platforms none.
    for headers, expected in ((admin, 200), (regulator, 200), (h, 200), (platform.headers, 403)):
        assert (await client.get(f"/v1/audits/{aid}", headers=headers)).status_code == expected
    listed = await client.get(
        "/v1/audits", params={"model_id": str(model["id"])}, headers=regulator
    )
    assert [a["id"] for a in listed.json()["items"]] == [aid]
    assert (
        await client.get(
            "/v1/audits", params={"model_id": str(model["id"])}, headers=auditor_b.headers
        )
    ).json()["items"] == [listed.json()["items"][0]]

    kinds = [
        e["kind"]
        for e in (await client.get("/v1/events", params={"subject_id": aid}, headers=admin)).json()[
            "items"
        ]
    ]
    assert kinds == [
        "audit.created",
        "audit.finding_added",
        "audit.evaluation_added",
        "audit.artefact_added",
        "audit.completed",
        "audit.corrected",
        "audit.corrected",
        "audit.finding_status_changed",
        "audit.finding_incident_opened",
    ]
