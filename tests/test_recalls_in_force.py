"""Recalls stay in force: after a decision is notified (or executed), a hosting of its model
that becomes ``hosted`` again, on any path, is a late target again, awaiting a new
confirmation; its platform gets one notice per decision listing all of its late hostings,
and is overdue until it confirms again.

Every path is driven from the platform's or admin's side: signed webhooks through each door
(Standard Webhooks on the group-commit batch path and on the regular path, Hugging Face,
GitHub) and the REST ``PATCH``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
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
from tests.helpers.notices import Receiver, add_endpoint, admin_headers, decide
from tests.helpers.webhooks import deliver, event, hosted, new_secret

pytestmark = pytest.mark.usefixtures("quiet_endpoints")


@pytest.fixture
async def secret(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture
) -> str:
    return await new_secret(client, admin, platform.slug)


async def _hosting_id(
    client: httpx.AsyncClient, admin: dict[str, str], slug: str, model: str
) -> str:
    r = await client.get("/v1/hostings", params={"platform": slug}, headers=admin)
    assert r.status_code == 200, r.text
    found = [h["id"] for h in r.json()["items"] if h["model"] == model]
    assert len(found) == 1, r.text
    return str(found[0])


async def _send(client: httpx.AsyncClient, slug: str, secret: str, body: bytes) -> None:
    r = await deliver(client, slug, secret, body)
    assert r.status_code in (200, 202), r.text


async def _recall_carried_out(
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
        await _send(client, platform.slug, secret, hosted(model, revision="abc123"))
    else:
        await create()
    hosting_id = await _hosting_id(client, admin, platform.slug, model)
    decision = await decide(client, admin, await admin_headers(pool), model)
    done = event(
        "decommission.executed",
        {"decision_id": decision["id"], "model": model, "outcome": "removed"},
    )
    await _send(client, platform.slug, secret, done)
    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
    assert r.json()["status"] == "executed", r.text
    [target] = r.json()["targets"]
    assert (target["hosting_id"], target["outcome"]) == (hosting_id, "removed")
    return decision, hosting_id


async def _assert_late_again(
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
    decision, hosting_id = await _recall_carried_out(
        client, pool, admin, platform, secret, receiver, model
    )
    await _send(client, platform.slug, secret, hosted(model))
    await _assert_late_again(client, admin, platform, decision, hosting_id)

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
    await _send(client, platform.slug, secret, done)
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
    decision, hosting_id = await _recall_carried_out(
        client, pool, admin, platform, secret, receiver, model
    )
    await _send(
        client, platform.slug, secret, event("model.updated", {"model": model, "status": "hosted"})
    )
    await _assert_late_again(client, admin, platform, decision, hosting_id)


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
    decision, hosting_id = await _recall_carried_out(
        client, pool, admin, platform, secret, receiver, model
    )
    body = event("model.updated", {"model": model, "status": "hosted"})
    await _send(unbatched, platform.slug, secret, body)
    await _assert_late_again(client, admin, platform, decision, hosting_id)


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
    decision, hosting_id = await _recall_carried_out(
        client, pool, admin, platform, secret, receiver, model
    )
    r = await client.patch(f"/v1/hostings/{hosting_id}", json={"status": "hosted"}, headers=admin)
    assert r.status_code == 200, r.text
    await _assert_late_again(client, admin, platform, decision, hosting_id)


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

    decision, hosting_id = await _recall_carried_out(
        client, pool, admin, platform, secret, receiver, model, create=create
    )
    again = hf_payload(model, action=action, scope=scope, **extra)
    # Another commit, so the Hub's payload (and its delivery id) differs from the first.
    again = again.replace(b"c1a2b3d4e5f60718293a4b5c6d7e8f9012345678", b"ffee" * 10)
    r = await hf_send(client, platform.slug, secret, again)
    assert r.status_code == 202, r.text
    await _assert_late_again(client, admin, platform, decision, hosting_id)


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

    decision, hosting_id = await _recall_carried_out(
        client, pool, admin, platform, secret, receiver, model, create=create
    )
    payload = {"action": action, "repository": gh_repository(model)}
    r = await gh_send(client, platform.slug, secret, "repository", payload)
    assert r.status_code == 202, r.text
    await _assert_late_again(client, admin, platform, decision, hosting_id)


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
    await _send(client, platform.slug, secret, hosted(model))
    await _send(client, platform.slug, secret, event("model.removed", {"model": model}))
    hosting_id = await _hosting_id(client, admin, platform.slug, model)
    # The decision reaches another platform's hosting, so it is notified with targets.
    r = await client.post(
        "/v1/hostings",
        json={"model": model, "url": "https://forge.example/x", "platform": other_platform.slug},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    decision = await decide(client, admin, await admin_headers(pool), model)
    assert hosting_id not in [t["hosting_id"] for t in decision["targets"]]

    await _send(client, platform.slug, secret, hosted(model))
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
        await _send(client, platform.slug, secret, hosted(name))
    ids = {n: await _hosting_id(client, admin, platform.slug, n) for n in (base, child)}
    decision = await decide(
        client, admin, await admin_headers(pool), base, include_derivatives=True
    )
    for name in (base, child):
        done = event(
            "decommission.executed",
            {"decision_id": decision["id"], "model": name, "outcome": "removed"},
        )
        await _send(client, platform.slug, secret, done)
    for name in (base, child):
        await _send(client, platform.slug, secret, hosted(name))
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
    await _send(client, platform.slug, secret, hosted(model))
    hosting_id = await _hosting_id(client, admin, platform.slug, model)
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
