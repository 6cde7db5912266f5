"""Incident aliases (identifiers in the AI Incident Database, the OECD AI Incidents
Monitor, AVID and CVE): set on report through REST and the signed webhook, added by
triage, found by alias within the reader's scope, recorded in the ledger and exported."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from tests.conftest import PlatformFixture, register_model
from tests.helpers.audits import grant, new_auditor
from tests.helpers.webhooks import deliver, event, hosted, new_secret


def body(model: str, **fields: object) -> dict[str, object]:
    return {
        "title": "model leaks training data",
        "category": "privacy",
        "severity": "medium",
        "models": [model],
        **fields,
    }


def cve(uniq: str) -> str:
    """A CVE id no other test uses."""
    return f"CVE-2026-{int(uniq, 16) % 10**8 + 10**8}"


async def report(
    client: httpx.AsyncClient, headers: dict[str, str], model: str, aliases: list[Any]
) -> httpx.Response:
    return await client.post("/v1/incidents", json=body(model, aliases=aliases), headers=headers)


async def test_aliases_given_on_report_are_canonical_shown_and_found(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    model = f"alias-{uniq}/m"
    await register_model(client, admin, model)
    await client.post(
        "/v1/hostings",
        json={"model": model, "url": f"https://{platform.slug}.example/{model}"},
        headers=platform.headers,
    )
    number = int(uniq, 16) % 10**6 + 1
    r = await report(
        client,
        platform.headers,
        model,
        [
            {"scheme": "cve", "value": cve(uniq).lower()},
            {"scheme": "aiid", "value": f"AIID-00{number}"},
            {"scheme": "avid", "value": f"avid-2023-v{number:06d}"},
            {"scheme": "oecd", "value": f"https://oecd.ai/en/incidents/2026-11-30-{uniq}"},
        ],
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    assert incident["aliases"] == [
        {"scheme": "aiid", "value": str(number)},
        {"scheme": "avid", "value": f"AVID-2023-V{number:06d}"},
        {"scheme": "cve", "value": cve(uniq)},
        {"scheme": "oecd", "value": f"2026-11-30-{uniq}"},
    ]
    # Each spelling of each alias finds it, for its reporter and for the registry.
    for query in (
        cve(uniq),
        f"cve:{cve(uniq).lower()}",
        f"AIID-{number}",
        f"aiid:{number}",
        f"AVID-2023-V{number:06d}",
        f"oecd:2026-11-30-{uniq}",
    ):
        for who in (platform.headers, admin):
            r = await client.get("/v1/incidents", params={"alias": query}, headers=who)
            assert r.status_code == 200, r.text
            assert [i["id"] for i in r.json()["items"]] == [incident["id"]], query
    # The same read one-by-one carries them too.
    r = await client.get(f"/v1/incidents/{incident['id']}", headers=admin)
    assert r.json()["aliases"] == incident["aliases"]
    # Visibility is the incident's: another platform finds nothing (not a 403 or 404).
    r = await client.get(
        "/v1/incidents", params={"alias": cve(uniq)}, headers=other_platform.headers
    )
    assert r.status_code == 200
    assert r.json()["items"] == []
    # An alias nobody holds: an empty page.
    r = await client.get("/v1/incidents", params={"alias": "CVE-1999-0001"}, headers=admin)
    assert r.json()["items"] == []


@pytest.mark.parametrize(
    ("scheme", "value"),
    [
        ("cve", "CVE-26-1"),
        ("cve", "2026-12345"),
        ("aiid", "AIID-"),
        ("aiid", "0"),
        ("aiid", "twelve"),
        ("avid", "AVID-2023-001"),
        ("oecd", "https://evil.example/en/incidents/1"),
        ("oecd", "a b"),
    ],
)
async def test_a_bad_alias_format_is_422_and_nothing_is_written(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    uniq: str,
    conn: asyncpg.Connection,
    scheme: str,
    value: str,
) -> None:
    model = f"badalias-{uniq}/m"
    await register_model(client, admin, model)
    r = await report(client, admin, model, [{"scheme": scheme, "value": value}])
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    count = await conn.fetchval(
        "SELECT count(*) FROM incident_models im JOIN models m ON m.id = im.model_id "
        "WHERE m.name = $1",
        model,
    )
    assert count == 0
    r = await client.get("/v1/incidents", params={"alias": f"{scheme}:{value}"}, headers=admin)
    assert r.status_code == 422, r.text


async def test_an_unknown_scheme_is_400_and_a_query_that_is_no_alias_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    model = f"scheme-{uniq}/m"
    await register_model(client, admin, model)
    r = await report(client, admin, model, [{"scheme": "ghsa", "value": "GHSA-1"}])
    assert r.status_code == 400, r.text
    r = await client.get("/v1/incidents", params={"alias": "GHSA-xxxx"}, headers=admin)
    assert r.status_code == 422, r.text


async def test_an_alias_names_one_incident_a_second_claim_is_409_nothing_written(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str, conn: asyncpg.Connection
) -> None:
    model = f"dup-{uniq}/m"
    await register_model(client, admin, model)
    first = await report(client, admin, model, [{"scheme": "cve", "value": cve(uniq)}])
    assert first.status_code == 201, first.text
    before = await conn.fetchval("SELECT count(*) FROM incidents")
    second = await report(
        client,
        admin,
        model,
        [{"scheme": "aiid", "value": "777000"}, {"scheme": "cve", "value": cve(uniq).lower()}],
    )
    assert second.status_code == 409, second.text
    assert cve(uniq) in second.json()["detail"]
    assert await conn.fetchval("SELECT count(*) FROM incidents") == before
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM incident_aliases WHERE scheme = 'aiid' AND value = '777000'"
        )
        == 0
    )
    # The same alias twice in one report is one alias.
    other = f"CVE-2025-{int(uniq, 16) % 10**7 + 10**7}"
    r = await report(
        client, admin, model, [{"scheme": "cve", "value": other}, {"scheme": "cve", "value": other}]
    )
    assert r.status_code == 201, r.text
    assert r.json()["aliases"] == [{"scheme": "cve", "value": other}]


async def test_the_signed_webhook_sets_aliases_and_a_taken_one_is_refused_whole(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    secret = await new_secret(client, admin, platform.slug)
    model = f"org-{uniq}/aliased"
    assert (await deliver(client, platform.slug, secret, hosted(model))).status_code == 202
    data = {
        "title": "jailbreak published",
        "category": "security_vulnerability",
        "severity": "high",
        "models": [model],
        "aliases": [{"scheme": "cve", "value": cve(uniq)}],
    }
    r = await deliver(client, platform.slug, secret, event("incident.reported", data))
    assert r.status_code == 202, r.text
    r = await client.get("/v1/incidents", params={"alias": cve(uniq)}, headers=platform.headers)
    [found] = r.json()["items"]
    assert found["channel"] == "webhook"
    assert found["aliases"] == [{"scheme": "cve", "value": cve(uniq)}]

    before = await conn.fetchval("SELECT count(*) FROM incidents")
    r = await deliver(client, platform.slug, secret, event("incident.reported", data))
    assert r.status_code == 409, r.text
    assert await conn.fetchval("SELECT count(*) FROM incidents") == before
    bad = {**data, "aliases": [{"scheme": "avid", "value": "AVID-1"}]}
    r = await deliver(client, platform.slug, secret, event("incident.reported", bad))
    assert r.status_code == 422, r.text
    assert await conn.fetchval("SELECT count(*) FROM incidents") == before


async def test_the_public_channel_cannot_set_aliases(client: httpx.AsyncClient, uniq: str) -> None:
    report = {"title": "odd answers", "category": "other", "models": [f"public-{uniq}/m"]}
    aliases = [{"scheme": "cve", "value": cve(uniq)}]
    r = await client.post("/v1/reports", json={**report, "aliases": aliases})
    assert r.status_code == 400, r.text
    assert "aliases" in r.text
    r = await client.post("/v1/reports", json=report)
    assert r.status_code == 201, r.text


async def test_triage_adds_aliases_as_a_ledger_event_seen_as_of_and_exported(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    model = f"later-{uniq}/m"
    await register_model(client, admin, model)
    r = await report(client, admin, model, [])
    assert r.status_code == 201, r.text
    incident = r.json()
    assert incident["aliases"] == []
    reported = datetime.now(UTC)
    path = f"/v1/incidents/{incident['id']}/aliases"
    add = {"aliases": [{"scheme": "cve", "value": cve(uniq)}]}
    # Only admins add aliases.
    r = await client.post(path, json=add, headers=platform.headers)
    assert r.status_code == 403
    r = await client.post(path, json=add, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["aliases"] == [{"scheme": "cve", "value": cve(uniq)}]
    # A repeat changes nothing and records nothing.
    r = await client.post(path, json=add, headers=admin)
    assert r.status_code == 200, r.text
    kinds = await conn.fetch(
        "SELECT kind, payload FROM events WHERE subject_id = $1 ORDER BY seq",
        UUID(incident["id"]),
    )
    assert [k["kind"] for k in kinds] == ["incident.reported", "incident.aliases_added"]
    assert kinds[1]["payload"]["state"]["aliases"] == [{"scheme": "cve", "value": cve(uniq)}]
    # As of the report, it had none; now it has one.
    r = await client.get(
        f"/v1/incidents/{incident['id']}",
        params={"as_of": reported.isoformat()},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["aliases"] == []
    # Another incident cannot take it; a bad format is 422; an unknown incident 404.
    other = (await report(client, admin, model, [])).json()
    r = await client.post(f"/v1/incidents/{other['id']}/aliases", json=add, headers=admin)
    assert r.status_code == 409, r.text
    r = await client.post(
        f"/v1/incidents/{other['id']}/aliases",
        json={"aliases": [{"scheme": "cve", "value": "CVE-X"}]},
        headers=admin,
    )
    assert r.status_code == 422, r.text
    r = await client.post(
        "/v1/incidents/00000000-0000-7000-8000-000000000000/aliases", json=add, headers=admin
    )
    assert r.status_code == 404, r.text

    r = await client.get("/v1/exports/incidents", params={"format": "jsonl"}, headers=regulator)
    assert r.status_code == 200, r.text
    records = {rec["id"]: rec for rec in map(json.loads, r.text.splitlines())}
    assert records[incident["id"]]["aliases"] == [f"cve:{cve(uniq)}"]
    assert records[other["id"]]["aliases"] == []
    r = await client.get("/v1/exports/incidents", params={"format": "csv"}, headers=regulator)
    assert r.status_code == 200, r.text
    assert f"{{cve:{cve(uniq)}}}" in r.text


async def test_an_audit_finding_opens_an_incident_with_aliases_seen_by_every_auditor(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    pool: asyncpg.Pool,
    uniq: str,
) -> None:
    name = f"audited-{uniq}/m"
    await register_model(client, admin, name)
    auditor, stranger = await new_auditor(pool), await new_auditor(pool)
    await grant(client, admin, auditor, name, ["weights"])
    r = await client.post(
        "/v1/audits",
        json={
            "models": [name],
            "method": "red_team",
            "components": ["weights"],
            "findings": [{"title": "jailbreak", "severity": "high"}],
        },
        headers=auditor.headers,
    )
    assert r.status_code == 201, r.text
    audit = r.json()
    avid = f"AVID-2026-V{int(uniq, 16) % 10**6:06d}"
    r = await client.post(
        f"/v1/audits/{audit['id']}/findings/{audit['findings'][0]['id']}/incident",
        json={
            "title": "jailbreak found in audit",
            "category": "security_vulnerability",
            "severity": "high",
            "aliases": [{"scheme": "avid", "value": avid.lower()}],
        },
        headers=auditor.headers,
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    assert incident["aliases"] == [{"scheme": "avid", "value": avid}]
    r = await client.get("/v1/incidents", params={"alias": avid}, headers=auditor.headers)
    assert [i["id"] for i in r.json()["items"]] == [incident["id"]]
    # Auditors read every incident, grant or not (one visibility rule on every path).
    r = await client.get("/v1/incidents", params={"alias": avid}, headers=stranger.headers)
    assert r.status_code == 200
    assert [i["id"] for i in r.json()["items"]] == [incident["id"]]
