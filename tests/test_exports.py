"""Streaming exports: CSV and JSON lines that parse back to exactly the registry's rows."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, cast
from uuid import UUID

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar

from service.app import create_app
from service.db.queries.exports import COLUMNS
from tests.conftest import PlatformFixture, register_model


async def _seed(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> dict[str, Any]:
    base = await register_model(client, admin, f"ex{uniq}/base")
    await register_model(
        client,
        admin,
        f"ex{uniq}/tricky",
        base_model=f"ex{uniq}/base",
        provider='Quote " comma, newline\n backslash \\ ünïcode',
    )
    r = await client.post(
        "/v1/hostings",
        json={
            "model": f"ex{uniq}/tricky",
            "url": "https://hub.example/t",
            "licence": "mit",
            "downloads": 7,
        },
        headers=platform.headers,
    )
    assert r.status_code == 201
    return base


async def test_csv_round_trips_through_the_csv_module(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    base = await _seed(client, admin, platform, uniq)
    r = await client.get("/v1/exports/models", params={"format": "csv"}, headers=regulator)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text, newline="")))
    assert tuple(rows[0]) == COLUMNS["models"]
    by_name = {row[1]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    tricky = by_name[f"ex{uniq}/tricky"]
    assert tricky["provider"] == 'Quote " comma, newline\n backslash \\ ünïcode'
    assert tricky["base_model_id"] == base["id"]
    assert tricky["base_model"] == f"ex{uniq}/base"


async def test_jsonl_parses_line_by_line(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    await _seed(client, admin, platform, uniq)
    r = await client.get(
        "/v1/exports/hostings",
        params={"platform": platform.slug},
        headers={**regulator, "Accept": "application/x-ndjson"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = r.text.splitlines()
    records = [json.loads(line) for line in lines]
    assert [rec["model"] for rec in records] == [f"ex{uniq}/tricky"]
    assert tuple(records[0]) == COLUMNS["hostings"]
    assert records[0]["downloads"] == 7
    assert records[0]["licence"] == "mit"

    r = await client.get("/v1/exports/models", params={"format": "jsonl"}, headers=regulator)
    tricky = next(json.loads(line) for line in r.text.splitlines() if f"ex{uniq}/tricky" in line)
    assert tricky["provider"] == 'Quote " comma, newline\n backslash \\ ünïcode'


async def test_event_filters(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    base = await _seed(client, admin, platform, uniq)
    r = await client.get(
        "/v1/exports/events",
        params={"model_id": base["id"], "format": "jsonl"},
        headers=regulator,
    )
    events = [json.loads(line) for line in r.text.splitlines()]
    assert [e["kind"] for e in events] == ["model.registered"]
    assert events[0]["payload"]["state"]["name"] == f"ex{uniq}/base"

    r = await client.get(
        "/v1/exports/events",
        params={"platform": platform.slug, "stage": "prevent", "format": "csv"},
        headers=regulator,
    )
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert {row["kind"] for row in rows} >= {"hosting.recorded", "platform.registered"}
    assert all(row["platform_id"] == platform.id for row in rows)
    seqs = [int(row["seq"]) for row in rows]
    assert seqs == sorted(seqs)

    # Timestamps are RFC 3339 in UTC, and usable as the range's bounds.
    last = rows[-1]["recorded_at"]
    assert last.endswith("Z")
    assert "T" in last
    r = await client.get(
        "/v1/exports/events",
        params={"platform": platform.slug, "to": last, "format": "csv"},
        headers=regulator,
    )
    assert r.status_code == 200
    before = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert all(row["recorded_at"] < last for row in before)
    r = await client.get(
        "/v1/exports/events",
        params={"platform": platform.slug, "from": last},
        headers=regulator,
    )
    assert r.status_code == 200
    since = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert since
    assert all(row["recorded_at"] >= last for row in since)
    assert len(before) + len(since) == len(rows)


async def test_only_regulators_and_admins_export(
    client: httpx.AsyncClient,
    auditor: dict[str, str],
    platform: PlatformFixture,
    admin: dict[str, str],
) -> None:
    assert (await client.get("/v1/exports/events", headers=auditor)).status_code == 403
    assert (await client.get("/v1/exports/events", headers=platform.headers)).status_code == 403
    assert (await client.get("/v1/exports/events")).status_code == 401
    r = await client.get("/v1/exports/models", params={"model_id": platform.id}, headers=admin)
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("path", "params", "headers", "status"),
    [
        ("/v1/exports/nothing", {}, {}, 400),
        ("/v1/exports/events", {"format": "xml"}, {}, 400),
        ("/v1/exports/events", {}, {"Accept": "application/xml"}, 406),
        ("/v1/exports/events", {"from": "yesterday"}, {}, 400),
        (
            "/v1/exports/events",
            {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            {},
            422,
        ),
        ("/v1/exports/events", {"platform": "no-such-platform"}, {}, 404),
    ],
)
async def test_bad_requests(
    client: httpx.AsyncClient,
    regulator: dict[str, str],
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    status: int,
) -> None:
    r = await client.get(path, params=params, headers={**regulator, **headers})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_incident_exports_never_carry_contact_details_and_can_redact_text(
    client: httpx.AsyncClient,
    app: Litestar,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    model = await register_model(client, admin, f"inc{uniq}/m")
    r = await client.post(
        "/v1/reports",
        json={
            "title": "Leaks training data",
            "category": "privacy",
            "models": [model["name"]],
            "description": "Prompted with a prefix it recites addresses.",
            "contact": {"email": f"secret-{uniq}@example.org", "name": f"Whistle {uniq}"},
        },
    )
    assert r.status_code in {200, 201}, r.text
    r = await client.post(
        "/v1/incidents",
        json={
            "title": "Jailbreak",
            "category": "misuse",
            "severity": "high",
            "models": [model["name"]],
        },
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text

    for fmt in ("csv", "jsonl"):
        r = await client.get(
            "/v1/exports/incidents",
            params={"model_id": str(model["id"]), "format": fmt},
            headers=regulator,
        )
        assert r.status_code == 200
        assert f"secret-{uniq}" not in r.text
        assert f"Whistle {uniq}" not in r.text
        assert "followup" not in r.text
    records = [json.loads(line) for line in r.text.splitlines()]
    assert tuple(records[0]) == COLUMNS["incidents"]
    assert sorted(rec["title"] for rec in records) == ["Jailbreak", "Leaks training data"]
    assert all(rec["models"] == [model["name"]] for rec in records)
    by_title = {rec["title"]: rec for rec in records}
    assert by_title["Jailbreak"]["reporter_platform"] == platform.slug
    assert by_title["Leaks training data"]["channel"] == "public"

    # With the redaction policy on, regulators get the records without their free text.
    settings = msgspec.structs.replace(app.state.settings, redact_incident_text_for_regulators=True)
    redacting = create_app(settings, pool=app.state.pool)
    transport = httpx.ASGITransport(app=cast("Any", redacting))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as c:
        r = await c.get(
            "/v1/exports/incidents",
            params={"model_id": str(model["id"]), "format": "jsonl"},
            headers=regulator,
        )
        redacted = [json.loads(line) for line in r.text.splitlines()]
        assert {rec["title"] for rec in redacted} == {"[redacted]"}
        assert "recites addresses" not in r.text
        assert sorted(rec["category"] for rec in redacted) == ["misuse", "privacy"]
        # Admins still see everything.
        r = await c.get(
            "/v1/exports/incidents",
            params={"model_id": str(model["id"]), "format": "jsonl"},
            headers=admin,
        )
        assert "recites addresses" in r.text


async def test_audit_and_decision_exports(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    model = await register_model(client, admin, f"dec{uniq}/m")
    hosting = (
        await client.post(
            "/v1/hostings",
            json={"model": model["name"], "url": "https://hub.example/d"},
            headers=platform.headers,
        )
    ).json()
    async with pool.acquire() as c:
        auditor_id = await c.fetchval(
            "INSERT INTO principals (name, role) VALUES ('Export auditor', 'auditor') RETURNING id"
        )
        audit_id = await c.fetchval(
            "INSERT INTO audits (auditor_id, method, started_at) "
            "VALUES ($1, 'red_team', now()) RETURNING id",
            auditor_id,
        )
        await c.execute(
            "INSERT INTO audit_models (audit_id, model_id) VALUES ($1, $2)",
            audit_id,
            UUID(str(model["id"])),
        )
        await c.execute(
            "INSERT INTO audit_findings (audit_id, title, severity) VALUES ($1, 'f', 'high')",
            audit_id,
        )
        decision_id = await c.fetchval(
            "INSERT INTO decommissions (model_id, action, reason, effective_at) "
            "VALUES ($1, 'recall', 'unsafe', now()) RETURNING id",
            UUID(str(model["id"])),
        )
        await c.execute(
            "INSERT INTO decommission_targets (decommission_id, hosting_id, platform_id, "
            "model_id, inherited) VALUES ($1, $2, $3, $4, false)",
            decision_id,
            UUID(hosting["id"]),
            UUID(platform.id),
            UUID(str(model["id"])),
        )
    r = await client.get(
        "/v1/exports/audits",
        params={"model_id": str(model["id"]), "format": "jsonl"},
        headers=regulator,
    )
    audits = [json.loads(line) for line in r.text.splitlines()]
    assert [a["id"] for a in audits] == [str(audit_id)]
    assert audits[0]["models"] == [model["name"]]
    assert [f["severity"] for f in audits[0]["findings"]] == ["high"]

    r = await client.get(
        "/v1/exports/decisions",
        params={"platform": platform.slug, "format": "csv"},
        headers=regulator,
    )
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert tuple(rows[0]) == COLUMNS["decisions"]
    assert [row["id"] for row in rows] == [str(decision_id)]
    targets = json.loads(rows[0]["targets"])
    assert [t["platform"] for t in targets] == [platform.slug]


@pytest.mark.parametrize("dataset", sorted(COLUMNS))
async def test_every_dataset_streams_with_its_header(
    client: httpx.AsyncClient, regulator: dict[str, str], dataset: str
) -> None:
    r = await client.get(f"/v1/exports/{dataset}", params={"format": "csv"}, headers=regulator)
    assert r.status_code == 200, r.text
    header = next(csv.reader(io.StringIO(r.text, newline="")))
    assert tuple(header) == COLUMNS[dataset]
