"""Streaming exports: CSV and JSON lines that parse back to exactly the registry's rows."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest

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
