"""What a notice tells a platform, received by a live receiver: per hosting the platform's
own name, id and URL; the successor by name; who proposed and approved, with ledger seqs.
Each way a notice is sent is covered: notification, a hosting that comes into scope late,
and withdrawal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from tests.conftest import PlatformFixture, register_model
from tests.helpers.notices import (
    Receiver,
    add_endpoint,
    admin_headers,
    decide,
    drain,
)
from tests.helpers.webhooks import deliver, event, new_secret


async def _hosted(
    client: httpx.AsyncClient, slug: str, secret: str, model: str, external_id: str, **extra: Any
) -> None:
    body = event(
        "model.hosted",
        {
            "model": model,
            "url": f"https://{slug}.example/repos/{external_id}",
            "external_id": external_id,
            **extra,
        },
    )
    r = await deliver(client, slug, secret, body)
    assert r.status_code == 202, r.text


async def _sign_off(
    client: httpx.AsyncClient, admin: dict[str, str], decision: dict[str, Any]
) -> list[dict[str, Any]]:
    """The proposal and approval as the ledger lists them, in the notice's shape."""
    r = await client.get(
        "/v1/events", params={"subject_id": decision["id"], "limit": 50}, headers=admin
    )
    assert r.status_code == 200, r.text
    wanted = {"decommission.proposed": "proposed", "decommission.approved": "approved"}
    return [
        {"step": wanted[e["kind"]], "seq": e["seq"], "principal_id": e["actor_id"]}
        for e in r.json()["items"]
        if e["kind"] in wanted
    ]


async def test_a_deprecation_notice_names_the_platforms_ids_the_successor_and_the_approvals(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    second = await admin_headers(pool)
    model, successor = f"acme/old-{uniq}", f"acme/new-{uniq}"
    await register_model(client, admin, successor)
    secret = await new_secret(client, admin, platform.slug)
    await _hosted(client, platform.slug, secret, model, "repo-17")
    await add_endpoint(client, admin, receiver, platform)
    sunset = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    decision = await decide(
        client,
        admin,
        second,
        model,
        action="deprecate",
        sunset_at=sunset,
        successor_model=successor,
    )
    await drain(http=http, pool=pool, until=lambda: len(receiver.delivered()) == 1)
    [hit] = receiver.delivered()
    assert hit.payload is not None
    data = hit.payload["data"]
    assert data["successor_model"] == successor
    assert data["successor_model_id"] == decision["successor_model_id"]
    [hosting] = data["hostings"]
    assert hosting["hosting_id"] == decision["targets"][0]["hosting_id"]
    assert hosting["external_id"] == "repo-17"
    assert hosting["url"] == f"https://{platform.slug}.example/repos/repo-17"
    assert hosting["name"] == model
    # Who proposed and who approved, each with the ledger event recording the step.
    approvals = data["approvals"]
    assert [
        {k: a[k] for k in ("step", "seq", "principal_id")} for a in approvals
    ] == await _sign_off(client, admin, decision)
    assert [a["principal_id"] for a in approvals] == [
        decision["proposed_by"],
        decision["approved_by"],
    ]
    assert [a["principal"] for a in approvals] == ["test", "second admin"]


async def test_late_and_withdrawal_notices_list_the_platforms_own_ids(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    second = await admin_headers(pool)
    base, child = f"acme/base-{uniq}", f"acme/child-{uniq}"
    secret = await new_secret(client, admin, platform.slug)
    other_secret = await new_secret(client, admin, other_platform.slug)
    await _hosted(client, platform.slug, secret, base, "b-1")
    await add_endpoint(client, admin, receiver, platform)
    await add_endpoint(client, admin, receiver, other_platform)
    decision = await decide(client, admin, second, base, include_derivatives=True)
    await drain(pool, http, lambda: len(receiver.delivered()) == 1)

    # A descendant hosted later (through a delivery) is notified at once, as a late target.
    await _hosted(client, other_platform.slug, other_secret, child, "c-9", base_model=base)
    await drain(pool, http, lambda: len(receiver.delivered()) == 2)
    [late] = receiver.delivered(f"/hooks/{other_platform.slug}")
    assert late.payload is not None
    [hosting] = late.payload["data"]["hostings"]
    assert (hosting["external_id"], hosting["name"], hosting["late"]) == ("c-9", child, True)
    assert hosting["url"] == f"https://{other_platform.slug}.example/repos/c-9"
    assert [a["step"] for a in late.payload["data"]["approvals"]] == ["proposed", "approved"]

    r = await client.post(
        f"/v1/decommissions/{decision['id']}/withdraw",
        json={"reason": "false alarm"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    await drain(pool, http, lambda: len(receiver.delivered()) == 4)
    withdrawn = {
        h.path: h.payload["data"]
        for h in receiver.delivered()
        if h.payload is not None and h.payload["type"] == "decommission.withdrawn"
    }
    assert withdrawn[f"/hooks/{platform.slug}"]["reason"] == "false alarm"
    assert [
        (h["external_id"], h["url"]) for h in withdrawn[f"/hooks/{platform.slug}"]["hostings"]
    ] == [("b-1", f"https://{platform.slug}.example/repos/b-1")]
    assert [h["external_id"] for h in withdrawn[f"/hooks/{other_platform.slug}"]["hostings"]] == [
        "c-9"
    ]
