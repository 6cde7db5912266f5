"""A catalogue sync racing another writer: the model another transaction registers while
the sync is registering the catalogue's models is the one the sync hosts, and the hosting
another transaction adds while the sync is adding the catalogue's is left to that writer;
neither is an error."""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import httpx

from tests.conftest import PlatformFixture
from tests.helpers.catalogue import line, ndjson, push
from tests.helpers.hostings import platform_hostings
from tests.helpers.webhooks import new_secret


async def _waiting_on_a_lock(conn: asyncpg.Connection, pid: int, table: str = "models") -> bool:
    """Whether a backend other than ``pid`` runs an INSERT into ``table`` that waits on a
    lock."""
    waiting = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE pid <> $1 AND wait_event_type = 'Lock'"
        " AND query LIKE $2",
        pid,
        f"%INSERT INTO {table} %",
    )
    return bool(waiting)


async def _push_past(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    rival: asyncpg.Connection,
    tx: asyncpg.transaction.Transaction,
    table: str,
    *,
    slug: str,
    secret: str,
    body: bytes,
) -> httpx.Response:
    """Push ``body`` while ``rival`` holds ``tx`` open; once the sync's INSERT into
    ``table`` waits on the rival, commit ``tx`` and return the sync's answer."""
    sync = asyncio.create_task(push(client, slug, secret, body))
    rival_pid = rival.get_server_pid()
    for _ in range(600):
        if sync.done() or await _waiting_on_a_lock(conn, rival_pid, table):
            break
        await asyncio.sleep(0.05)
    assert not sync.done(), (await sync).text
    await tx.commit()
    return await asyncio.wait_for(sync, 60)


async def test_a_model_registered_meanwhile_is_hosted_not_refused(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    conn: asyncpg.Connection,
    database_url: str,
    uniq: str,
) -> None:
    secret = await new_secret(client, admin, platform.slug)
    raced, other = f"race{uniq}/taken", f"race{uniq}/free"
    rival = await asyncpg.connect(database_url)
    try:
        # Another writer registers one of the catalogue's models and has not committed yet:
        # the sync's insert of the same name waits for it.
        tx = rival.transaction()
        await tx.start()
        taken = await rival.fetchval("INSERT INTO models (name) VALUES ($1) RETURNING id", raced)
        r = await _push_past(
            client,
            conn,
            rival,
            tx,
            "models",
            slug=platform.slug,
            secret=secret,
            body=ndjson([line(raced), line(other)]),
        )
    finally:
        await rival.close()
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["added"], s["registered"], s["events"]) == (2, 1, 3), s
    hosted = {h["name"]: h for h in await platform_hostings(client, admin, platform.slug)}
    assert str(hosted[raced]["model_id"]) == str(taken)
    registered = await conn.fetchval(
        "SELECT count(*) FROM models WHERE lower(name) IN (lower($1), lower($2))", raced, other
    )
    assert registered == 2


async def test_a_hosting_added_meanwhile_is_left_to_its_writer(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    conn: asyncpg.Connection,
    database_url: str,
    uniq: str,
) -> None:
    secret = await new_secret(client, admin, platform.slug)
    raced, other = f"race{uniq}/hosted", f"race{uniq}/new"
    rival = await asyncpg.connect(database_url)
    try:
        model_id = await rival.fetchval("INSERT INTO models (name) VALUES ($1) RETURNING id", raced)
        # Another writer adds the platform's hosting of a model the catalogue names and has
        # not committed yet: the sync finds the line new, and its insert waits for the writer.
        tx = rival.transaction()
        await tx.start()
        hosting_id = await rival.fetchval(
            "INSERT INTO hostings (model_id, platform_id, url, name) VALUES ($1, $2, $3, $4)"
            " RETURNING id",
            model_id,
            UUID(platform.id),
            f"https://hub.example/{raced}",
            raced,
        )
        r = await _push_past(
            client,
            conn,
            rival,
            tx,
            "hostings",
            slug=platform.slug,
            secret=secret,
            body=ndjson([line(raced, revision="r1"), line(other)]),
        )
    finally:
        await rival.close()
    assert r.status_code == 200, r.text
    s = r.json()
    # The other line's model registered and hosted; the raced hosting is the writer's.
    assert (s["added"], s["registered"], s["events"]) == (1, 1, 2), s
    hosted = {h["name"]: h for h in await platform_hostings(client, admin, platform.slug)}
    assert set(hosted) == {raced, other}
    assert str(hosted[raced]["id"]) == str(hosting_id)
    assert hosted[raced]["revision"] is None
    recorded = await conn.fetch(
        "SELECT subject_id FROM events WHERE kind = 'hosting.recorded' AND platform_id = $1",
        UUID(platform.id),
    )
    assert [str(r["subject_id"]) for r in recorded] == [str(hosted[other]["id"])]
