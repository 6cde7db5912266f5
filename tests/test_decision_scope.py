"""Each platform sees its own: a decision read by a platform key shows that platform's
targets only, on every path a platform reads it (one, the list, the past as of a moment,
its notices); other platforms' hosting ids and names stay hidden. CSAF advisories are for
admins and regulators only."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from tests.conftest import PlatformFixture, register_model
from tests.helpers.notices import Receiver, add_endpoint, admin_headers, decide, host

pytestmark = pytest.mark.usefixtures("quiet_endpoints")


async def test_a_platform_reads_only_its_own_targets_of_a_decision(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    receiver: Receiver,
    uniq: str,
) -> None:
    model = f"acme/shared-{uniq}"
    await register_model(client, admin, model)
    mine = await host(client, admin, model, platform)
    theirs = await host(client, admin, model, other_platform)
    await add_endpoint(client, admin, receiver, platform)
    decision = await decide(
        client,
        admin,
        await admin_headers(pool),
        model,
        platforms=[platform.slug, other_platform.slug],
    )
    path = f"/v1/decommissions/{decision['id']}"
    # Admins see every target.
    r = await client.get(path, headers=admin)
    assert {t["hosting_id"] for t in r.json()["targets"]} == {mine, theirs}
    now = datetime.now(UTC).isoformat()

    reads = {
        "one": await client.get(path, headers=platform.headers),
        "as_of": await client.get(path, params={"as_of": now}, headers=platform.headers),
        "list": await client.get("/v1/decommissions", headers=platform.headers),
        "notices": await client.get(
            "/v1/notifications", params={"decision_id": decision["id"]}, headers=platform.headers
        ),
    }
    for name, r in reads.items():
        assert r.status_code == 200, (name, r.text)
        for hidden in (theirs, other_platform.slug, other_platform.id):
            assert hidden not in r.text, (name, hidden)
        assert mine in r.text, name
    one = reads["one"].json()
    assert [(t["hosting_id"], t["platform"]) for t in one["targets"]] == [(mine, platform.slug)]
    assert one["platform_ids"] == [platform.id]
    [listed] = [d for d in reads["list"].json()["items"] if d["id"] == decision["id"]]
    assert listed == one

    # The advisory is not a platform's to read.
    r = await client.get(f"/v1/exports/csaf/decisions/{decision['id']}", headers=platform.headers)
    assert r.status_code == 403, r.text
