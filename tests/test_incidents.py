"""Incidents through the authenticated channel and the webhook's entry point: recording,
scope of reading, the ledger, and lineage."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import asyncpg
import httpx
import pytest

from service.domain.incidents import record_incident
from service.errors import Forbidden, InvalidInput
from service.schemas.incidents import IncidentIn
from tests.conftest import PlatformFixture, register_model
from tests.helpers.incidents import incident_body


async def hosting(
    client: httpx.AsyncClient, platform: PlatformFixture, model: str, uniq: str
) -> dict[str, Any]:
    r = await client.post(
        "/v1/hostings",
        json={"model": model, "url": f"https://{platform.slug}.example/{model}"},
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    return cast("dict[str, Any]", r.json())


async def test_platform_reports_through_the_api_and_the_ledger_records_it(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    a, b = f"acme/inc-a-{uniq}", f"acme/inc-b-{uniq}"
    model_a = await register_model(client, admin, a)
    model_b = await register_model(client, admin, b)
    h = await hosting(client, platform, b, uniq)
    r = await client.post(
        "/v1/incidents",
        json=incident_body(
            a,
            hostings=[h["id"]],
            subcategory="prompt_injection",
            harm_types=["psychological"],
            affected_parties=["minors"],
            evidence_urls=["https://evidence.example/1"],
        ),
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    assert incident["status"] == "received"
    assert incident["channel"] == "api"
    assert incident["reporter_platform_id"] == platform.id
    assert incident["ref"].startswith("RR-")
    # The hosting brought its model along.
    assert set(incident["model_ids"]) == {model_a["id"], model_b["id"]}
    assert incident["hosting_ids"] == [h["id"]]
    assert incident["deadline"] is None
    assert incident["metrics"] == {
        "time_to_triage": None,
        "time_to_mitigation": None,
        "time_to_close": None,
    }
    assert "followup_token_hash" not in incident

    event = await conn.fetchrow(
        "SELECT stage, kind, model_id, platform_id, payload FROM events WHERE subject_id = $1",
        UUID(incident["id"]),
    )
    assert event is not None
    assert (event["stage"], event["kind"]) == ("detect", "incident.reported")
    assert str(event["model_id"]) == incident["model_ids"][0]
    # The reporter stays out of the ledger: a commitment in its place (domain.reporters).
    assert event["platform_id"] is None
    payload = event["payload"]
    if isinstance(payload, str):
        import json

        payload = json.loads(payload)
    assert set(payload["model_ids"]) == {model_a["id"], model_b["id"]}
    assert payload["state"]["id"] == incident["id"]
    assert "reporter_platform_id" not in payload["state"]
    assert len(payload["state"]["reporter_commitment"]) == 64

    # The platform reads its own; the ledger can rebuild it.
    r = await client.get(f"/v1/incidents/{incident['id']}", headers=platform.headers)
    assert r.status_code == 200
    assert r.json()["title"] == incident["title"]


async def test_reporting_rules(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    name = f"acme/rules-{uniq}"
    await register_model(client, admin, name)
    theirs = await hosting(client, other_platform, name, uniq)

    r = await client.post(
        "/v1/incidents", json=incident_body(hostings=[theirs["id"]]), headers=platform.headers
    )
    assert r.status_code == 403
    # An admin may name anyone's hosting.
    r = await client.post(
        "/v1/incidents", json=incident_body(hostings=[theirs["id"]]), headers=admin
    )
    assert r.status_code == 201

    cases: list[tuple[dict[str, object], int]] = [
        (incident_body(f"acme/unregistered-{uniq}"), 422),
        (incident_body(), 422),
        (incident_body(name, serious=True), 422),
        (incident_body(name, serious_kind="fundamental_rights"), 422),
        (incident_body(name, serious=True, serious_kind="fundamental_rights", death=True), 422),
        (incident_body(name, aware_at="2999-01-01T00:00:00Z"), 422),
        (
            incident_body(
                name, occurred_at="2026-02-02T00:00:00Z", aware_at="2026-02-01T00:00:00Z"
            ),
            422,
        ),
        (incident_body(name, hostings=["00000000-0000-7000-8000-000000000000"]), 422),
        (incident_body(name, colour="red"), 400),
        (incident_body(name, severity="apocalyptic"), 400),
    ]
    for body, status in cases:
        r = await client.post("/v1/incidents", json=body, headers=admin)
        assert r.status_code == status, (body, r.text)


async def test_webhook_entry_point_enforces_the_platform_boundary(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    name = f"acme/hook-{uniq}"
    await register_model(client, admin, name)
    ours = await hosting(client, platform, name, uniq)
    theirs = await hosting(client, other_platform, name, uniq)
    data = IncidentIn(
        title="reported by webhook",
        category="security_vulnerability",
        severity="critical",
        hostings=[UUID(ours["id"])],
    )
    async with conn.transaction():
        incident, _ = await record_incident(
            conn,
            data=data,
            channel="webhook",
            reporter_platform_id=UUID(platform.id),
            reporter_principal_id=None,
            actor_id=None,
            extra={"delivery_id": f"d-{uniq}"},
        )
    assert incident.channel == "webhook"
    assert incident.models == [name]
    row = await conn.fetchrow("SELECT kind, payload FROM events WHERE subject_id = $1", incident.id)
    assert row is not None
    kind, payload = row["kind"], row["payload"]
    assert kind == "incident.reported"
    assert payload["delivery_id"] == f"d-{uniq}"

    with pytest.raises(Forbidden):
        async with conn.transaction():
            await record_incident(
                conn,
                data=IncidentIn(
                    title="x", category="misuse", severity="low", hostings=[UUID(theirs["id"])]
                ),
                channel="webhook",
                reporter_platform_id=UUID(platform.id),
                reporter_principal_id=None,
                actor_id=None,
            )
    with pytest.raises(InvalidInput):
        async with conn.transaction():
            await record_incident(
                conn,
                data=IncidentIn(title="x", category="misuse", severity="low"),
                channel="webhook",
                reporter_platform_id=UUID(platform.id),
                reporter_principal_id=None,
                actor_id=None,
            )


async def test_who_reads_what(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    regulator: dict[str, str],
    auditor: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    name = f"acme/scope-{uniq}"
    model = await register_model(client, admin, name)
    ours = await hosting(client, platform, name, uniq)
    by_admin = (await client.post("/v1/incidents", json=incident_body(name), headers=admin)).json()
    on_our_hosting = (
        await client.post("/v1/incidents", json=incident_body(hostings=[ours["id"]]), headers=admin)
    ).json()
    by_other = (
        await client.post("/v1/incidents", json=incident_body(name), headers=other_platform.headers)
    ).json()

    async def visible(headers: dict[str, str]) -> set[str]:
        r = await client.get(
            "/v1/incidents",
            params={"model_id": str(model["id"]), "include_lineage": "false"},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    everything = {by_admin["id"], on_our_hosting["id"], by_other["id"]}
    assert await visible(admin) == everything
    assert await visible(regulator) == everything
    # A platform: what it reported, and what names its hostings.
    assert await visible(platform.headers) == {on_our_hosting["id"]}
    assert await visible(other_platform.headers) == {by_other["id"]}
    # An auditor reads every incident, grant or not.
    assert await visible(auditor) == everything
    r = await client.get(f"/v1/incidents/{by_admin['id']}", headers=auditor)
    assert r.status_code == 200
    r = await client.get(f"/v1/incidents/{by_admin['id']}", headers=platform.headers)
    assert r.status_code == 404
    # Only admins triage.
    for headers in (platform.headers, regulator, auditor):
        r = await client.post(
            f"/v1/incidents/{by_admin['id']}/transitions", json={"to": "triaged"}, headers=headers
        )
        assert r.status_code == 403
    r = await client.get("/v1/incidents", headers={})
    assert r.status_code == 401


async def test_lineage_shows_incidents_both_ways(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    base = await register_model(client, admin, f"acme/base-{uniq}")
    child = await register_model(
        client, admin, f"acme/child-{uniq}", base_model=f"acme/base-{uniq}", derivation="fine_tune"
    )
    grandchild = await register_model(
        client, admin, f"acme/gc-{uniq}", base_model=f"acme/child-{uniq}", derivation="quantisation"
    )
    unrelated = await register_model(client, admin, f"acme/other-{uniq}")
    on_base = (
        await client.post("/v1/incidents", json=incident_body(f"acme/base-{uniq}"), headers=admin)
    ).json()
    on_gc = (
        await client.post("/v1/incidents", json=incident_body(f"acme/gc-{uniq}"), headers=admin)
    ).json()
    on_other = (
        await client.post("/v1/incidents", json=incident_body(f"acme/other-{uniq}"), headers=admin)
    ).json()

    async def listed(model_id: object, **params: str) -> dict[str, bool]:
        r = await client.get(
            "/v1/incidents", params={"model_id": str(model_id), **params}, headers=admin
        )
        assert r.status_code == 200, r.text
        return {i["id"]: i["inherited"] for i in r.json()["items"]}

    assert await listed(child["id"]) == {on_base["id"]: True, on_gc["id"]: True}
    assert await listed(base["id"]) == {on_base["id"]: False, on_gc["id"]: True}
    assert await listed(grandchild["id"]) == {on_base["id"]: True, on_gc["id"]: False}
    assert await listed(unrelated["id"]) == {on_other["id"]: False}
    assert await listed(child["id"], include_lineage="false") == {}
    assert await listed(base["id"], include_lineage="false") == {on_base["id"]: False}


async def test_pagination_and_filters(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    name = f"acme/page-{uniq}"
    model = await register_model(client, admin, name)
    ids = []
    for severity in ("low", "medium", "high"):
        r = await client.post(
            "/v1/incidents", json=incident_body(name, severity=severity), headers=admin
        )
        ids.append(r.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str] = {"model_id": str(model["id"]), "limit": "2"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/incidents", params=params, headers=admin)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    r = await client.get(
        "/v1/incidents", params={"model_id": str(model["id"]), "severity": "medium"}, headers=admin
    )
    assert [i["id"] for i in r.json()["items"]] == [ids[1]]
    r = await client.get("/v1/incidents", params={"status": "bogus"}, headers=admin)
    assert r.status_code == 400
