"""A renamed or moved repository: the hosting takes the new name and URL with a
``hosting.renamed`` ledger event, and keeps its id, model, history and decisions. Covered on
every path that can say so: ``model.renamed`` (Standard Webhooks), the Hub's ``repo.move``,
GitHub's ``repository.renamed`` and ``repository.transferred``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast
from uuid import UUID

import asyncpg
import httpx

from service.domain.keys import create_key
from service.schemas.keys import ApiKeyIn
from tests.conftest import PlatformFixture, bearer
from tests.helpers.adapters import gh_repository, gh_send, hf_payload, hf_send
from tests.helpers.hostings import platform_hostings
from tests.helpers.notices import (
    Receiver,
    add_endpoint,
    admin_headers,
    decide,
    drain,
)
from tests.helpers.webhooks import deliver, event, hosted, new_secret


async def _kinds(client: httpx.AsyncClient, admin: dict[str, str], hosting_id: str) -> list[str]:
    r = await client.get(
        "/v1/events", params={"subject_id": hosting_id, "limit": 100}, headers=admin
    )
    assert r.status_code == 200, r.text
    return [e["kind"] for e in r.json()["items"]]


async def test_model_renamed_moves_the_hosting_and_keeps_its_record(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    secret = await new_secret(client, admin, platform.slug)
    old, new = f"org-{uniq}/llm", f"neworg-{uniq}/llm-v2"
    r = await deliver(client, platform.slug, secret, hosted(old, external_id="r-1"))
    assert r.status_code == 202, r.text
    [before] = await platform_hostings(client, admin, platform.slug)
    second = await admin_headers(pool)
    decision = await decide(client, admin, second, old, notify=False)

    body = event("model.renamed", {"model": old, "name": new, "url": f"https://hub.example/{new}"})
    r = await deliver(client, platform.slug, secret, body)
    assert r.status_code == 202, r.text
    [seq] = r.json()["events"]
    [after] = await platform_hostings(client, admin, platform.slug)
    assert (after["id"], after["model_id"], after["model"]) == (
        before["id"],
        before["model_id"],
        old,
    )
    assert (after["name"], after["url"], after["external_id"]) == (
        new,
        f"https://hub.example/{new}",
        "r-1",
    )
    assert await _kinds(client, admin, after["id"]) == ["hosting.recorded", "hosting.renamed"]
    r = await client.get("/v1/events", params={"subject_id": after["id"]}, headers=admin)
    renamed = r.json()["items"][-1]
    assert renamed["seq"] == seq
    assert renamed["payload"]["changes"]["name"] == {"from": old, "to": new}
    assert renamed["payload"]["state"]["name"] == new
    # No model was registered under the new name: the hosting is still of the old model.
    assert await conn.fetchval("SELECT count(*) FROM models WHERE name = $1", new) == 0

    # Later deliveries name the hosting by its new name and reach the same record.
    r = await deliver(
        client, platform.slug, secret, event("model.updated", {"model": new, "revision": "v2"})
    )
    assert r.status_code == 202, r.text
    r = await deliver(
        client,
        platform.slug,
        secret,
        event("model.downloads", {"counts": [{"model": new, "downloads": 5}]}),
    )
    assert r.status_code == 202, r.text
    [later] = await platform_hostings(client, admin, platform.slug)
    assert (later["id"], later["revision"], later["downloads"]) == (before["id"], "v2", 5)
    # The old name no longer finds it.
    r = await deliver(
        client, platform.slug, secret, event("model.updated", {"model": old, "revision": "v3"})
    )
    assert r.status_code == 422, r.text

    # The same rename again (a platform retrying with a new id) changes nothing.
    r = await deliver(client, platform.slug, secret, body)
    assert (r.status_code, r.json()["events"]) == (202, [])

    # The decision still targets the hosting, and its notice names it as the platform does.
    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
    assert [t["hosting_id"] for t in r.json()["targets"]] == [before["id"]]
    await add_endpoint(client, admin, receiver, platform)
    r = await client.post(f"/v1/decommissions/{decision['id']}/notify", headers=second)
    assert r.status_code == 200, r.text
    await drain(pool, http, lambda: len(receiver.delivered()) == 1)
    [hit] = receiver.delivered()
    assert hit.payload is not None
    [notice_hosting] = hit.payload["data"]["hostings"]
    assert (notice_hosting["name"], notice_hosting["url"], notice_hosting["model"]) == (
        new,
        f"https://hub.example/{new}",
        old,
    )


async def test_a_rename_onto_a_name_in_use_or_of_an_unknown_hosting_writes_nothing(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    secret = await new_secret(client, admin, platform.slug)
    a, b = f"org-{uniq}/a", f"org-{uniq}/b"
    for name in (a, b):
        assert (await deliver(client, platform.slug, secret, hosted(name))).status_code == 202
    before = await conn.fetchval("SELECT max(seq) FROM events")
    onto_b = event("model.renamed", {"model": a, "name": b, "url": "https://hub.example/x"})
    r = await deliver(client, platform.slug, secret, onto_b)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    # Hosting names are case-insensitive on a platform, as model names are.
    onto_b_upper = event(
        "model.renamed", {"model": a, "name": b.upper(), "url": "https://hub.example/x"}
    )
    r = await deliver(client, platform.slug, secret, onto_b_upper)
    assert r.status_code == 409, r.text
    unknown = event(
        "model.renamed",
        {"model": f"org-{uniq}/zz", "name": f"org-{uniq}/yy", "url": "https://hub.example/y"},
    )
    r = await deliver(client, platform.slug, secret, unknown)
    assert r.status_code == 422, r.text
    bad = event("model.renamed", {"model": a, "name": "no slash", "url": "https://h.example/"})
    r = await deliver(client, platform.slug, secret, bad)
    assert r.status_code == 400, r.text
    foreign = event(
        "model.renamed",
        {"model": a, "name": f"org-{uniq}/c", "url": "https://h.example/c", "platform": "other"},
    )
    r = await deliver(client, platform.slug, secret, foreign)
    assert r.status_code == 403, r.text
    assert sorted(h["name"] for h in await platform_hostings(client, admin, platform.slug)) == [
        a,
        b,
    ]
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM events WHERE seq > $1 AND platform_id = $2", before, platform.id
        )
        == 0
    )


async def test_huggingface_repo_move_renames_the_hosting(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    secret = await new_secret(client, admin, platform.slug)
    old, new = f"hf-{uniq}/tiny", f"hf-new-{uniq}/tiny-renamed"
    r = await hf_send(client, platform.slug, secret, hf_payload(old, action="create", scope="repo"))
    assert r.status_code == 202, r.text
    [before] = await platform_hostings(client, admin, platform.slug)
    moved = hf_payload(
        old,
        action="move",
        scope="repo",
        movedTo={"name": new, "owner": {"id": "628b753283ef59b5be89e999"}},
    )
    r = await hf_send(client, platform.slug, secret, moved)
    assert r.status_code == 202, r.text
    [after] = await platform_hostings(client, admin, platform.slug)
    assert (after["id"], after["model"]) == (before["id"], old)
    assert (after["name"], after["url"]) == (new, f"https://huggingface.co/{new}")
    assert await _kinds(client, admin, after["id"]) == ["hosting.recorded", "hosting.renamed"]
    # The Hub's later events name the new repository and update the same hosting.
    update = hf_payload(new, action="update", scope="repo.content")
    r = await hf_send(client, platform.slug, secret, update)
    assert r.status_code == 202, r.text
    assert [h["id"] for h in await platform_hostings(client, admin, platform.slug)] == [
        before["id"]
    ]


async def test_github_renamed_and_transferred_rename_the_hosting(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    secret = await new_secret(client, admin, platform.slug)
    first, second, third = f"gh-{uniq}/llm", f"gh-{uniq}/llm-2", f"gh-new-{uniq}/llm-2"
    created = {"action": "created", "repository": gh_repository(first)}
    r = await gh_send(client, platform.slug, secret, "repository", created)
    assert r.status_code == 202, r.text
    [before] = await platform_hostings(client, admin, platform.slug)

    renamed = {
        "action": "renamed",
        "changes": {"repository": {"name": {"from": "llm"}}},
        "repository": gh_repository(second),
    }
    r = await gh_send(client, platform.slug, secret, "repository", renamed)
    assert r.status_code == 202, r.text
    [after] = await platform_hostings(client, admin, platform.slug)
    assert (after["id"], after["name"], after["url"]) == (
        before["id"],
        second,
        f"https://github.com/{second}",
    )

    transferred = {
        "action": "transferred",
        "changes": {"owner": {"from": {"organization": {"login": f"gh-{uniq}", "id": 1}}}},
        "repository": gh_repository(third),
    }
    r = await gh_send(client, platform.slug, secret, "repository", transferred)
    assert r.status_code == 202, r.text
    [after] = await platform_hostings(client, admin, platform.slug)
    assert (after["id"], after["model"], after["name"], after["url"]) == (
        before["id"],
        first,
        third,
        f"https://github.com/{third}",
    )
    assert await _kinds(client, admin, after["id"]) == [
        "hosting.recorded",
        "hosting.renamed",
        "hosting.renamed",
    ]
    # A transfer from a user account says so under "user", and is followed the same way.
    back = {
        "action": "transferred",
        "changes": {"owner": {"from": {"user": {"login": f"gh-new-{uniq}", "id": 2}}}},
        "repository": gh_repository(f"gh-back-{uniq}/llm-2"),
    }
    r = await gh_send(client, platform.slug, secret, "repository", back)
    assert r.status_code == 202, r.text
    [after] = await platform_hostings(client, admin, platform.slug)
    assert after["name"] == f"gh-back-{uniq}/llm-2"
    # A delivery that does not say the old name is followed by the repository's id.
    bare = {"action": "renamed", "repository": gh_repository(f"gh-back-{uniq}/llm-3")}
    r = await gh_send(client, platform.slug, secret, "repository", bare)
    assert r.status_code == 202, r.text
    [after] = await platform_hostings(client, admin, platform.slug)
    assert (after["id"], after["name"]) == (before["id"], f"gh-back-{uniq}/llm-3")

    # A repository the registry never heard of, renamed: recorded under its new name, as
    # the hub's other events about an unknown repository would be.
    unknown = {
        "action": "renamed",
        "changes": {"repository": {"name": {"from": "other"}}},
        "repository": gh_repository(f"gh-{uniq}/other-2", id=99),
    }
    r = await gh_send(client, platform.slug, secret, "repository", unknown)
    assert r.status_code == 202, r.text
    names = {
        h["name"]: h["external_id"] for h in await platform_hostings(client, admin, platform.slug)
    }
    assert names == {f"gh-back-{uniq}/llm-3": "1296269", f"gh-{uniq}/other-2": "99"}


async def test_a_hosting_recorded_before_hostings_had_names_reads_back_as_of_then(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    """Ledger states written before the migration carry no ``name``: a point-in-time read
    of one names the hosting after its model, as it was named then."""
    secret = await new_secret(client, admin, platform.slug)
    model = f"org-{uniq}/legacy"
    assert (await deliver(client, platform.slug, secret, hosted(model))).status_code == 202
    [hosting] = await platform_hostings(client, admin, platform.slug)
    r = await client.get("/v1/events", params={"subject_id": hosting["id"]}, headers=admin)
    [recorded] = r.json()["items"]
    state = dict(recorded["payload"]["state"])
    del state["name"]
    # The event as the service wrote it before this release (the ledger is append-only).
    await conn.execute(
        "INSERT INTO events (stage, kind, subject_type, subject_id, model_id, platform_id, "
        "occurred_at, payload) VALUES ('prevent', 'hosting.updated', 'hosting', $1, $2, $3, "
        "now(), $4)",
        UUID(hosting["id"]),
        UUID(hosting["model_id"]),
        UUID(platform.id),
        {"state": state},
    )
    as_of = datetime.now(UTC).isoformat()
    r = await client.get(f"/v1/hostings/{hosting['id']}", params={"as_of": as_of}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["model"]) == (model, model)


async def test_an_auditors_grant_outlives_the_rename_and_shows_the_new_url(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    secret = await new_secret(client, admin, platform.slug)
    old, new = f"org-{uniq}/graded", f"org-{uniq}/graded-v2"
    r = await deliver(client, platform.slug, secret, hosted(old, external_id="g-1"))
    assert r.status_code == 202, r.text
    [hosting] = await platform_hostings(client, admin, platform.slug)
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
            "model": old,
            "components": ["weights"],
            "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    given = r.json()

    body = event("model.renamed", {"model": old, "name": new, "url": f"https://hub.example/{new}"})
    assert (await deliver(client, platform.slug, secret, body)).status_code == 202

    r = await client.get(f"/v1/audit-access/models/{hosting['model_id']}", headers=auditor)
    assert r.status_code == 200, r.text
    access = r.json()
    assert [g["id"] for g in access["grants"]] == [given["id"]]
    assert access["components"] == ["weights"]
    assert [(h["hosting_id"], h["url"]) for h in access["hostings"]] == [
        (hosting["id"], f"https://hub.example/{new}")
    ]


async def test_github_changes_of_other_shapes_are_no_reason_to_refuse(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    """``changes`` is read only for renames and transfers, and then only as documented."""
    secret = await new_secret(client, admin, platform.slug)
    name = f"gh-{uniq}/shapes"
    created = {"action": "created", "repository": gh_repository(name)}
    assert (await gh_send(client, platform.slug, secret, "repository", created)).status_code == 202
    edited = {
        "action": "edited",
        "changes": {"default_branch": {"from": "master"}, "owner": "not an object"},
        "repository": gh_repository(name),
    }
    r = await gh_send(client, platform.slug, secret, "repository", edited)
    assert (r.status_code, r.json()["events"]) == (202, [])
    odd = {
        "action": "transferred",
        "changes": {"owner": {"from": "someone"}},
        "repository": gh_repository(f"gh-new-{uniq}/shapes"),
    }
    r = await gh_send(client, platform.slug, secret, "repository", odd)
    assert r.status_code == 202, r.text
    [after] = await platform_hostings(client, admin, platform.slug)
    assert after["name"] == f"gh-new-{uniq}/shapes"
