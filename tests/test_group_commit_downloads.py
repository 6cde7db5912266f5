"""Download counts share group-commit transactions too, and a platform cannot tell.

Concurrent ``model.downloads`` deliveries, each naming several hostings the platform
records, are applied in shared transactions like the single-hosting events; each comes out
as on the regular path: the same answer (one event per changed count, in name order), the
same events linked both ways to the stored delivery. A batch naming a hosting twice or one
the platform does not record still takes the regular path, with its own answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
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


def _counts(pairs: list[tuple[str, int]]) -> bytes:
    return event("model.downloads", {"counts": [{"model": m, "downloads": n} for m, n in pairs]})


@pytest.fixture
async def unbatched(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(msgspec.structs.replace(settings, group_commit=False), pool=pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cast("Any", app)), base_url="http://registry.test"
    ) as c:
        yield c


async def _linked(conn: asyncpg.Connection, seqs: list[int]) -> list[tuple[Any, ...]]:
    """Each event's kind, hosting name, downloads and the delivery id and events it links."""
    rows = await conn.fetch(
        "SELECT e.seq, e.kind, e.payload, d.delivery_id, d.events FROM events e "
        "JOIN webhook_deliveries d ON d.id = (e.payload->'delivery'->>'id')::uuid "
        "WHERE e.seq = ANY($1) ORDER BY e.seq",
        seqs,
    )
    return [
        (
            row["seq"],
            row["kind"],
            row["payload"]["state"]["name"],
            row["payload"]["state"]["downloads"],
            row["delivery_id"],
            list(row["events"]),
        )
        for row in rows
    ]


async def test_concurrent_download_batches_share_transactions(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    names = [f"org-{uniq}/d{i:02d}" for i in range(40)]
    secret = await hosted_models(client, admin, platform.slug, names)
    # Twenty deliveries of two counts each, every hosting once, named out of order.
    plan = [
        (f"dl-{uniq}-{n}", [(names[2 * n + 1], 1000 + n), (names[2 * n], 2000 + n)])
        for n in range(20)
    ]
    count_before, total_before = batch_counts()
    responses = await asyncio.gather(
        *(deliver(client, platform.slug, secret, _counts(p), msg_id=i) for i, p in plan)
    )
    assert [r.status_code for r in responses] == [202] * 20, [r.text for r in responses]
    count_after, total_after = batch_counts()
    assert total_after - total_before == 20
    assert count_after - count_before < 20  # some batches took more than one

    for (msg_id, pairs), r in zip(plan, responses, strict=True):
        ack = r.json()
        assert (ack["delivery_id"], ack["duplicate"], len(ack["events"])) == (msg_id, False, 2)
        linked = await _linked(conn, ack["events"])
        # One event per count, in name order, each linked to this delivery and back.
        assert [(kind, name, downloads) for _, kind, name, downloads, _, _ in linked] == [
            ("hosting.updated", name, downloads) for name, downloads in sorted(pairs)
        ]
        assert {(d, tuple(events)) for *_, d, events in linked} == {(msg_id, tuple(ack["events"]))}
    stored = await conn.fetch(
        "SELECT name, downloads FROM hostings WHERE platform_id = $1", UUID(platform.id)
    )
    assert {row["name"]: row["downloads"] for row in stored} == {
        name: downloads for _, pairs in plan for name, downloads in pairs
    }


async def test_download_batches_read_the_same_batched_or_not(
    client: httpx.AsyncClient,
    unbatched: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    secret = await new_secret(client, admin, platform.slug)
    seen: dict[str, list[Any]] = {}
    for label, http in (("batched", client), ("regular", unbatched)):
        a, b, c = (f"org-{uniq}/{label}-{x}" for x in "abc")
        for name in (a, b, c):
            assert (await deliver(http, platform.slug, secret, hosted(name))).status_code == 202
        steps = [
            [(c, 5), (a, 7), (b, 9)],  # out of name order
            [(b, 9), (a, 8)],  # b unchanged: no event for it
            [(a, 1), (a.upper(), 2)],  # one hosting twice: two rounds, in order given
            [(b, 3), (f"org-{uniq}/{label}-none", 1)],  # unknown: refused whole
        ]
        outcomes: list[Any] = []
        for pairs in steps:
            r = await deliver(http, platform.slug, secret, _counts(pairs))
            if r.status_code != 202:
                outcomes.append((r.status_code, [e["key"] for e in r.json()["errors"]]))
                continue
            linked = await _linked(conn, r.json()["events"])
            outcomes.append(
                [(kind, name.rsplit("-", 1)[1], n, len(ev)) for _, kind, name, n, _, ev in linked]
            )
        seen[label] = outcomes
    assert seen["batched"] == seen["regular"]
    assert seen["batched"] == [
        [
            ("hosting.updated", "a", 7, 3),
            ("hosting.updated", "b", 9, 3),
            ("hosting.updated", "c", 5, 3),
        ],
        [("hosting.updated", "a", 8, 1)],
        [("hosting.updated", "a", 1, 2), ("hosting.updated", "a", 2, 2)],
        (422, ["data.counts[1].model"]),
    ]


async def test_a_batched_event_states_the_record_as_it_is_served(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    """A batch works each record's state out before writing it; the ledger event's state
    must be the record exactly as the API then serves it, times and documents included."""
    secret = await new_secret(client, admin, platform.slug)
    model = f"org-{uniq}/served"
    r = await deliver(client, platform.slug, secret, hosted(model))
    assert r.status_code == 202, r.text
    elsewhere = timezone(timedelta(hours=5, minutes=30))  # a sender's local time
    steps = [
        event("model.updated", {"model": model, "revision": "r2", "downloads": 11}),
        _counts([(model, 12)]),
        event("model.restricted", {"model": model, "reason": "licence"}),
        hosted(model, revision="r3", documentation={"model_card": {"present": True}}),
        event("model.updated", {"model": model, "downloads": 13}, at=datetime.now(elsewhere)),
        event("model.removed", {"model": model}),
    ]
    for body in steps:
        before, _ = batch_counts()
        r = await deliver(client, platform.slug, secret, body)
        assert r.status_code == 202, r.text
        assert batch_counts()[0] == before + 1  # it went through a batch
        [seq] = r.json()["events"]
        payload = await conn.fetchval("SELECT payload FROM events WHERE seq = $1", seq)
        state = payload["state"]
        served = await client.get(f"/v1/hostings/{state['id']}", headers=admin)
        assert served.status_code == 200, served.text
        assert served.json() == state
