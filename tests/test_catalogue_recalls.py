"""A recalled model hosted again through a catalogue sync is caught as late, as through any
other path: the sync goes through the same rule (``flag_hosted``)."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from tests.conftest import PlatformFixture, register_model
from tests.helpers.catalogue import line, ndjson, push
from tests.helpers.notices import Receiver
from tests.helpers.recalls import assert_late_again, recall_carried_out
from tests.helpers.webhooks import new_secret

pytestmark = pytest.mark.usefixtures("quiet_endpoints")


async def test_recalled_model_rehosted_through_a_sync_is_late(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    uniq: str,
) -> None:
    secret = await new_secret(client, admin, platform.slug)
    model = f"acme/recalled-sync-{uniq}"
    await register_model(client, admin, model)

    async def by_catalogue() -> None:
        r = await push(client, platform.slug, secret, ndjson([line(model, revision="abc123")]))
        assert r.status_code == 200, r.text

    decision, hosting_id = await recall_carried_out(
        client, pool, admin, platform, secret, receiver, model, create=by_catalogue
    )
    # The confirmed removal left the hosting removed; the catalogue lists it again.
    r = await push(client, platform.slug, secret, ndjson([line(model, revision="abc123")]))
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == 1, r.text
    await assert_late_again(client, admin, platform, decision, hosting_id)


async def test_recalled_model_newly_hosted_through_a_sync_is_a_late_target(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    receiver: Receiver,
    uniq: str,
) -> None:
    secret = await new_secret(client, admin, platform.slug)
    model = f"acme/recalled-new-{uniq}"
    await register_model(client, admin, model)
    decision, _ = await recall_carried_out(client, pool, admin, platform, secret, receiver, model)
    other_secret = await new_secret(client, admin, other_platform.slug)
    r = await push(client, other_platform.slug, other_secret, ndjson([line(model)]))
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 1
    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
    late = [t for t in r.json()["targets"] if t["platform_id"] == other_platform.id]
    assert len(late) == 1, r.text
    assert late[0]["late"] is True
    assert late[0]["confirmed_at"] is None
