"""A recall carried out, and the same model hosted again: the steps and checks the tests of
recalls that stay in force share (through the webhook, the REST API and the catalogue)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from tests.conftest import PlatformFixture
from tests.helpers.hostings import deliver_ok, hosting_of
from tests.helpers.notices import Receiver, add_endpoint, admin_headers, decide
from tests.helpers.webhooks import event, hosted


async def recall_carried_out(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    receiver: Receiver,
    model: str,
    *,
    create: Callable[[], Awaitable[None]] | None = None,
) -> tuple[dict[str, Any], str]:
    """The platform hosts ``model`` (through ``create``, or ``model.hosted``), a recall is
    notified, and the platform confirms it removed: the decision is executed. Returns the
    decision and the hosting id."""
    await add_endpoint(client, admin, receiver, platform)
    if create is None:
        await deliver_ok(client, platform.slug, secret, hosted(model, revision="abc123"))
    else:
        await create()
    hosting_id: str = (await hosting_of(client, admin, platform.slug, model))["id"]
    decision = await decide(client, admin, await admin_headers(pool), model)
    done = event(
        "decommission.executed",
        {"decision_id": decision["id"], "model": model, "outcome": "removed"},
    )
    await deliver_ok(client, platform.slug, secret, done)
    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
    assert r.json()["status"] == "executed", r.text
    [target] = r.json()["targets"]
    assert (target["hosting_id"], target["outcome"]) == (hosting_id, "removed")
    return decision, hosting_id


async def assert_late_again(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    decision: dict[str, Any],
    hosting_id: str,
) -> None:
    """The hosting is a late target awaiting confirmation, and its platform was told once
    more, in one notice listing it."""
    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "executed"
    [target] = [t for t in body["targets"] if t["hosting_id"] == hosting_id]
    assert target["late"] is True
    assert (target["confirmed_at"], target["outcome"]) == (None, None)
    r = await client.get(
        "/v1/notifications", params={"decision_id": decision["id"]}, headers=platform.headers
    )
    assert r.status_code == 200, r.text
    notices = sorted(r.json()["items"], key=lambda n: n["created_at"])
    assert len(notices) == 2, notices  # the first notice, and the one for the late hosting
    late = notices[-1]["payload"]
    hostings = late.get("data", late)["hostings"]
    assert [(h["hosting_id"], h["late"]) for h in hostings] == [(hosting_id, True)]
