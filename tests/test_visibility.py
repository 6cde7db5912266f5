"""One visibility rule on every path, from each role's side.

- Auditors read every incident and every audit (no grant needed to read); who reported an
  incident reaches no auditor on any path: not the incident, its past (``as_of``), its
  ledger events, a model's history, nor the delivery that reported it. Every leaf an
  auditor reads still recomputes (nothing is redacted: the reporter is kept out of the
  event, a salted commitment in its place).
- A platform never learns another platform's hostings: not through ``/v1/events``, a
  model's history, decisions (one, list, past) or notices, even after it confirmed.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from litestar import Litestar

from service.domain.checkpoints import Signer
from service.domain.reporters import commit
from tests.conftest import PlatformFixture, register_model
from tests.helpers.audits import audit_body, grant, new_auditor
from tests.helpers.incidents import incident_body
from tests.helpers.jcs import jcs_leaf, read_event
from tests.helpers.ledger import seal_all
from tests.helpers.notices import admin_headers, decide, host
from tests.helpers.webhooks import deliver, event, new_secret

pytestmark = pytest.mark.usefixtures("quiet_endpoints")


async def _all_events(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> str:
    """Every page of ``/v1/events`` as one text."""
    texts, cursor = [], None
    while True:
        query = {"limit": 200, **params, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/events", params=query, headers=headers)
        assert r.status_code == 200, r.text
        texts.append(r.text)
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return "\n".join(texts)


async def test_auditors_read_every_incident_and_audit_but_never_the_reporter(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    signer: Signer,
    uniq: str,
) -> None:
    name = f"acme/seen-{uniq}"
    model_id = str((await register_model(client, admin, name))["id"])
    # One report through the API with the platform's key, one through its signed webhook.
    r = await client.post("/v1/incidents", json=incident_body(name), headers=platform.headers)
    assert r.status_code == 201, r.text
    by_api = r.json()
    secret = await new_secret(client, admin, platform.slug)
    body = event("incident.reported", incident_body(name, title="reported by webhook"))
    r = await deliver(client, platform.slug, secret, body, msg_id=f"msg_report_{uniq}")
    assert r.status_code in (200, 202), r.text
    by_hook_id = await conn.fetchval(
        "SELECT subject_id FROM events WHERE kind = 'incident.reported' AND subject_id <> $1 "
        "AND model_id = $2 ORDER BY seq DESC LIMIT 1",
        by_api["id"],
        model_id,
    )
    incidents = [by_api["id"], str(by_hook_id)]
    principal = str(
        await conn.fetchval(
            "SELECT reporter_principal_id FROM incidents WHERE id = $1", by_api["id"]
        )
    )
    secrets = (platform.id, platform.slug, principal, f"msg_report_{uniq}")

    # An audit by another auditor, of a model this auditor holds no grant for.
    other = await new_auditor(pool)
    await grant(client, admin, other, name, ["weights"])
    r = await client.post("/v1/audits", json=audit_body(name), headers=other.headers)
    assert r.status_code == 201, r.text
    audit_id = r.json()["id"]
    auditor = (await new_auditor(pool)).headers
    await seal_all(pool, signer)
    now = datetime.now(UTC).isoformat()

    # Admins and regulators see who reported: the rule hides it from auditors only.
    for role in (admin, regulator):
        r = await client.get(f"/v1/incidents/{by_api['id']}", headers=role)
        assert r.json()["reporter_platform_id"] == platform.id
        assert r.json()["reporter_principal_id"] == principal

    reads: dict[str, httpx.Response] = {}
    for incident in incidents:
        path = f"/v1/incidents/{incident}"
        reads[path] = await client.get(path, headers=auditor)
        reads[path + "?as_of"] = await client.get(path, params={"as_of": now}, headers=auditor)
    reads["list"] = await client.get(
        "/v1/incidents", params={"model_id": model_id}, headers=auditor
    )
    reads["list?as_of"] = await client.get(
        "/v1/incidents", params={"model_id": model_id, "as_of": now}, headers=auditor
    )
    reads["history"] = await client.get(
        f"/v1/models/{model_id}/history", params={"limit": 200}, headers=auditor
    )
    reads["audit"] = await client.get(f"/v1/audits/{audit_id}", headers=auditor)
    reads["audits"] = await client.get("/v1/audits", params={"model_id": model_id}, headers=auditor)
    reads["delivery"] = await client.get(
        f"/v1/webhooks/{platform.slug}/deliveries/msg_report_{uniq}", headers=auditor
    )
    for what in ("exports/incidents", "compliance"):
        reads[what] = await client.get(f"/v1/{what}", headers=auditor)
    for what, r in reads.items():
        if what == "delivery":
            assert r.status_code == 404, r.text  # it names the reporting platform
            continue
        if what in ("exports/incidents", "compliance"):
            assert r.status_code in (403, 404), (what, r.status_code)
            continue
        assert r.status_code == 200, (what, r.text)
        for secret_value in secrets:
            assert secret_value not in r.text, (what, secret_value)
    assert all(i in reads["list"].text for i in incidents)
    assert audit_id in reads["audits"].text
    for incident in incidents:
        view = reads[f"/v1/incidents/{incident}"].json()
        assert view["reporter_platform_id"] is None
        assert view["reporter_principal_id"] is None

    # The incidents' events: readable whole, nothing of the reporter, every leaf recomputes.
    leaves: dict[int, Any] = {}
    start = 0
    while True:  # every sealed leaf, a page at a time (a long-lived test database has many)
        r = await client.get("/v1/ledger/leaves", params={"start": start, "limit": 10_000})
        page = r.json()["items"]
        leaves.update({item["seq"]: item for item in page})
        if len(page) < 10_000:
            break
        start += len(page)
    for incident in incidents:
        text = await _all_events(client, auditor, subject_id=incident)
        for secret_value in secrets:
            assert secret_value not in text, secret_value
        events = [read_event(json.dumps(e)) for e in json.loads(text)["items"]]
        assert events
        for e in events:
            assert e["platform_id"] is None
            assert "reporter_platform_id" not in e["payload"]["state"]
            leaf = leaves[e["seq"]]
            assert jcs_leaf(e) == base64.b64decode(leaf["leaf_hash"])
    # The commitment binds the event to the reporter kept apart; admins and regulators read
    # the salt to check it, auditors and platforms may not.
    for role in (auditor, platform.headers):
        r = await client.get(f"/v1/incidents/{by_api['id']}/reporter", headers=role)
        assert r.status_code == 403, r.text
    r = await client.get(f"/v1/incidents/{by_api['id']}/reporter", headers=regulator)
    assert r.status_code == 200, r.text
    served = r.json()
    assert served["reporter_platform_id"] == platform.id
    [reported] = json.loads(await _all_events(client, admin, subject_id=by_api["id"]))["items"]
    salt = bytes(
        await conn.fetchval(
            "SELECT salt FROM incident_reporters WHERE incident_id = $1", by_api["id"]
        )
    )
    assert reported["payload"]["state"]["reporter_commitment"] == commit(
        salt=salt, principal_id=UUID(principal), platform_id=UUID(platform.id)
    )
    assert base64.b64decode(served["salt"]) == salt
    assert served["commitment"] == reported["payload"]["state"]["reporter_commitment"]


async def test_a_platform_never_sees_another_platforms_hostings_in_the_ledger(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    name = f"acme/recalled-{uniq}"
    model_id = str((await register_model(client, admin, name))["id"])
    theirs = await host(client, admin, name, platform)  # platform A's hosting
    mine = await host(client, admin, name, other_platform)  # platform B's hosting
    decision = await decide(client, admin, await admin_headers(pool), name)
    # B confirms, through its signed webhook.
    secret = await new_secret(client, admin, other_platform.slug)
    body = event(
        "decommission.executed",
        {"decision_id": decision["id"], "model": name, "outcome": "removed"},
    )
    r = await deliver(client, other_platform.slug, secret, body)
    assert r.status_code in (200, 202), r.text
    admin_events = await _all_events(client, admin, subject_id=decision["id"])
    assert "decommission.confirmed" in admin_events
    assert theirs in admin_events  # the ledger holds every target, for those who may read it

    b = other_platform.headers
    now = datetime.now(UTC).isoformat()
    reads = {
        "events": await _all_events(client, b),
        "events?subject": await _all_events(client, b, subject_id=decision["id"]),
        "events?model": await _all_events(client, b, model_id=model_id),
        "history": (
            await client.get(f"/v1/models/{model_id}/history", params={"limit": 200}, headers=b)
        ).text,
        "decision": (await client.get(f"/v1/decommissions/{decision['id']}", headers=b)).text,
        "decision?as_of": (
            await client.get(
                f"/v1/decommissions/{decision['id']}", params={"as_of": now}, headers=b
            )
        ).text,
        "decisions": (await client.get("/v1/decommissions", headers=b)).text,
        "hostings": (
            await client.get("/v1/hostings", params={"model_id": model_id}, headers=b)
        ).text,
        "notices": (await client.get("/v1/notifications", headers=b)).text,
    }
    hosting = (await client.get(f"/v1/hostings/{theirs}", headers=admin)).json()
    hidden = (theirs, platform.slug, platform.id, hosting["url"])
    for what, text in reads.items():
        for value in hidden:
            assert value not in text, (what, value)
    assert mine in reads["decision"]
    assert mine in reads["hostings"]
