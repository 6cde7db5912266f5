"""Times are honest: a time a caller supplies is neither later than now plus the clock
skew nor earlier than the moment it follows, on every path where one enters (REST, the
public report channel, signed webhooks); the refusal is a 422 naming the field, and
nothing is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar

from service.app import create_app
from service.domain.keys import create_key
from service.domain.times import CLOCK_SKEW
from service.schemas.keys import ApiKeyIn
from service.settings import Settings, load_settings
from tests.conftest import PlatformFixture, bearer, register_model
from tests.helpers.notices import admin_headers, decide, host
from tests.helpers.webhooks import deliver, event, hosted, new_secret

FUTURE = CLOCK_SKEW + timedelta(minutes=1)


def _refused(r: httpx.Response, key: str, words: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert [e["key"] for e in body["errors"]] == [key], body
    assert words in body["detail"], body


def _incident(name: str, **fields: object) -> dict[str, object]:
    return {"title": "t", "category": "malfunction", "severity": "high", "models": [name], **fields}


async def _count_incidents(client: httpx.AsyncClient, admin: dict[str, str], model_id: str) -> int:
    r = await client.get("/v1/incidents", params={"model_id": model_id}, headers=admin)
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


async def test_aware_at_and_occurred_at_on_every_reporting_path(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    name = f"acme/times-report-{uniq}"
    model = await register_model(client, admin, name)
    await host(client, admin, name, platform)
    secret = await new_secret(client, admin, platform.slug)
    future = (datetime.now(UTC) + FUTURE).isoformat()
    for key in ("aware_at", "occurred_at"):
        # REST (admin), the public report channel, and a platform's signed webhook.
        r = await client.post("/v1/incidents", json=_incident(name, **{key: future}), headers=admin)
        _refused(r, key, "in the future")
        r = await client.post("/v1/reports", json=_incident(name, **{key: future}))
        _refused(r, key, "in the future")
        body = event("incident.reported", _incident(name, **{key: future}))
        r = await deliver(client, platform.slug, secret, body)
        _refused(r, key, "in the future")
    assert await _count_incidents(client, admin, str(model["id"])) == 0
    # Within the skew, a caller's clock running a little fast is accepted.
    near = (datetime.now(UTC) + CLOCK_SKEW - timedelta(minutes=1)).isoformat()
    r = await client.post("/v1/incidents", json=_incident(name, aware_at=near), headers=admin)
    assert r.status_code == 201, r.text


async def test_transitions_follow_the_report_and_the_previous_step(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    name = f"acme/times-triage-{uniq}"
    await register_model(client, admin, name)
    r = await client.post("/v1/incidents", json=_incident(name), headers=admin)
    incident = cast("dict[str, Any]", r.json())
    url = f"/v1/incidents/{incident['id']}/transitions"
    reported = datetime.fromisoformat(incident["reported_at"])
    future = (datetime.now(UTC) + FUTURE).isoformat()
    _refused(
        await client.post(url, json={"to": "triaged", "at": future}, headers=admin),
        "at",
        "in the future",
    )
    before = (reported - timedelta(hours=1)).isoformat()
    _refused(
        await client.post(url, json={"to": "triaged", "at": before}, headers=admin),
        "at",
        "before the report",
    )
    r = await client.get(f"/v1/incidents/{incident['id']}", headers=admin)
    assert r.json()["status"] == "received"
    assert r.json()["triaged_at"] is None
    triaged = reported + timedelta(seconds=2)
    r = await client.post(url, json={"to": "triaged", "at": triaged.isoformat()}, headers=admin)
    assert r.status_code == 200, r.text
    # An investigation cannot start before the triage it follows.
    r = await client.post(
        url,
        json={"to": "investigating", "at": (triaged - timedelta(seconds=1)).isoformat()},
        headers=admin,
    )
    _refused(r, "at", "before the previous step")


async def test_an_authority_report_follows_awareness_and_is_not_in_the_future(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    name = f"acme/times-authority-{uniq}"
    await register_model(client, admin, name)
    aware = datetime.now(UTC) - timedelta(days=3)
    r = await client.post(
        "/v1/incidents",
        json=_incident(
            name, aware_at=aware.isoformat(), serious=True, serious_kind="fundamental_rights"
        ),
        headers=admin,
    )
    assert r.status_code == 201, r.text
    url = f"/v1/incidents/{r.json()['id']}/authority-reports"
    future = (datetime.now(UTC) + FUTURE).isoformat()
    r = await client.post(url, json={"kind": "initial", "at": future}, headers=admin)
    _refused(r, "at", "in the future")
    earlier = (aware - timedelta(days=1)).isoformat()
    r = await client.post(url, json={"kind": "initial", "at": earlier}, headers=admin)
    _refused(r, "at", "before aware_at")
    r = await client.post(
        url, json={"kind": "initial", "at": (aware + timedelta(days=1)).isoformat()}, headers=admin
    )
    assert r.status_code == 200, r.text


async def test_hosting_times_on_rest(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    name = f"acme/times-hosting-{uniq}"
    await register_model(client, admin, name)
    future = (datetime.now(UTC) + FUTURE).isoformat()
    body = {"model": name, "url": f"https://h.example/{name}", "platform": platform.slug}
    r = await client.post("/v1/hostings", json={**body, "occurred_at": future}, headers=admin)
    _refused(r, "occurred_at", "in the future")
    hosting_id = await host(client, admin, name, platform)
    r = await client.patch(
        f"/v1/hostings/{hosting_id}",
        json={"status": "removed", "occurred_at": future},
        headers=admin,
    )
    _refused(r, "occurred_at", "in the future")
    r = await client.get(f"/v1/hostings/{hosting_id}", headers=admin)
    assert r.json()["status"] == "hosted"


async def test_a_confirmation_by_webhook_follows_the_proposal_and_is_not_in_the_future(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    name = f"org-{uniq}/times-confirm"
    secret = await new_secret(client, admin, platform.slug)
    assert (await deliver(client, platform.slug, secret, hosted(name))).status_code == 202
    second = await admin_headers(pool)
    decision = await decide(client, admin, second, name)
    proposed = datetime.fromisoformat(decision["proposed_at"])

    def executed(at: datetime) -> bytes:
        data = {"decision_id": decision["id"], "model": name, "outcome": "removed"}
        return event("decommission.executed", {**data, "executed_at": at.isoformat()})

    for at, words in (
        (datetime.now(UTC) + FUTURE, "in the future"),
        (proposed - timedelta(days=1), "before the decision's proposal"),
    ):
        r = await deliver(client, platform.slug, secret, executed(at))
        _refused(r, "executed_at", words)
    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
    assert r.json()["status"] == "notified"
    assert all(t["confirmed_at"] is None for t in r.json()["targets"])
    r = await client.get("/v1/hostings", params={"platform": platform.slug}, headers=admin)
    assert [h["status"] for h in r.json()["items"]] == ["hosted"]
    r = await deliver(client, platform.slug, secret, executed(datetime.now(UTC)))
    assert r.status_code == 202, r.text


async def test_audit_steps_are_not_in_the_future_and_complete_after_the_start(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str], uniq: str
) -> None:
    name = f"acme/times-audit-{uniq}"
    await register_model(client, admin, name)
    async with pool.acquire() as c, c.transaction():
        created = await create_key(
            cast("asyncpg.Connection", c),
            data=ApiKeyIn(role="auditor", name="auditor"),
            actor_id=None,
        )
    auditor = bearer(created.key)
    r = await client.post(
        "/v1/audit-grants",
        json={
            "auditor_id": str(created.api_key.principal_id),
            "model": name,
            "components": ["weights"],
            "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    audit = {"models": [name], "method": "red_team", "components": ["weights"]}
    future = (datetime.now(UTC) + FUTURE).isoformat()
    r = await client.post("/v1/audits", json={**audit, "started_at": future}, headers=auditor)
    _refused(r, "started_at", "in the future")
    started = datetime.now(UTC) - timedelta(hours=1)
    r = await client.post(
        "/v1/audits", json={**audit, "started_at": started.isoformat()}, headers=auditor
    )
    assert r.status_code == 201, r.text
    url = f"/v1/audits/{r.json()['id']}/complete"
    for at, words in (
        (future, "in the future"),
        ((started - timedelta(minutes=1)).isoformat(), "before the audit's start"),
    ):
        r = await client.post(
            url, json={"outcome": "pass", "summary": "ok", "completed_at": at}, headers=auditor
        )
        _refused(r, "completed_at", words)
    r = await client.post(url, json={"outcome": "pass", "summary": "ok"}, headers=auditor)
    assert r.status_code == 200, r.text


async def test_the_clock_skew_is_a_setting_on_every_path(
    settings: Settings,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    """REGISTRY_CLOCK_SKEW_SECONDS decides how far ahead a supplied time may be: with 30 s,
    a time two minutes ahead is refused on REST, the public channel and a signed webhook;
    with an hour, ten minutes ahead is accepted."""
    tight = create_app(msgspec.structs.replace(settings, clock_skew_seconds=30.0), pool=pool)
    loose = create_app(msgspec.structs.replace(settings, clock_skew_seconds=3600.0), pool=pool)
    name = f"acme/times-skew-{uniq}"
    async with _client(tight) as c:
        await register_model(c, admin, name)
        await host(c, admin, name, platform)
        secret = await new_secret(c, admin, platform.slug)
        ahead = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
        r = await c.post("/v1/incidents", json=_incident(name, aware_at=ahead), headers=admin)
        _refused(r, "aware_at", "allowed clock skew of 30 s")
        r = await c.post("/v1/reports", json=_incident(name, occurred_at=ahead))
        _refused(r, "occurred_at", "allowed clock skew of 30 s")
        body = event("incident.reported", _incident(name, aware_at=ahead))
        _refused(await deliver(c, platform.slug, secret, body), "aware_at", "30 s")
    async with _client(loose) as c:
        ahead = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
        r = await c.post("/v1/incidents", json=_incident(name, aware_at=ahead), headers=admin)
        assert r.status_code == 201, r.text
        body = event("incident.reported", _incident(name, occurred_at=ahead, aware_at=ahead))
        r = await deliver(c, platform.slug, secret, body)
        assert r.status_code in (200, 202), r.text


def test_the_clock_skew_setting_is_bounded() -> None:
    assert load_settings({"REGISTRY_CLOCK_SKEW_SECONDS": "90"}).clock_skew_seconds == 90.0
    for bad in ("-1", "7200", "soon"):
        with pytest.raises(msgspec.ValidationError):
            load_settings({"REGISTRY_CLOCK_SKEW_SECONDS": bad})


def _client(app: Litestar) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=cast("Any", app))
    return httpx.AsyncClient(transport=transport, base_url="http://registry.test")
