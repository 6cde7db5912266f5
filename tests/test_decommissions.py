"""Decommissioning decisions: four-eyes approval, workflow, lineage fan-out, late hostings,
confirmation and overdue platforms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import asyncpg
import httpx
import pytest

from service.domain.decommission_targets import (
    flag_new_hosting,
    flag_untargeted,
    list_overdue,
    record_confirmation,
)
from service.errors import Conflict, InvalidInput, NotFound
from tests.conftest import PlatformFixture, make_platform, register_model
from tests.helpers.notices import (
    Receiver,
    add_endpoint,
    admin_headers,
    confirm_target,
    decide,
    drain,
    host,
    propose,
    recall_hosted_model,
)


async def _events(client: httpx.AsyncClient, admin: dict[str, str], subject: str) -> list[str]:
    r = await client.get("/v1/events", params={"subject_id": subject}, headers=admin)
    assert r.status_code == 200, r.text
    return [e["kind"] for e in r.json()["items"] if e["stage"] == "respond"]


async def test_four_eyes_and_illegal_transitions(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    second = await admin_headers(pool)
    model = f"acme/foureyes-{uniq}"
    await register_model(client, admin, model)
    decision = await propose(client, admin, model, reason="leaks training data")
    path = f"/v1/decommissions/{decision['id']}"

    # Notifying before approval, or executing, is not a legal move.
    assert (await client.post(f"{path}/notify", headers=second)).status_code == 409
    # The proposer may not approve their own proposal: 403, since who asks is at fault.
    r = await client.post(f"{path}/approve", headers=admin)
    assert r.status_code == 403
    assert "second admin" in r.json()["detail"]
    # Nor may a platform.
    assert (await client.post(f"{path}/approve", headers=platform.headers)).status_code == 403
    r = await client.post(f"{path}/approve", headers=second)
    assert r.status_code == 200, r.text
    assert r.json()["approved_by"] != r.json()["proposed_by"]
    # Approving twice is a conflict with the state.
    assert (await client.post(f"{path}/approve", headers=second)).status_code == 409
    r = await client.post(f"{path}/withdraw", json={"reason": "superseded"}, headers=admin)
    assert r.status_code == 200
    assert (await client.post(f"{path}/notify", headers=admin)).status_code == 409
    r = await client.post(f"{path}/withdraw", json={"reason": "again"}, headers=admin)
    assert r.status_code == 409
    assert await _events(client, admin, decision["id"]) == [
        "decommission.proposed",
        "decommission.approved",
        "decommission.withdrawn",
    ]


async def test_rules_of_the_record(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    model = f"acme/rules-{uniq}"
    await register_model(client, admin, model)
    cases: list[tuple[dict[str, Any], int]] = [
        ({"action": "deprecate"}, 422),  # no sunset
        ({"action": "licence_change"}, 422),  # no new licence
        ({"action": "recall", "platforms": [f"nowhere-{uniq}"]}, 422),
        ({"action": "recall", "incident_ids": [str(UUID(int=1))]}, 422),
        ({"action": "recall", "successor_model": model}, 422),
        ({"action": "recall", "extra": 1}, 400),
    ]
    for fields, status in cases:
        r = await client.post(
            "/v1/decommissions",
            json={"model": model, "reason": "r", **fields},
            headers=admin,
        )
        assert r.status_code == status, (fields, r.text)
    sunset = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    r = await client.post(
        "/v1/decommissions",
        json={
            "model": model,
            "reason": "replaced",
            "action": "deprecate",
            "sunset_at": sunset,
            "revisions": ["v1", "v1"],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["revisions"] == ["v1"]


async def test_fan_out_to_every_platform_hosting_the_model_or_a_descendant(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    second = await admin_headers(pool)
    hubs = [await make_platform(client, pool, admin, f"fan{i}-{uniq}") for i in range(4)]
    base, child, grandchild = (f"acme/base-{uniq}", f"acme/child-{uniq}", f"acme/grand-{uniq}")
    await register_model(client, admin, base)
    await register_model(client, admin, child, base_model=base, derivation="fine_tune")
    await register_model(client, admin, grandchild, base_model=child, derivation="quantisation")
    unrelated = f"acme/other-{uniq}"
    await register_model(client, admin, unrelated)
    await host(client, admin, base, hubs[0])
    await host(client, admin, child, hubs[1])
    await host(client, admin, grandchild, hubs[2])
    await host(client, admin, unrelated, hubs[3])
    for hub in hubs:
        await add_endpoint(client, admin, receiver, hub)

    # Without derivatives: only the model's own host.
    narrow = await decide(client, admin, second, base, notify=False)
    assert {t["platform"] for t in narrow["targets"]} == {hubs[0].slug}
    await client.post(
        f"/v1/decommissions/{narrow['id']}/withdraw", json={"reason": "x"}, headers=admin
    )

    decision = await decide(client, admin, second, base, include_derivatives=True)
    by_platform = {t["platform"]: t for t in decision["targets"]}
    assert set(by_platform) == {hubs[0].slug, hubs[1].slug, hubs[2].slug}
    assert not by_platform[hubs[0].slug]["inherited"]
    assert by_platform[hubs[2].slug]["inherited"]
    assert by_platform[hubs[2].slug]["model"] == grandchild

    await drain(pool, http, lambda: len(receiver.delivered()) == 3)
    paths = sorted(h.path for h in receiver.delivered())
    assert paths == sorted(f"/hooks/{h.slug}" for h in hubs[:3])
    assert receiver.to(f"/hooks/{hubs[3].slug}") == []
    # Each platform is told about its own hostings only.
    for hit in receiver.delivered():
        assert hit.payload is not None
        slugs = {h["hosting_id"] for h in hit.payload["data"]["hostings"]}
        slug = hit.path.removeprefix("/hooks/")
        assert slugs == {by_platform[slug]["hosting_id"]}

    # A platform scope limits the fan-out.
    scoped = await decide(
        client, admin, second, child, include_derivatives=True, platforms=[hubs[2].slug]
    )
    assert [t["platform"] for t in scoped["targets"]] == [hubs[2].slug]


async def test_a_descendant_hosted_after_notification_is_flagged_at_once(
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
    base, child = f"acme/late-{uniq}", f"acme/late-child-{uniq}"
    await register_model(client, admin, base)
    await host(client, admin, base, platform)
    await add_endpoint(client, admin, receiver, platform)
    await add_endpoint(client, admin, receiver, other_platform)
    decision = await decide(client, admin, second, base, include_derivatives=True)
    await drain(pool, http, lambda: len(receiver.delivered()) == 1)

    await register_model(client, admin, child, base_model=base, derivation="adapter")
    # Recording the hosting flags it in the same transaction.
    hosting_id = await host(client, admin, child, other_platform)
    async with pool.acquire() as raw, raw.transaction():
        conn = cast("asyncpg.Connection", raw)
        # Flagging again, or the sweep, adds nothing more.
        model_id = await conn.fetchval(
            "SELECT model_id FROM hostings WHERE id = $1", UUID(hosting_id)
        )
        assert (
            await flag_new_hosting(
                conn, hosting_id=UUID(hosting_id), model_id=model_id, actor_id=None
            )
            == []
        )
        assert UUID(decision["id"]) not in await flag_untargeted(conn)

    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
    late = [t for t in r.json()["targets"] if t["late"]]
    assert [(t["hosting_id"], t["inherited"]) for t in late] == [(hosting_id, True)]
    await drain(pool, http, lambda: len(receiver.delivered()) == 2)
    hit = receiver.delivered(f"/hooks/{other_platform.slug}")[0]
    assert hit.payload is not None
    assert [h["hosting_id"] for h in hit.payload["data"]["hostings"]] == [hosting_id]
    assert hit.payload["data"]["hostings"][0]["late"] is True
    assert "decommission.target_added" in await _events(client, admin, decision["id"])


async def test_the_sweep_flags_a_late_hosting_however_it_was_recorded(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    second = await admin_headers(pool)
    base, other = f"acme/sweep-{uniq}", f"acme/sweep-other-{uniq}"
    await register_model(client, admin, base)
    await host(client, admin, base, platform)
    decision = await decide(client, admin, second, base, include_derivatives=True)
    # A model hosted before it was known to derive from the recalled one: the lineage edit
    # brings its hosting into scope without recording a hosting, and the sweep finds it.
    other_model = await register_model(client, admin, other)
    await host(client, admin, other, other_platform)
    r = await client.patch(
        f"/v1/models/{other_model['id']}", json={"base_model": base}, headers=admin
    )
    assert r.status_code == 200, r.text
    async with pool.acquire() as raw, raw.transaction():
        flagged = await flag_untargeted(cast("asyncpg.Connection", raw))
    assert UUID(decision["id"]) in flagged
    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
    assert {t["platform"]: t["late"] for t in r.json()["targets"]} == {
        platform.slug: False,
        other_platform.slug: True,
    }


async def test_confirmation_by_every_platform_closes_the_decision(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    second = await admin_headers(pool)
    base, child = f"acme/confirm-{uniq}", f"acme/confirm-child-{uniq}"
    await register_model(client, admin, base)
    await register_model(client, admin, child, base_model=base)
    await host(client, admin, base, platform)
    await host(client, admin, child, other_platform)
    decision = await decide(
        client, admin, second, base, include_derivatives=True, action="restrict"
    )
    decision_id = UUID(decision["id"])
    ids = {
        t["platform"]: (UUID(t["platform_id"]), UUID(t["model_id"])) for t in decision["targets"]
    }

    async def confirm(slug: str, **kw: Any) -> None:
        platform_id, model_id = ids[slug]
        async with pool.acquire() as raw, raw.transaction():
            await record_confirmation(
                cast("asyncpg.Connection", raw),
                decision_id=kw.pop("decision_id", decision_id),
                platform_id=kw.pop("platform_id", platform_id),
                model_id=kw.pop("model_id", model_id),
                outcome=kw.pop("outcome", "removed"),
                occurred_at=None,
                actor_id=None,
            )

    # Unknown decision, a platform or model out of scope, a bad outcome.
    for kw, error in (
        ({"decision_id": UUID(int=7)}, NotFound),
        ({"platform_id": ids[other_platform.slug][0]}, InvalidInput),
        ({"outcome": "ignored"}, InvalidInput),
    ):
        try:
            await confirm(platform.slug, **kw)
        except error:
            pass
        else:
            raise AssertionError(f"{kw} was accepted")

    await confirm(platform.slug)
    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
    assert r.json()["status"] == "notified"
    await confirm(platform.slug)  # repeated: changes nothing
    await confirm(other_platform.slug, outcome="restricted")
    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
    body = r.json()
    assert body["status"] == "executed"
    assert body["executed_at"] is not None
    assert {t["outcome"] for t in body["targets"]} == {"removed", "restricted"}
    assert await _events(client, admin, decision["id"]) == [
        "decommission.proposed",
        "decommission.approved",
        "decommission.notified",
        "decommission.confirmed",
        "decommission.confirmed",
        "decommission.executed",
    ]
    # Nothing moves an executed decision.
    r = await client.post(
        f"/v1/decommissions/{decision['id']}/withdraw", json={"reason": "x"}, headers=admin
    )
    assert r.status_code == 409


async def test_confirming_a_decision_not_yet_notified_is_a_conflict(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    decision = await recall_hosted_model(
        client, pool, admin, platform, f"acme/early-{uniq}", notify=False
    )
    target = decision["targets"][0]
    with pytest.raises(Conflict):
        await confirm_target(pool, decision, target)


async def test_overdue_platforms_are_listed_past_the_deadline(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    second = await admin_headers(pool)
    model = f"acme/overdue-{uniq}"
    await register_model(client, admin, model)
    await host(client, admin, model, platform)
    await host(client, admin, model, other_platform)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    decision = await decide(client, admin, second, model, confirm_by=past)
    future = await decide(
        client, admin, second, model, confirm_by=(datetime.now(UTC) + timedelta(days=1)).isoformat()
    )

    r = await client.get(
        "/v1/decommissions/overdue", params={"decision_id": decision["id"]}, headers=regulator
    )
    assert r.status_code == 200, r.text
    assert sorted(i["platform"] for i in r.json()["items"]) == sorted(
        [platform.slug, other_platform.slug]
    )
    assert all(i["overdue_seconds"] > 0 for i in r.json()["items"])
    r = await client.get(
        "/v1/decommissions/overdue", params={"decision_id": future["id"]}, headers=admin
    )
    assert r.json()["items"] == []
    # A platform sees only its own lapses.
    r = await client.get("/v1/decommissions/overdue", headers=platform.headers)
    assert {i["platform"] for i in r.json()["items"]} == {platform.slug}

    target = next(t for t in decision["targets"] if t["platform"] == platform.slug)
    await confirm_target(pool, decision, target)
    r = await client.get(
        "/v1/decommissions/overdue", params={"decision_id": decision["id"]}, headers=admin
    )
    assert [i["platform"] for i in r.json()["items"]] == [other_platform.slug]


async def test_platform_sees_only_notified_decisions_that_apply_to_it(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    second = await admin_headers(pool)
    model = f"acme/visible-{uniq}"
    pending = await recall_hosted_model(
        client, pool, admin, platform, model, approver=second, notify=False
    )
    assert (
        await client.get(f"/v1/decommissions/{pending['id']}", headers=platform.headers)
    ).status_code == 404
    notified = await decide(client, admin, second, model)
    assert (
        await client.get(f"/v1/decommissions/{notified['id']}", headers=platform.headers)
    ).status_code == 200
    r = await client.get(f"/v1/decommissions/{notified['id']}", headers=other_platform.headers)
    assert r.status_code == 404
    r = await client.get(
        "/v1/decommissions", params={"model_id": notified["model_id"]}, headers=platform.headers
    )
    assert [d["id"] for d in r.json()["items"]] == [notified["id"]]


async def test_a_recalled_model_hosted_again_after_execution_is_caught(
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
    base, child = f"acme/rehosted-{uniq}", f"acme/rehosted-child-{uniq}"
    await register_model(client, admin, base)
    await register_model(client, admin, child, base_model=base, derivation="fine_tune")
    await host(client, admin, base, platform)
    await add_endpoint(client, admin, receiver, other_platform)
    decision = await decide(client, admin, second, base, include_derivatives=True)
    await confirm_target(pool, decision, decision["targets"][0])
    path = f"/v1/decommissions/{decision['id']}"
    assert (await client.get(path, headers=admin)).json()["status"] == "executed"

    # Months later another platform hosts a fine-tune of the recalled model.
    hosting_id = await host(client, admin, child, other_platform)
    body = (await client.get(path, headers=admin)).json()
    assert body["status"] == "executed"
    late = [t for t in body["targets"] if t["late"]]
    assert [(t["hosting_id"], t["platform"], t["confirmed_at"]) for t in late] == [
        (hosting_id, other_platform.slug, None)
    ]
    # The platform is told, sees the decision, and is overdue until it confirms.
    await drain(pool, http, lambda: len(receiver.delivered()) == 1)
    hit = receiver.delivered(f"/hooks/{other_platform.slug}")[0]
    assert hit.payload is not None
    assert hit.payload["type"] == "decommission.notice"
    assert [h["hosting_id"] for h in hit.payload["data"]["hostings"]] == [hosting_id]
    assert (await client.get(path, headers=other_platform.headers)).status_code == 200
    later = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    async with pool.acquire() as raw:
        overdue = await list_overdue(
            cast("asyncpg.Connection", raw),
            now=datetime.fromisoformat(later),
            decision_id=UUID(decision["id"]),
        )
    assert [o.platform for o in overdue] == [other_platform.slug]

    assert len(await confirm_target(pool, decision, late[0], outcome="removed")) == 1
    body = (await client.get(path, headers=admin)).json()
    assert body["status"] == "executed"
    assert all(t["confirmed_at"] is not None for t in body["targets"])
    kinds = await _events(client, admin, decision["id"])
    assert kinds[-2:] == ["decommission.target_added", "decommission.confirmed"]

    # A withdrawn decision, by contrast, catches nothing.
    withdrawn = await decide(client, admin, second, child, notify=False)
    r = await client.post(
        f"/v1/decommissions/{withdrawn['id']}/withdraw", json={"reason": "x"}, headers=admin
    )
    assert r.status_code == 200
    await host(client, admin, child, platform)
    r = await client.get(f"/v1/decommissions/{withdrawn['id']}", headers=admin)
    assert r.json()["targets"] == withdrawn["targets"]


async def test_the_list_gives_each_decisions_targets_as_reading_it_alone_does(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    """A list reads its decisions' targets in the same statement as the decisions: each
    target (inherited or not, confirmed with its outcome or not) in the same order and
    with the same fields as ``GET /v1/decommissions/{id}`` gives them."""
    second = await admin_headers(pool)
    base, child = f"acme/listed-{uniq}", f"acme/listed-child-{uniq}"
    await register_model(client, admin, base)
    await register_model(client, admin, child, base_model=base, derivation="fine_tune")
    await host(client, admin, base, platform)
    await host(client, admin, child, other_platform)
    await host(client, admin, child, platform)
    first = await decide(client, admin, second, base, include_derivatives=True)
    target = next(t for t in first["targets"] if t["platform_id"] == str(other_platform.id))
    await confirm_target(pool, first, target)
    await decide(client, admin, second, base, notify=False)

    r = await client.get("/v1/decommissions", params={"model_id": first["model_id"]}, headers=admin)
    assert r.status_code == 200, r.text
    listed = r.json()["items"]
    assert len(listed) == 2
    for decision in listed:
        alone = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
        assert alone.status_code == 200, alone.text
        assert decision == alone.json()
    targets = next(d for d in listed if d["id"] == first["id"])["targets"]
    assert len(targets) == 3
    assert sum(t["inherited"] for t in targets) == 2
    confirmed = [t for t in targets if t["confirmed_at"] is not None]
    assert [(t["platform"], t["outcome"]) for t in confirmed] == [(other_platform.slug, "removed")]
