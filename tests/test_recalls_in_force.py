"""Recalls stay in force: after a decision is notified (or executed), a hosting of its model
that becomes ``hosted`` again, on any path, is a late target again, awaiting a new
confirmation; its platform gets one notice per decision listing all of its late hostings,
and is overdue until it confirms again.

Every path is driven from the platform's or admin's side: signed webhooks through each door
(Standard Webhooks on the group-commit batch path and on the regular path, Hugging Face,
GitHub) and the REST ``PATCH``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast
from uuid import UUID

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar

from service.app import create_app
from service.settings import Settings
from tests.conftest import PlatformFixture, register_model
from tests.helpers.adapters import gh_repository, gh_send, hf_payload, hf_send
from tests.helpers.hostings import deliver_ok, hosting_of
from tests.helpers.notices import Receiver, add_endpoint, admin_headers, decide
from tests.helpers.recalls import assert_late_again, recall_carried_out
from tests.helpers.webhooks import deliver, event, hosted

pytestmark = pytest.mark.usefixtures("quiet_endpoints")


async def test_model_hosted_again_is_late_and_overdue_until_confirmed_again(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    receiver: Receiver,
    uniq: str,
) -> None:
    model = f"acme/rehosted-{uniq}"
    await register_model(client, admin, model)
    decision, hosting_id = await recall_carried_out(
        client, pool, admin, platform, secret, receiver, model
    )
    await deliver_ok(client, platform.slug, secret, hosted(model))
    await assert_late_again(client, admin, platform, decision, hosting_id)

    # Past the deadline, the platform is overdue with its late hosting until it confirms.
    async with pool.acquire() as c:
        await c.execute(
            "UPDATE decommissions SET confirm_by = now() - interval '1 hour' WHERE id = $1",
            UUID(decision["id"]),
        )
    path = "/v1/decommissions/overdue"
    r = await client.get(path, params={"decision_id": decision["id"]}, headers=platform.headers)
    assert [(o["platform"], o["hosting_ids"]) for o in r.json()["items"]] == [
        (platform.slug, [hosting_id])
    ]
    done = event(
        "decommission.executed",
        {"decision_id": decision["id"], "model": model, "outcome": "removed"},
    )
    await deliver_ok(client, platform.slug, secret, done)
    r = await client.get(path, params={"decision_id": decision["id"]}, headers=admin)
    assert r.json()["items"] == []


async def test_model_updated_to_hosted_on_the_batch_path(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    receiver: Receiver,
    app: Litestar,
    uniq: str,
) -> None:
    assert app.state.webhook_gate.group_commit is not None  # a lone model.updated is batched
    model = f"acme/updated-batch-{uniq}"
    await register_model(client, admin, model)
    decision, hosting_id = await recall_carried_out(
        client, pool, admin, platform, secret, receiver, model
    )
    await deliver_ok(
        client, platform.slug, secret, event("model.updated", {"model": model, "status": "hosted"})
    )
    await assert_late_again(client, admin, platform, decision, hosting_id)


@pytest.fixture
async def unbatched(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(msgspec.structs.replace(settings, group_commit=False), pool=pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cast("Any", app)), base_url="http://registry.test"
    ) as c:
        yield c


async def test_model_updated_to_hosted_on_the_regular_path(
    client: httpx.AsyncClient,
    unbatched: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    receiver: Receiver,
    uniq: str,
) -> None:
    model = f"acme/updated-one-{uniq}"
    await register_model(client, admin, model)
    decision, hosting_id = await recall_carried_out(
        client, pool, admin, platform, secret, receiver, model
    )
    body = event("model.updated", {"model": model, "status": "hosted"})
    await deliver_ok(unbatched, platform.slug, secret, body)
    await assert_late_again(client, admin, platform, decision, hosting_id)


async def test_patch_hosting_to_hosted(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    receiver: Receiver,
    uniq: str,
) -> None:
    model = f"acme/patched-{uniq}"
    await register_model(client, admin, model)
    decision, hosting_id = await recall_carried_out(
        client, pool, admin, platform, secret, receiver, model
    )
    r = await client.patch(f"/v1/hostings/{hosting_id}", json={"status": "hosted"}, headers=admin)
    assert r.status_code == 200, r.text
    await assert_late_again(client, admin, platform, decision, hosting_id)


@pytest.mark.parametrize(
    ("scope", "action", "extra"),
    [
        ("repo", "create", {}),
        ("repo.config", "update", {"updatedConfig": {"private": False}}),
        ("repo.config", "update", {"updatedConfig": {"disabled": False}}),
    ],
    ids=["create", "made-public", "enabled"],
)
async def test_huggingface_hosting_again(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    receiver: Receiver,
    uniq: str,
    scope: str,
    action: str,
    extra: dict[str, Any],
) -> None:
    model = f"hf-{uniq}/recalled"

    async def create() -> None:
        body = hf_payload(model, action="create", scope="repo")
        assert (await hf_send(client, platform.slug, secret, body)).status_code == 202

    decision, hosting_id = await recall_carried_out(
        client, pool, admin, platform, secret, receiver, model, create=create
    )
    again = hf_payload(model, action=action, scope=scope, **extra)
    # Another commit, so the Hub's payload (and its delivery id) differs from the first.
    again = again.replace(b"c1a2b3d4e5f60718293a4b5c6d7e8f9012345678", b"ffee" * 10)
    r = await hf_send(client, platform.slug, secret, again)
    assert r.status_code == 202, r.text
    await assert_late_again(client, admin, platform, decision, hosting_id)


@pytest.mark.parametrize("action", ["created", "unarchived", "publicized"])
async def test_github_hosting_again(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    receiver: Receiver,
    uniq: str,
    action: str,
) -> None:
    model = f"gh-{uniq}/recalled"

    async def create() -> None:
        payload = {"action": "created", "repository": gh_repository(model)}
        r = await gh_send(client, platform.slug, secret, "repository", payload)
        assert r.status_code == 202, r.text

    decision, hosting_id = await recall_carried_out(
        client, pool, admin, platform, secret, receiver, model, create=create
    )
    payload = {"action": action, "repository": gh_repository(model)}
    r = await gh_send(client, platform.slug, secret, "repository", payload)
    assert r.status_code == 202, r.text
    await assert_late_again(client, admin, platform, decision, hosting_id)


async def test_a_hosting_removed_before_the_notice_is_late_when_hosted_again(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    secret: str,
    receiver: Receiver,
    uniq: str,
) -> None:
    """A hosting that was already removed when the decision was notified is not one of its
    targets; hosted again, it becomes one, late."""
    model = f"acme/gone-before-{uniq}"
    await register_model(client, admin, model)
    await add_endpoint(client, admin, receiver, platform)
    await deliver_ok(client, platform.slug, secret, hosted(model))
    await deliver_ok(client, platform.slug, secret, event("model.removed", {"model": model}))
    hosting_id = (await hosting_of(client, admin, platform.slug, model))["id"]
    # The decision reaches another platform's hosting, so it is notified with targets.
    r = await client.post(
        "/v1/hostings",
        json={"model": model, "url": "https://forge.example/x", "platform": other_platform.slug},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    decision = await decide(client, admin, await admin_headers(pool), model)
    assert hosting_id not in [t["hosting_id"] for t in decision["targets"]]

    await deliver_ok(client, platform.slug, secret, hosted(model))
    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
    [target] = [t for t in r.json()["targets"] if t["hosting_id"] == hosting_id]
    assert (target["late"], target["confirmed_at"]) == (True, None)
    r = await client.get(
        "/v1/notifications", params={"decision_id": decision["id"]}, headers=platform.headers
    )
    [notice] = r.json()["items"]
    hostings = notice["payload"].get("data", notice["payload"])["hostings"]
    assert [h["hosting_id"] for h in hostings] == [hosting_id]


async def test_one_notice_lists_all_of_a_platforms_late_hostings(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    secret: str,
    platform: PlatformFixture,
    receiver: Receiver,
    uniq: str,
) -> None:
    """A base model and its derivative, both recalled and removed, hosted again: the notice
    sent for the second lists both, not just the latest."""
    base, child = f"acme/family-{uniq}", f"acme/family-child-{uniq}"
    await register_model(client, admin, base)
    await register_model(client, admin, child, base_model=base, derivation="adapter")
    await add_endpoint(client, admin, receiver, platform)
    for name in (base, child):
        await deliver_ok(client, platform.slug, secret, hosted(name))
    ids = {n: (await hosting_of(client, admin, platform.slug, n))["id"] for n in (base, child)}
    decision = await decide(
        client, admin, await admin_headers(pool), base, include_derivatives=True
    )
    for name in (base, child):
        done = event(
            "decommission.executed",
            {"decision_id": decision["id"], "model": name, "outcome": "removed"},
        )
        await deliver_ok(client, platform.slug, secret, done)
    for name in (base, child):
        await deliver_ok(client, platform.slug, secret, hosted(name))
    r = await client.get(
        "/v1/notifications", params={"decision_id": decision["id"]}, headers=platform.headers
    )
    notices = sorted(r.json()["items"], key=lambda n: n["created_at"])
    assert len(notices) == 3  # the first, then one each time a hosting came back
    last = notices[-1]["payload"]
    listed = {h["hosting_id"] for h in last.get("data", last)["hostings"]}
    assert listed == set(ids.values())


@pytest.mark.parametrize(
    ("action", "outcome", "accepted"),
    [
        ("recall", "restricted", False),
        ("recall", "removed", True),
        ("restrict", "restricted", True),
        ("restrict", "removed", True),
        ("deprecate", "restricted", True),
        ("licence_change", "removed", True),
    ],
)
async def test_a_confirmation_must_carry_out_what_was_asked(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    action: str,
    outcome: str,
    accepted: bool,
) -> None:
    """The matrix in the README, through the signed ``decommission.executed`` webhook: a
    mismatch is 422 naming both, and writes nothing (the hosting keeps its status)."""
    model = f"acme/matrix-{uniq}"
    await register_model(client, admin, model)
    await deliver_ok(client, platform.slug, secret, hosted(model))
    hosting_id = (await hosting_of(client, admin, platform.slug, model))["id"]
    fields: dict[str, Any] = {"action": action}
    if action == "deprecate":
        fields["sunset_at"] = "2031-01-01T00:00:00Z"
    if action == "licence_change":
        fields["new_licence"] = "cc-by-nc-4.0"
    decision = await decide(client, admin, await admin_headers(pool), model, **fields)
    done = event(
        "decommission.executed",
        {"decision_id": decision["id"], "model": model, "outcome": outcome},
    )
    r = await deliver(client, platform.slug, secret, done)
    hosting = (await client.get(f"/v1/hostings/{hosting_id}", headers=admin)).json()
    target = (await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)).json()[
        "targets"
    ][0]
    if accepted:
        assert r.status_code == 202, r.text
        assert (hosting["status"], target["outcome"]) == (outcome, outcome)
        return
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == "a recall is carried out by removed, not restricted"
    assert (hosting["status"], target["confirmed_at"]) == ("hosted", None)
