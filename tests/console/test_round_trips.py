"""A console page reads the database a fixed number of times, however many records it
lists: one query per listed decision, or per notice, made the model, incident and platform
pages slow on a large registry. Counted at the database client, over real HTTP."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from service.app import create_app
from service.db.pool import init_connection
from service.domain.console_sessions import open_session
from service.settings import Settings
from tests.conftest import PlatformFixture, make_key, make_platform, register_model
from tests.console.test_signin import IDLE
from tests.helpers.notices import Receiver, add_endpoint, admin_headers, decide, host


class Counted:
    """A client of an app whose every database statement is counted."""

    def __init__(self) -> None:
        self.statements = 0
        self.client: httpx.AsyncClient

    def count(self, _query: object) -> None:
        self.statements += 1

    async def get(self, path: str) -> int:
        """The statements one GET of ``path`` ran (asserting it answered 200)."""
        before = self.statements
        r = await self.client.get(path, headers={"accept": "text/html"})
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        return self.statements - before


@pytest.fixture
async def counted(
    settings: Settings, database_url: str, pool: asyncpg.Pool
) -> AsyncIterator[Counted]:
    counter = Counted()

    async def init(conn: asyncpg.Connection) -> None:
        await init_connection(conn)
        conn.add_query_logger(counter.count)

    own = await asyncpg.create_pool(database_url, init=init, min_size=1, max_size=1)
    app = create_app(settings, pool=own)
    async with pool.acquire() as c:
        opened = await open_session(
            cast("asyncpg.Connection", c), api_key=await make_key(pool, "admin"), idle=IDLE
        )
    assert opened is not None
    transport = httpx.ASGITransport(app=cast("Any", app))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as http:
        http.cookies.set("rr_console", opened.cookie)
        counter.client = http
        yield counter
    await own.close()


async def test_pages_read_as_often_for_many_decisions_and_notices_as_for_one(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    quiet_endpoints: None,
    counted: Counted,
    uniq: str,
) -> None:
    second = await admin_headers(pool)
    model = await register_model(client, admin, f"org-{uniq}/trips")
    name = str(model["name"])
    await host(client, admin, name, platform)
    await add_endpoint(client, admin, receiver, platform)
    r = await client.post(
        "/v1/incidents",
        json={"title": "leaks data", "category": "privacy", "severity": "high", "models": [name]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    incident = r.json()["id"]
    pages = [
        f"/console/models/{model['id']}",
        f"/console/incidents/{incident}",
        f"/console/platforms/{platform.slug}",
    ]

    await decide(client, admin, second, name, notify=True)
    for path in pages:  # the client learns the column types on first use: not counted
        await counted.get(path)
    one = [await counted.get(path) for path in pages]
    for _ in range(3):
        await decide(client, admin, second, name, notify=True)
    four = [await counted.get(path) for path in pages]

    assert four == one, dict(zip(pages, zip(one, four, strict=True), strict=True))
    # The model page: the session; the model with its purls and its lineage (both
    # directions); hostings, incidents, audits, decisions (with their targets), history,
    # downloads; the pool's reset. The incident page and the platform view (the platform
    # found once; decisions with their targets) nine each.
    assert four[0] <= 9, four
    assert four[1] <= 9, four
    assert four[2] <= 9, four


async def test_the_model_page_as_of_walks_a_long_lineage_in_as_many_reads_as_a_short_one(
    client: httpx.AsyncClient, admin: dict[str, str], counted: Counted, uniq: str
) -> None:
    """The lineage as it stood: each ancestor's base as recorded then, however deep the
    chain, in one read; a base changed since does not show."""
    chain: list[dict[str, object]] = []
    for level in range(6):
        fields = {} if not chain else {"base_model": chain[-1]["name"], "derivation": "fine_tune"}
        chain.append(await register_model(client, admin, f"org-{uniq}/level-{level}", **fields))
    # One step below the root, with no descendant either.
    leaf = await register_model(
        client, admin, f"org-{uniq}/leaf", base_model=chain[0]["name"], derivation="fine_tune"
    )
    moment = datetime.now(UTC)
    await asyncio.sleep(0.01)
    # Since then, a model half-way up has the root for its base: the page as of then still
    # shows the levels that were between them.
    r = await client.patch(
        f"/v1/models/{chain[3]['id']}", json={"base_model": chain[0]["name"]}, headers=admin
    )
    assert r.status_code == 200, r.text

    def as_of(model: dict[str, object]) -> str:
        return f"/console/models/{model['id']}?as_of={quote(moment.isoformat())}"

    for model in (leaf, chain[-1]):  # the client learns the column types on first use
        await counted.get(as_of(model))
    short, long = await counted.get(as_of(leaf)), await counted.get(as_of(chain[-1]))
    assert long == short, (short, long)
    # The session; the model with its ancestors and descendants then; hostings and
    # incidents, each with its state then in the list's statement; audits, decisions,
    # history, downloads; the pool's reset.
    assert long <= 9, long

    def ancestors(html: str) -> list[tuple[str, str]]:
        listed = html.split('<ul id="lineage">', 1)[1].split("</ul>", 1)[0]
        found: list[tuple[str, str]] = re.findall(
            r'Ancestor \((\d+) steps? up\): <a href="/console/models/([^"]+)"', listed
        )
        return found

    then = await counted.client.get(as_of(chain[-1]), headers={"accept": "text/html"})
    assert ancestors(then.text) == [
        (str(depth), str(model["id"])) for depth, model in enumerate(reversed(chain[:-1]), 1)
    ]

    # Below the root, as of then: every level of the chain as it stood (and the leaf), each
    # by its base then, in the same statement as the walk; today one of them is a child.
    def descendants(html: str) -> list[tuple[str, str]]:
        listed = html.split('<ul id="lineage">', 1)[1].split("</ul>", 1)[0]
        found: list[tuple[str, str]] = re.findall(
            r'Descendant \((\d+) steps? down\): <a href="/console/models/([^"]+)"', listed
        )
        return found

    root = await counted.client.get(as_of(chain[0]), headers={"accept": "text/html"})
    assert sorted(descendants(root.text)) == sorted(
        [(str(depth), str(model["id"])) for depth, model in enumerate(chain[1:], 1)]
        + [("1", str(leaf["id"]))]
    )

    # The model itself as it stood: its base then, not today's; a model registered since
    # was not there to show.
    def base(html: str) -> str:
        return html.split("<dt>Base model</dt><dd>", 1)[1].split("</dd>", 1)[0]

    then = await counted.client.get(as_of(chain[3]), headers={"accept": "text/html"})
    assert base(then.text).startswith(f"{chain[2]['name']} "), base(then.text)
    today = await counted.client.get(
        f"/console/models/{chain[3]['id']}", headers={"accept": "text/html"}
    )
    assert base(today.text).startswith(f"{chain[0]['name']} "), base(today.text)
    later = await register_model(client, admin, f"org-{uniq}/later")
    r = await counted.client.get(as_of(later), headers={"accept": "text/html"})
    assert r.status_code == 404, r.status_code

    now = await counted.client.get(
        f"/console/models/{chain[-1]['id']}", headers={"accept": "text/html"}
    )
    assert ancestors(now.text) == [
        (str(depth), str(model["id"]))
        for depth, model in enumerate([chain[4], chain[3], chain[0]], 1)
    ]


async def test_the_dashboard_reads_as_often_for_more_platforms(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    counted: Counted,
    uniq: str,
) -> None:
    """The compliance dashboard breaks its figures down per platform in the same reads as
    the whole registry's, however many platforms there are."""
    model = await register_model(client, admin, f"org-{uniq}/everywhere")
    await counted.get("/console/compliance")  # the client learns the column types
    before = await counted.get("/console/compliance")
    for n in range(3):
        added = await make_platform(client, pool, admin, f"more-{n}-{uniq}")
        await host(client, admin, str(model["name"]), added)
    after = await counted.get("/console/compliance")
    assert after == before, (before, after)
    # The session; the snapshot's BEGIN and COMMIT; the period's report (the platforms in
    # scope, then one statement per kind of figure: five, its series counted in the
    # incidents' read), the previous period's figures (five); the pool's reset on release.
    assert after <= 15, after


async def test_an_admin_sees_the_platforms_own_hostings_on_its_view(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    counted: Counted,
    uniq: str,
) -> None:
    """The platform view lists the platform's hostings by the platform it found, in the
    reads it makes for one platform: none of another platform's."""
    other = await make_platform(client, pool, admin, f"elsewhere-{uniq}")
    mine = await register_model(client, admin, f"org-{uniq}/mine")
    theirs = await register_model(client, admin, f"org-{uniq}/theirs")
    await host(client, admin, str(mine["name"]), platform)
    await host(client, admin, str(theirs["name"]), other)
    r = await counted.client.get(
        f"/console/platforms/{platform.slug}", headers={"accept": "text/html"}
    )
    assert r.status_code == 200, r.text[:500]
    listed = r.text.split('id="h-hostings"', 1)[1].split('id="h-deliveries"', 1)[0]
    assert str(mine["name"]) in listed
    assert str(theirs["name"]) not in listed
