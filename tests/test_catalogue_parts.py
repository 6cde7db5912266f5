"""A catalogue is applied in parts, each its own transaction: cut off midway, it is resumed by
sending the same delivery again, which applies only what did not commit; while one request
applies it, another with the same delivery is told so (409)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import asyncpg
import httpx
import msgspec
import pytest
from registry_kit import push_catalogue_async

from service.app import create_app
from service.domain import catalogue
from service.settings import Settings
from tests.conftest import PlatformFixture
from tests.helpers.catalogue import line, ndjson, push
from tests.helpers.webhooks import new_secret

# Six lines: with two parts, lines 2, 4, 6 are part 0 and lines 1, 3, 5 part 1.
LINES = 6


@pytest.fixture
async def secret(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture
) -> str:
    return await new_secret(client, admin, platform.slug)


def _models(uniq: str) -> list[str]:
    return [f"acme/part-{n}-{uniq}" for n in range(1, LINES + 1)]


def _body(uniq: str) -> bytes:
    models = _models(uniq)
    # Line 2's model is the base of line 5's: a base in part 0 for a line of part 1.
    return ndjson(
        [
            line(m, downloads=n, **({"base_model": models[1]} if n == 5 else {}))
            for n, m in enumerate(models, start=1)
        ]
    )


async def _hosted(conn: asyncpg.Connection, platform_id: str) -> set[str]:
    rows = await conn.fetch("SELECT name FROM hostings WHERE platform_id = $1", UUID(platform_id))
    return {r["name"] for r in rows}


async def _events(conn: asyncpg.Connection, platform_id: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT kind, payload->'state'->>'name' AS name FROM events WHERE platform_id = $1 "
        "AND (kind LIKE 'model.%' OR kind LIKE 'hosting.%') "
        "ORDER BY seq",
        UUID(platform_id),
    )
    return [(r["kind"], r["name"]) for r in rows]


async def _applying(client: httpx.AsyncClient) -> float:
    """``registry_catalogue_syncs_applying`` as ``/metrics`` gives it."""
    metrics = (await client.get("/metrics")).text
    line = next(
        x for x in metrics.splitlines() if x.startswith("registry_catalogue_syncs_applying ")
    )
    return float(line.split()[1])


async def _fail_hosting_of(conn: asyncpg.Connection, name: str) -> None:
    """Make recording the hosting of ``name`` fail as a deadlock would: that part's
    transaction rolls back, and the request answers 503 (send it again)."""
    await conn.execute(
        f"""
        CREATE FUNCTION pg_temp.fail_hosting() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'simulated deadlock' USING ERRCODE = '40P01'; END $$;
        CREATE TRIGGER fail_hosting BEFORE INSERT ON hostings FOR EACH ROW
          WHEN (NEW.name = '{name}') EXECUTE FUNCTION pg_temp.fail_hosting();
        """
    )


async def _cut_off(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    secret: str,
    conn: asyncpg.Connection,
    body: bytes,
    delivery: str,
    failing: str,
) -> httpx.Response:
    """Push the catalogue once, the hosting of ``failing`` failing (see ``_fail_hosting_of``):
    the answer."""
    await _fail_hosting_of(conn, failing)
    try:
        return await push(client, platform.slug, secret, body, msg_id=delivery)
    finally:
        await conn.execute("DROP TRIGGER fail_hosting ON hostings")


async def _half_applied(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    secret: str,
    conn: asyncpg.Connection,
    body: bytes,
    delivery: str,
    failing: str,
) -> UUID:
    """The catalogue cut off once (``_cut_off``), answered 503: its sync's id."""
    r = await _cut_off(client, platform, secret, conn, body, delivery, failing=failing)
    assert r.status_code == 503, r.text
    sync_id: UUID = await conn.fetchval(
        "SELECT id FROM catalogue_syncs WHERE delivery_id = $1", delivery
    )
    return sync_id


async def _lock_checks(conn: asyncpg.Connection, sync_id: UUID) -> None:
    """In ``conn``'s transaction, lock the row a resumed sync's checks must update."""
    await conn.execute(
        "SELECT 1 FROM catalogue_sync_parts WHERE sync_id = $1 AND part = -1 FOR UPDATE",
        sync_id,
    )


async def _held(pool: asyncpg.Pool) -> None:
    """Wait until a request resuming a sync is held at the row ``_lock_checks`` locked."""
    for _ in range(200):
        if await pool.fetchval(  # (not the locking connection: its view is frozen)
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%catalogue_sync_parts%'"
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the resumed sync never reached the locked row")


@pytest.mark.parametrize("failing_line", [4, 3], ids=["part 0 fails", "part 1 fails"])
async def test_a_sync_cut_off_midway_is_resumed_by_sending_it_again(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    secret: str,
    conn: asyncpg.Connection,
    uniq: str,
    failing_line: int,
) -> None:
    models = _models(uniq)
    body = _body(uniq)
    delivery = f"msg_parts_{uniq}"
    applying = await _applying(client)
    r = await _cut_off(
        client, platform, secret, conn, body, delivery, failing=models[failing_line - 1]
    )
    assert r.status_code == 503, r.text
    assert "send it again" in r.json()["detail"]

    # The part without the failing line committed; the other left nothing.
    failed_part = {n % 2 for n in (failing_line,)}
    applied = {m for n, m in enumerate(models, start=1) if n % 2 not in failed_part}
    assert await _hosted(conn, platform.id) == applied
    midway = await _events(conn, platform.id)
    assert sorted(n for k, n in midway if k == "hosting.recorded") == sorted(applied)
    state = await conn.fetchval(
        "SELECT state FROM catalogue_syncs WHERE delivery_id = $1", delivery
    )
    assert state == "applying"
    assert await _applying(client) == applying + 1  # the operators' gauge

    # Sent again: the rest is applied, nothing twice, and the summary counts the whole sync.
    r = await push(client, platform.slug, secret, body, msg_id=delivery)
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["duplicate"] is False
    assert (summary["added"], summary["registered"], summary["unchanged"]) == (LINES, LINES, 0)
    assert summary["events"] == 2 * LINES
    assert await _hosted(conn, platform.id) == set(models)
    events = await _events(conn, platform.id)
    assert events[: len(midway)] == midway
    assert sorted(events) == sorted(
        [("model.registered", m) for m in models] + [("hosting.recorded", m) for m in models]
    )
    base = await conn.fetchval(
        "SELECT b.name FROM models m JOIN models b ON b.id = m.base_model_id WHERE m.name = $1",
        models[4],
    )
    assert base == models[1]
    assert await _applying(client) == applying

    # Once applied, the same delivery is answered with that summary and writes nothing.
    again = await push(client, platform.slug, secret, body, msg_id=delivery)
    assert again.status_code == 200, again.text
    assert again.json() == {**summary, "duplicate": True}
    assert await _events(conn, platform.id) == events


async def test_a_sync_being_applied_is_409_for_the_same_delivery_sent_meanwhile(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    platform: PlatformFixture,
    secret: str,
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    models = _models(uniq)
    body = _body(uniq)
    delivery = f"msg_busy_{uniq}"
    sync_id = await _half_applied(client, platform, secret, conn, body, delivery, models[0])
    # The platform sends it again; while that request is held inside the sync (here by a
    # row it must update, locked by this test), the same delivery is sent once more.
    async with conn.transaction():
        await _lock_checks(conn, sync_id)
        first = asyncio.create_task(push(client, platform.slug, secret, body, msg_id=delivery))
        await _held(pool)
        second = await asyncio.wait_for(
            push(client, platform.slug, secret, body, msg_id=delivery), timeout=30
        )
        assert second.status_code == 409, second.text
        assert "being applied" in second.json()["detail"]
    done = await first
    assert done.status_code == 200, done.text
    assert done.json()["added"] == LINES
    assert await _hosted(conn, platform.id) == set(models)


@pytest.fixture
async def one_part(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The app applying a catalogue in one part."""
    app = create_app(msgspec.structs.replace(settings, catalogue_parts=1), pool=pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cast("Any", app)), base_url="http://registry.test"
    ) as c:
        yield c


async def test_one_part_applies_the_same_catalogue(
    one_part: httpx.AsyncClient,
    platform: PlatformFixture,
    secret: str,
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    r = await push(one_part, platform.slug, secret, _body(uniq))
    assert r.status_code == 200, r.text
    assert (r.json()["added"], r.json()["registered"], r.json()["events"]) == (
        LINES,
        LINES,
        2 * LINES,
    )
    parts = await conn.fetch(
        "SELECT part FROM catalogue_sync_parts WHERE sync_id = $1 ORDER BY part",
        UUID(r.json()["sync_id"]),
    )
    assert [p["part"] for p in parts] == [-1, 0]
    assert await _hosted(conn, platform.id) == set(_models(uniq))


async def test_parts_without_a_connection_of_their_own_run_in_turn(
    pool: asyncpg.Pool,
    platform: PlatformFixture,
    conn: asyncpg.Connection,
    uniq: str,
    tmp_path: Path,
) -> None:
    """Three parts and no other connection to lend: each part in turn on the sync's own,
    complete, with the platform's earlier hosting absent from it removed."""
    old = f"acme/old-{uniq}"

    def work(body: bytes, delivery: str) -> catalogue.Catalogue:
        path = tmp_path / f"{delivery}.ndjson"
        path.write_bytes(body)
        return catalogue.Catalogue(
            platform_id=UUID(platform.id),
            platform_slug=platform.slug,
            delivery_id=delivery,
            format="ndjson",
            path=path,
            body_sha256=hashlib.sha256(body).digest(),
            body_bytes=len(body),
            complete=True,
            all_or_nothing=False,
            occurred_at=datetime.now(UTC).replace(microsecond=0),
        )

    async with pool.acquire() as own:
        first = await catalogue.sync(
            cast("asyncpg.Connection", own),
            work(ndjson([line(old)]), f"msg_old_{uniq}"),
            helpers=[],
            parts=3,
            seconds=60,
        )
        assert first.added == 1
        summary = await catalogue.sync(
            cast("asyncpg.Connection", own),
            work(_body(uniq), f"msg_turns_{uniq}"),
            helpers=[],
            parts=3,
            seconds=60,
        )
    assert (summary.added, summary.registered, summary.removed) == (LINES, LINES, 1)
    parts = await conn.fetch(
        "SELECT part, added FROM catalogue_sync_parts WHERE sync_id = $1 ORDER BY part",
        summary.sync_id,
    )
    assert [(p["part"], p["added"]) for p in parts] == [(-1, 0), (0, 2), (1, 2), (2, 2)]
    rows = await conn.fetch(
        "SELECT name, status FROM hostings WHERE platform_id = $1", UUID(platform.id)
    )
    statuses = {r["name"]: r["status"] for r in rows}
    assert statuses == {**dict.fromkeys(_models(uniq), "hosted"), old: "removed"}


async def test_the_kit_waits_out_a_sync_still_being_applied(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    platform: PlatformFixture,
    secret: str,
    conn: asyncpg.Connection,
    uniq: str,
    tmp_path: Path,
) -> None:
    """The platform kit pushing a delivery another request is still applying: told 409 with
    Retry-After, it waits that long and sends it again, and gets the whole sync's summary."""
    models = _models(uniq)
    body = _body(uniq)
    delivery = f"msg_kit_{uniq}"
    sync_id = await _half_applied(client, platform, secret, conn, body, delivery, models[0])
    path = tmp_path / "catalogue.ndjson"
    path.write_bytes(body)
    waits: list[float] = []
    holder = conn.transaction()
    await holder.start()
    await _lock_checks(conn, sync_id)
    first = asyncio.create_task(push(client, platform.slug, secret, body, msg_id=delivery))
    await _held(pool)

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if not first.done():
            await holder.commit()  # the earlier request goes on, and answers
            await first

    summary = await push_catalogue_async(
        "http://registry.test",
        platform.slug,
        secret,
        path,
        delivery_id=delivery,
        client=client,
        sleep=sleep,
    )
    assert waits == [10.0]
    earlier = (await first).json()
    assert summary.duplicate is True
    assert (summary.added, summary.events) == (earlier["added"], earlier["events"])
    assert (summary.added, summary.events) == (LINES, 2 * LINES)
    assert await _hosted(conn, platform.id) == set(models)


async def test_lines_in_conflict_across_parts_are_rejected(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    secret: str,
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    """The checks see the whole catalogue: an external id given again, or a model named
    again in another case, on a line of the other part is rejected, not applied twice."""
    a, b, c = (f"acme/cross-{n}-{uniq}" for n in "abc")
    body = ndjson(
        [
            line(a, external_id=f"ext-{uniq}"),  # part 1
            line(b, external_id=f"ext-{uniq}"),  # part 0: the same external id
            line(c),  # part 1
            line(c.upper()),  # part 0: the same model
        ]
    )
    r = await push(client, platform.slug, secret, body)
    assert r.status_code == 200, r.text
    summary = r.json()
    assert [(x["line"], x["reason"]) for x in summary["rejected"]] == [
        (2, f"external_id ext-{uniq} is given on line 1 too"),
        (4, f"names {c.upper()} again (first on line 3)"),
    ]
    assert (summary["added"], summary["registered"]) == (2, 2)
    assert await _hosted(conn, platform.id) == {a, c}
