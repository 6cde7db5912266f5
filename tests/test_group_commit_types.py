"""Group commit takes every hosting event type, and a platform cannot tell.

Concurrent ``model.hosted`` (of a hosting the platform records), ``model.removed`` and
``model.restricted`` deliveries share transactions as ``model.updated`` ones do, and each
comes out exactly as on the regular path (group commit off): the same answer, the same
ledger event (kind, state, changes, the removal's reason), linked both ways to its stored
delivery. A ``model.hosted`` of a hosting not recorded yet still creates it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast
from uuid import UUID

import asyncpg
import httpx
import msgspec
import pytest

from service.app import create_app
from service.settings import Settings
from tests.conftest import PlatformFixture
from tests.helpers.webhooks import batch_counts, deliver, event, hosted, hosted_models, new_secret


def _status_change(kind: str, model: str, n: int) -> bytes:
    """The ``n``-th change of a kind that is not ``model.updated``."""
    if kind == "model.hosted":
        return hosted(model, revision=f"h{n}")
    return event(kind, {"model": model, "reason": f"report {n}"})


@pytest.fixture
async def unbatched(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(msgspec.structs.replace(settings, group_commit=False), pool=pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cast("Any", app)), base_url="http://registry.test"
    ) as c:
        yield c


async def _events(conn: asyncpg.Connection, seqs: list[int]) -> dict[int, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT e.seq, e.kind, e.payload, d.delivery_id, d.events FROM events e "
        "JOIN webhook_deliveries d ON d.id = (e.payload->'delivery'->>'id')::uuid "
        "WHERE e.seq = ANY($1)",
        seqs,
    )
    return {row["seq"]: row for row in rows}


async def test_concurrent_hosted_removed_and_restricted_share_transactions(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    names = [f"org-{uniq}/t{i}" for i in range(30)]
    secret = await hosted_models(client, admin, platform.slug, names)
    kinds = ["model.removed", "model.restricted", "model.hosted"]
    # Each hosting once, so that every delivery may join a batch.
    plan = [(kinds[n % 3], names[n], f"t-{uniq}-{n}") for n in range(30)]
    count_before, total_before = batch_counts()
    responses = await asyncio.gather(
        *(
            deliver(client, platform.slug, secret, _status_change(kind, name, n), msg_id=msg_id)
            for n, (kind, name, msg_id) in enumerate(plan)
        )
    )
    assert [r.status_code for r in responses] == [202] * 30, [r.text for r in responses]
    count_after, total_after = batch_counts()
    # All thirty went through batches, some of more than one: fewer transactions.
    assert total_after - total_before == 30
    assert count_after - count_before < 30

    acks = [r.json()["events"] for r in responses]
    assert all(len(a) == 1 for a in acks), acks
    rows = await _events(conn, [a[0] for a in acks])
    expected = {
        "model.removed": ("hosting.removed", "removed"),
        "model.restricted": ("hosting.restricted", "restricted"),
        "model.hosted": ("hosting.updated", "hosted"),
    }
    for n, ((kind, name, msg_id), ack) in enumerate(zip(plan, acks, strict=True)):
        row = rows[ack[0]]
        assert (row["delivery_id"], list(row["events"])) == (msg_id, ack)
        payload = row["payload"]
        assert (row["kind"], payload["state"]["status"]) == expected[kind]
        assert payload["state"]["model"] == name
        if kind == "model.hosted":
            assert payload["changes"]["revision"]["to"] == f"h{n}"
        else:
            assert payload["reason"] == f"report {n}"
            assert payload["changes"]["status"] == {"from": "hosted", "to": expected[kind][1]}


async def test_each_type_reads_the_same_batched_or_not(
    client: httpx.AsyncClient,
    unbatched: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    secret = await new_secret(client, admin, platform.slug)
    seen: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for label, http in (("batched", client), ("regular", unbatched)):
        model = f"org-{uniq}/{label}"
        steps = [
            hosted(model),  # created: the regular path on both
            event("model.restricted", {"model": model, "reason": "licence"}),
            event("model.removed", {"model": model}),
            hosted(model, revision="v2", licence="mit"),  # reinstated
            event("model.updated", {"model": model, "downloads": 7}),
            hosted(model, revision=None),  # re-announced: an explicit null clears
        ]
        outcomes = []
        for body in steps:
            r = await deliver(http, platform.slug, secret, body)
            assert r.status_code == 202, r.text
            [seq] = r.json()["events"][-1:]
            row = (await _events(conn, [seq]))[seq]
            payload = dict(row["payload"])
            payload.pop("delivery")
            state = dict(payload.pop("state"))
            changes = dict(payload.pop("changes", {}))
            for volatile in ("id", "model", "name", "url", "model_id", "created_at", "updated_at"):
                state.pop(volatile, None)
            for at in ("downloads_at",):  # a time: only whether one was set
                state[at] = state.get(at) is not None
                if at in changes:
                    changes[at] = changes[at]["to"] is not None
            outcomes.append((row["kind"], {**payload, "state": state, "changes": changes}))
        seen[label] = outcomes
    assert seen["batched"] == seen["regular"]
    kinds = [kind for kind, _ in seen["batched"]]
    assert kinds == [
        "hosting.recorded",
        "hosting.restricted",
        "hosting.removed",
        "hosting.reinstated",
        "hosting.updated",
        "hosting.updated",
    ]
    hostings = await conn.fetch(
        "SELECT revision, licence, status, downloads FROM hostings WHERE platform_id = $1 "
        "ORDER BY name",
        UUID(platform.id),
    )
    assert [tuple(h) for h in hostings] == [(None, "mit", "hosted", 7)] * 2


async def test_a_batched_revision_change_gives_the_model_its_new_purl(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    """A hub announcing new revisions of many models at once: each model is then found by
    the purl of its new revision, whether its delivery was batched or not."""
    r = await client.patch(
        f"/v1/platforms/{platform.slug}", json={"purl_type": "huggingface"}, headers=admin
    )
    assert r.status_code == 200, r.text
    names = [f"Org-{uniq}/m{i}" for i in range(20)]
    secret = await hosted_models(client, admin, platform.slug, names)
    count_before, _ = batch_counts()
    responses = await asyncio.gather(
        *(
            deliver(
                client,
                platform.slug,
                secret,
                event("model.updated", {"model": name, "revision": f"abc{n}"}),
            )
            for n, name in enumerate(names)
        )
    )
    assert [r.status_code for r in responses] == [202] * 20, [r.text for r in responses]
    count_after, _ = batch_counts()
    assert count_after - count_before < 20  # some shared a transaction
    for n, name in enumerate(names):
        r = await client.get(
            "/v1/models", params={"purl": f"pkg:huggingface/{name}@abc{n}"}, headers=admin
        )
        assert r.status_code == 200, r.text
        assert [m["name"] for m in r.json()["items"]] == [name]
        assert r.json()["items"][0]["purls"] == [f"pkg:huggingface/{name}@abc{n}"]
