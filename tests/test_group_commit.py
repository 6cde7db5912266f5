"""Group commit: concurrent ``model.updated`` deliveries share one transaction.

Through the real app, many concurrent deliveries must come out exactly as if each had
been applied alone: one ledger event each, linked both ways to its stored delivery, and
every delivery the batch cannot take (a hosting it would create, a hosting named twice, a
repeat, a conflict, another platform's name) answered by the regular path as before. Then
the queue itself, driven with real connections and a real row lock to hold a batch open:
a request cancelled while it waits must not stall the ones behind it.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import httpx

from service.domain import intake
from service.domain.group_commit import GroupCommit, Lease
from service.schemas.webhooks import ModelUpdated, decode_message
from tests.conftest import PlatformFixture
from tests.helpers.webhooks import batch_counts, deliver, event, hosted_models


async def _hosted(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    prefix: str,
    count: int,
) -> tuple[str, list[str]]:
    """A signing secret for the platform, and ``count`` models it hosts."""
    names = [f"{prefix}{i}" for i in range(count)]
    secret = await hosted_models(client, admin, platform.slug, names)
    return secret, names


async def test_concurrent_updates_share_transactions_and_each_is_recorded_once(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    secret, names = await _hosted(client, admin, platform, f"org-{uniq}/g", 12)
    ids = [f"gc-{uniq}-{n}" for n in range(48)]
    bodies = [
        event("model.updated", {"model": names[n % len(names)], "revision": f"r{n}"})
        for n in range(48)
    ]
    count_before, total_before = batch_counts()
    responses = await asyncio.gather(
        *(
            deliver(client, platform.slug, secret, body, msg_id=msg_id)
            for msg_id, body in zip(ids, bodies, strict=True)
        )
    )
    assert [r.status_code for r in responses] == [202] * 48, [r.text for r in responses]
    count_after, total_after = batch_counts()
    # Some deliveries went in batches of more than one: fewer transactions than deliveries.
    assert total_after - total_before >= 2
    assert count_after - count_before < total_after - total_before

    seqs = [r.json()["events"] for r in responses]
    assert all(len(s) == 1 for s in seqs)
    rows = await conn.fetch(
        "SELECT e.seq, e.payload, d.delivery_id, d.events FROM events e "
        "JOIN webhook_deliveries d ON d.id = (e.payload->'delivery'->>'id')::uuid "
        "WHERE e.seq = ANY($1)",
        [s[0] for s in seqs],
    )
    assert len(rows) == 48
    by_delivery = {row["delivery_id"]: row for row in rows}
    for msg_id, n, ack in zip(ids, range(48), seqs, strict=True):
        row = by_delivery[msg_id]
        assert row["seq"] == ack[0]
        assert list(row["events"]) == ack
        assert row["payload"]["state"]["model"] == names[n % len(names)]
        assert row["payload"]["changes"]["revision"]["to"] == f"r{n}"
    # Each hosting ends at the revision of whichever of its deliveries committed last.
    final = await conn.fetch(
        "SELECT m.name, h.revision FROM hostings h JOIN models m ON m.id = h.model_id "
        "WHERE h.platform_id = $1",
        UUID(platform.id),
    )
    for row in final:
        mine = [r for r in rows if r["payload"]["state"]["model"] == row["name"]]
        newest = max(mine, key=lambda r: r["seq"])
        assert row["revision"] == newest["payload"]["state"]["revision"]


async def test_what_a_batch_cannot_take_is_answered_by_the_regular_path(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    secret, names = await _hosted(client, admin, platform, f"org-{uniq}/f", 8)
    first = event("model.updated", {"model": names[0], "revision": "first"})
    assert (
        await deliver(client, platform.slug, secret, first, msg_id=f"seen-{uniq}")
    ).status_code == 202

    cases = {
        "repeat": (first, f"seen-{uniq}", 200),
        "conflict": (
            event("model.updated", {"model": names[1], "revision": "other"}),
            f"seen-{uniq}",
            409,
        ),
        "new hosting": (
            event(
                "model.updated",
                {"model": f"org-{uniq}/new", "url": "https://hub.example/new", "revision": "n"},
            ),
            f"new-{uniq}",
            202,
        ),
        "unknown hosting": (
            event("model.updated", {"model": f"org-{uniq}/none", "revision": "n"}),
            f"none-{uniq}",
            422,
        ),
        "another platform": (
            event(
                "model.updated",
                {"model": names[2], "revision": "x", "platform": other_platform.slug},
            ),
            f"other-{uniq}",
            403,
        ),
    }
    filler = [
        (event("model.updated", {"model": names[n % 8], "revision": f"fill{n}"}), f"f{n}-{uniq}")
        for n in range(24)
    ]
    everything = [(body, msg_id) for body, msg_id, _ in cases.values()] + filler
    responses = await asyncio.gather(
        *(
            deliver(client, platform.slug, secret, body, msg_id=msg_id)
            for body, msg_id in everything
        )
    )
    for (label, (_, _, status)), r in zip(cases.items(), responses, strict=False):
        assert r.status_code == status, (label, r.text)
    assert all(r.status_code == 202 for r in responses[len(cases) :])
    repeat = responses[0].json()
    assert repeat["duplicate"] is True
    assert len(responses[2].json()["events"]) == 2  # the model, then the hosting
    r = await client.get("/v1/hostings", params={"platform": platform.slug}, headers=admin)
    assert f"org-{uniq}/new" in {h["model"] for h in r.json()["items"]}


def _delivery(
    platform_id: UUID, slug: str, msg_id: str, model: str, revision: str
) -> tuple[intake.Delivery, ModelUpdated]:
    body = event("model.updated", {"model": model, "revision": revision})
    message = decode_message(body)
    assert isinstance(message, ModelUpdated)
    delivery = intake.Delivery(
        platform_id=platform_id,
        platform_slug=slug,
        source="standard",
        delivery_id=msg_id,
        event_type="model.updated",
        body=body,
        headers={"content-type": "application/json"},
    )
    return delivery, message


_LOCK_ROW = (
    "SELECT 1 FROM hostings h JOIN models m ON m.id = h.model_id "
    "WHERE h.platform_id = $1 AND m.name = $2 FOR UPDATE OF h"
)


async def test_a_batch_that_fails_sends_every_member_to_the_regular_path(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    database_url: str,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    _, names = await _hosted(client, admin, platform, f"org-{uniq}/x", 3)
    platform_id = UUID(platform.id)
    queue = GroupCommit(in_flight=1)
    other = await asyncpg.connect(database_url)
    first_held, second_held = conn.transaction(), other.transaction()
    await first_held.start()
    await second_held.start()
    await conn.execute(_LOCK_ROW, platform_id, names[0])  # holds the first batch
    await other.execute(_LOCK_ROW, platform_id, names[1])  # holds the second
    leases = [Lease(pool, 5.0) for _ in range(3)]
    deliveries = [
        _delivery(platform_id, platform.slug, f"x{n}-{uniq}", names[n], f"rev{n}") for n in range(3)
    ]
    try:
        first = asyncio.create_task(queue.submit(leases[0], *deliveries[0]))
        await asyncio.sleep(0.2)
        second = asyncio.create_task(queue.submit(leases[1], *deliveries[1]))
        third = asyncio.create_task(queue.submit(leases[2], *deliveries[2]))
        await asyncio.sleep(0.05)
        await first_held.rollback()
        assert (await asyncio.wait_for(first, 10)) is not None
        await asyncio.sleep(0.2)  # the second batch (second and third) now waits for its row
        leader = await leases[1].get()
        await conn.execute("SELECT pg_terminate_backend($1)", leader.get_server_pid())
        outcomes = await asyncio.wait_for(asyncio.gather(second, third), 10)
    finally:
        if other.is_in_transaction():
            await second_held.rollback()
        await other.close()
        if conn.is_in_transaction():
            await first_held.rollback()
        for lease in leases:
            await lease.release()
    # Neither was acknowledged by the batch: each is left for the regular path.
    assert list(outcomes) == [None, None]
    stored = await conn.fetch(
        "SELECT delivery_id FROM webhook_deliveries WHERE platform_id = $1 "
        "AND delivery_id = ANY($2)",
        platform_id,
        [d.delivery_id for d, _ in deliveries],
    )
    assert [r["delivery_id"] for r in stored] == [f"x0-{uniq}"]


async def test_a_request_cancelled_in_the_queue_does_not_stall_the_rest(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    _, names = await _hosted(client, admin, platform, f"org-{uniq}/q", 4)
    platform_id = UUID(platform.id)
    queue = GroupCommit(in_flight=1)
    held = conn.transaction()
    await held.start()
    # Hold the first hosting's row, so the first batch waits inside its transaction.
    await conn.execute(
        "SELECT 1 FROM hostings h JOIN models m ON m.id = h.model_id "
        "WHERE h.platform_id = $1 AND m.name = $2 FOR UPDATE OF h",
        platform_id,
        names[0],
    )
    leases = [Lease(pool, 5.0) for _ in range(5)]
    others: list[object] = []

    async def take() -> object:
        return await pool.acquire(timeout=5)

    try:
        deliveries = [
            _delivery(platform_id, platform.slug, f"q{n}-{uniq}", names[n], f"rev{n}")
            for n in range(4)
        ]
        leader = asyncio.create_task(queue.submit(leases[0], *deliveries[0]))
        await asyncio.sleep(0.2)  # the leader's batch is now waiting for the row
        for n in (1, 2, 3):
            await leases[n].get()  # each request holds a connection when it arrives
        # Take the rest of the pool, and ask for one more: someone is now waiting.
        spare = pool.get_idle_size() + pool.get_max_size() - pool.get_size()
        others += [await take() for _ in range(spare)]
        wanting = asyncio.create_task(take())
        await asyncio.sleep(0.05)
        waiting = [asyncio.create_task(queue.submit(leases[n], *deliveries[n])) for n in (1, 2, 3)]
        # A request that queues gives its connection back: the one waiting gets it.
        others.append(await asyncio.wait_for(wanting, 5))
        waiting[0].cancel()
        await held.rollback()  # let the first batch go
        first = await asyncio.wait_for(leader, 10)
        rest = await asyncio.wait_for(asyncio.gather(*waiting[1:]), 10)
    finally:
        if conn.is_in_transaction():  # a failure before the row was let go
            await held.rollback()
        for other in others:
            await pool.release(other)  # type: ignore[arg-type]
        for lease in leases:
            await lease.release()
    assert waiting[0].cancelled()
    assert first is not None
    assert len(first.events) == 1
    assert all(ack is not None and len(ack.events) == 1 for ack in rest)
    stored = await conn.fetch(
        "SELECT delivery_id FROM webhook_deliveries WHERE platform_id = $1 "
        "AND delivery_id = ANY($2)",
        platform_id,
        [d.delivery_id for d, _ in deliveries],
    )
    # The cancelled request was never taken into a batch: only the other three were written.
    assert sorted(r["delivery_id"] for r in stored) == sorted(
        [f"q0-{uniq}", f"q2-{uniq}", f"q3-{uniq}"]
    )
    # And the queue is free again: a new delivery leads at once.
    try:
        again = await asyncio.wait_for(
            queue.submit(
                leases[4], *_delivery(platform_id, platform.slug, f"q4-{uniq}", names[1], "r4")
            ),
            10,
        )
    finally:
        await leases[4].release()
    assert again is not None
    assert len(again.events) == 1
