"""The confidential public channel: anonymous reports, follow-up with the token, contact
details that no other role can reach, and the channel's rate and size limits."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any, cast
from uuid import UUID

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar

from service.app import create_app
from service.domain.limits import TokenBucket
from service.settings import Settings
from tests.conftest import PlatformFixture, register_model

CONTACT = {"name": "Ada Reporter", "email": f"ada-{secrets.token_hex(3)}@mail.example"}


def _address() -> tuple[str, int]:
    return (f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}", 4000)


@pytest.fixture
async def public(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no key, from an address of its own (the rate limit is per address)."""
    transport = httpx.ASGITransport(app=cast("Any", app), client=_address())
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as c:
        yield c


def report(*models: str, **fields: object) -> dict[str, object]:
    return {
        "title": "chatbot gives dangerous advice",
        "category": "harmful_content",
        "models": list(models),
        **fields,
    }


async def submit(public: httpx.AsyncClient, body: dict[str, object]) -> dict[str, Any]:
    r = await public.post("/v1/reports", json=body)
    assert r.status_code == 201, r.text
    return cast("dict[str, Any]", r.json())


def token(value: str) -> dict[str, str]:
    return {"Follow-Up-Token": value}


async def test_anonymous_report_and_follow_up(
    public: httpx.AsyncClient,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    name = f"acme/pub-{uniq}"
    await register_model(client, admin, name)
    receipt = await submit(public, report(name, f"someone/unlisted-{uniq}"))
    assert receipt["status"] == "received"
    ref, secret = receipt["ref"], receipt["followup_token"]

    r = await public.get(f"/v1/reports/{ref}", headers=token(secret))
    assert r.status_code == 200, r.text
    status = r.json()
    assert status["status"] == status["effective_status"] == "received"
    assert status["contact"] is None
    assert status["merged"] is False

    # The token is stored only as a hash.
    stored = await conn.fetchval("SELECT followup_token_hash FROM incidents WHERE ref = $1", ref)
    assert stored is not None
    assert secret.encode() not in bytes(stored)

    # The reporter adds information; triage sees it, and answers.
    r = await public.post(
        f"/v1/reports/{ref}/updates",
        json={"body": "it happened again", "evidence_urls": ["https://e.example/shot"]},
        headers=token(secret),
    )
    assert r.status_code == 201, r.text
    incident = (await client.get("/v1/incidents?channel=public&limit=200", headers=admin)).json()
    found = [i for i in incident["items"] if i["ref"] == ref]
    while not found and incident["next_cursor"]:
        incident = (
            await client.get(
                "/v1/incidents",
                params={"channel": "public", "limit": "200", "cursor": incident["next_cursor"]},
                headers=admin,
            )
        ).json()
        found = [i for i in incident["items"] if i["ref"] == ref]
    record = found[0]
    assert record["unlisted_models"] == [f"someone/unlisted-{uniq}"]
    assert record["models"] == [name]
    assert record["reporter_principal_id"] is None
    notes = (await client.get(f"/v1/incidents/{record['id']}/notes", headers=admin)).json()
    assert [n["body"] for n in notes["items"]] == ["it happened again"]
    for body, shared in (("thanks, looking into it", True), ("internal: call vendor", False)):
        r = await client.post(
            f"/v1/incidents/{record['id']}/notes",
            json={"body": body, "share_with_reporter": shared},
            headers=admin,
        )
        assert r.status_code == 201, r.text
    r = await public.get(f"/v1/reports/{ref}", headers=token(secret))
    assert [n["body"] for n in r.json()["notes"]] == [
        "it happened again",
        "thanks, looking into it",
    ]

    # Triage shows up in the follow-up.
    await client.post(
        f"/v1/incidents/{record['id']}/transitions", json={"to": "triaged"}, headers=admin
    )
    assert (await public.get(f"/v1/reports/{ref}", headers=token(secret))).json()[
        "status"
    ] == "triaged"


async def test_the_token_works_for_its_report_only(
    public: httpx.AsyncClient, client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    name = f"acme/tok-{uniq}"
    await register_model(client, admin, name)
    one = await submit(public, report(name))
    two = await submit(public, report(name))
    wrong = [
        (one["ref"], two["followup_token"]),
        (one["ref"], one["followup_token"] + "x"),
        (one["ref"], "rf_" + secrets.token_urlsafe(32)),
        ("RR-000000000000", one["followup_token"]),
        ("not-a-ref", one["followup_token"]),
    ]
    for ref, secret in wrong:
        r = await public.get(f"/v1/reports/{ref}", headers=token(secret))
        assert r.status_code == 404, (ref, r.text)
        r = await public.post(
            f"/v1/reports/{ref}/updates", json={"body": "x"}, headers=token(secret)
        )
        assert r.status_code == 404
    # A wrong ref and a wrong token are indistinguishable.
    a = await public.get(f"/v1/reports/{one['ref']}", headers=token("nope"))
    b = await public.get("/v1/reports/RR-FFFFFFFFFFFF", headers=token("nope"))
    assert a.json()["detail"] == b.json()["detail"]
    # Without the header the request is malformed; keys do not stand in for the token.
    assert (await public.get(f"/v1/reports/{one['ref']}")).status_code == 400
    r = await client.get(f"/v1/reports/{one['ref']}", headers={**admin, **token("nope")})
    assert r.status_code == 404


async def test_contact_details_reach_no_one_but_the_reporter(
    public: httpx.AsyncClient,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    regulator: dict[str, str],
    auditor: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    name = f"acme/contact-{uniq}"
    model = await register_model(client, admin, name)
    receipt = await submit(public, report(name, contact=CONTACT))
    r = await public.get(f"/v1/reports/{receipt['ref']}", headers=token(receipt["followup_token"]))
    assert r.json()["contact"] == CONTACT
    incident_id = await conn.fetchval("SELECT id FROM incidents WHERE ref = $1", receipt["ref"])
    assert await conn.fetchval(
        "SELECT contact FROM reporter_contacts WHERE incident_id = $1", incident_id
    ) in (CONTACT, json.dumps(CONTACT))

    # Give the auditor a grant so it can read the incident itself.
    auditor_id = await conn.fetchval(
        "SELECT k.principal_id FROM api_keys k WHERE k.lookup = $1",
        auditor["Authorization"].split("_")[1],
    )
    r = await client.post(
        "/v1/audit-grants",
        json={
            "auditor_id": str(auditor_id),
            "model": name,
            "components": ["weights", "code", "data", "documentation"],
            "valid_until": "2999-01-01T00:00:00Z",
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text

    secrets_seen = [CONTACT["email"], CONTACT["name"]]
    reads = [
        (admin, f"/v1/incidents/{incident_id}"),
        (admin, f"/v1/incidents?model_id={model['id']}"),
        (admin, f"/v1/incidents/{incident_id}/notes"),
        (admin, f"/v1/events?subject_id={incident_id}"),
        (admin, f"/v1/events?model_id={model['id']}"),
        (regulator, f"/v1/incidents/{incident_id}"),
        (regulator, f"/v1/incidents?model_id={model['id']}"),
        (regulator, f"/v1/events?subject_id={incident_id}"),
        (auditor, f"/v1/incidents/{incident_id}"),
        (auditor, f"/v1/incidents?model_id={model['id']}"),
        (auditor, f"/v1/audit-access/models/{model['id']}"),
        (auditor, f"/v1/events?subject_id={incident_id}"),
        (platform.headers, f"/v1/incidents?model_id={model['id']}"),
        (platform.headers, f"/v1/events?subject_id={incident_id}"),
    ]
    for headers, url in reads:
        r = await client.get(url, headers=headers)
        assert r.status_code in (200, 404), (url, r.text)
        for secret in secrets_seen:
            assert secret not in r.text, url
    # The auditor reads the incident, but not who reported it.
    r = await client.get(f"/v1/incidents/{incident_id}", headers=auditor)
    assert r.status_code == 200
    # Nothing in the ledger carries it either.
    assert not await conn.fetchval(
        "SELECT count(*) FROM events WHERE payload::text LIKE '%' || $1 || '%'", CONTACT["email"]
    )


async def test_merged_report_follow_up_shows_the_survivor(
    public: httpx.AsyncClient, client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    name = f"acme/merge-{uniq}"
    await register_model(client, admin, name)
    survivor = (
        await client.post(
            "/v1/incidents",
            json={
                "title": "t",
                "category": "harmful_content",
                "severity": "high",
                "models": [name],
            },
            headers=admin,
        )
    ).json()
    receipt = await submit(public, report(name))
    rows = (await client.get(f"/v1/incidents/{survivor['id']}/duplicates", headers=admin)).json()[
        "items"
    ]
    dup = next(i for i in rows if i["ref"] == receipt["ref"])
    for body in (
        {"to": "triaged"},
        {"to": "investigating"},
    ):
        await client.post(f"/v1/incidents/{survivor['id']}/transitions", json=body, headers=admin)
    r = await client.post(
        f"/v1/incidents/{dup['id']}/transitions",
        json={"to": "duplicate", "duplicate_of": survivor["id"]},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    follow = await public.get(
        f"/v1/reports/{receipt['ref']}", headers=token(receipt["followup_token"])
    )
    assert follow.status_code == 200
    assert follow.json()["status"] == "duplicate"
    assert follow.json()["merged"] is True
    assert follow.json()["effective_status"] == "investigating"
    # The reporter can still add information, to their own report.
    r = await public.post(
        f"/v1/reports/{receipt['ref']}/updates",
        json={"body": "more detail"},
        headers=token(receipt["followup_token"]),
    )
    assert r.status_code == 201


async def test_public_input_rules(
    public: httpx.AsyncClient, client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    r = await public.post("/v1/reports", json=report())
    assert r.status_code == 400
    r = await public.post("/v1/reports", json=report("acme/x", contact={"email": "not-an-email"}))
    assert r.status_code == 400
    r = await public.post(
        "/v1/reports", json=report("acme/x", reporter_platform_id=str(UUID(int=1)))
    )
    assert r.status_code == 400
    # Only unknown model names at all is still a report (for triage to place).
    receipt = await submit(public, report(f"nobody/knows-{uniq}"))
    assert receipt["ref"].startswith("RR-")


async def test_size_limit(public: httpx.AsyncClient, settings: Settings) -> None:
    limit = settings.public_max_body_bytes
    # Valid JSON, padded with whitespace past the limit.
    huge = msgspec.json.encode(report("acme/x")) + b" " * limit
    r = await public.post("/v1/reports", content=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")

    async def chunks() -> AsyncIterator[bytes]:
        yield huge[: len(huge) // 2]
        yield huge[len(huge) // 2 :]

    # Without a Content-Length the body is measured once read.
    r = await public.post(
        "/v1/reports", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413


async def test_rate_limit(settings: Settings, pool: asyncpg.Pool, uniq: str) -> None:
    limited = create_app(
        msgspec.structs.replace(settings, public_rate_limit=3, public_rate_window_seconds=3600),
        pool=pool,
    )
    first, second = _address(), _address()

    async def attempt(address: tuple[str, int]) -> httpx.Response:
        transport = httpx.ASGITransport(app=cast("Any", limited), client=address)
        async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as c:
            return await c.get("/v1/reports/RR-000000000000", headers=token("x"))

    # OPTIONS costs nothing of the allowance.
    transport = httpx.ASGITransport(app=cast("Any", limited), client=first)
    async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as c:
        assert [(await c.options("/v1/reports")).status_code for _ in range(5)] == [204] * 5
    assert [(await attempt(first)).status_code for _ in range(3)] == [404, 404, 404]
    r = await attempt(first)
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) == 1200
    assert r.json()["type"].endswith(":rate-limited")
    # Another address is not affected.
    assert (await attempt(second)).status_code == 404


def test_rate_limiter_refills_and_forgets() -> None:
    limiter = TokenBucket.per_window(limit=2, window=10.0, max_keys=2)
    assert limiter.spend("a", now=0.0) == 0
    assert limiter.spend("a", now=0.0) == 0
    assert limiter.spend("a", now=0.0) == pytest.approx(5.0)
    assert limiter.spend("a", now=5.0) == 0
    limiter.spend("b", now=5.0)
    limiter.spend("c", now=5.0)
    # "a" was least recently seen and has been dropped: it starts again with a full bucket.
    assert limiter.spend("a", now=5.0) == 0


async def test_unlisted_models_match_as_duplicates(
    public: httpx.AsyncClient, client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    first = await submit(public, report(f"nobody/dup-{uniq}"))
    # Model names are case-insensitive, unknown ones too.
    second = await submit(public, report(f"Nobody/DUP-{uniq}"))
    await submit(public, report(f"nobody/else-{uniq}"))
    r = await client.get(
        "/v1/incidents", params={"channel": "public", "limit": "200"}, headers=admin
    )
    ids = {i["ref"]: i["id"] for i in r.json()["items"]}
    while r.json()["next_cursor"]:
        r = await client.get(
            "/v1/incidents",
            params={"channel": "public", "limit": "200", "cursor": r.json()["next_cursor"]},
            headers=admin,
        )
        ids.update({i["ref"]: i["id"] for i in r.json()["items"]})
    r = await client.get(f"/v1/incidents/{ids[first['ref']]}/duplicates", headers=admin)
    assert [i["ref"] for i in r.json()["items"]] == [second["ref"]]
