"""Error pages: a browser on the console meets an HTML page (with the request id to quote)
for an unknown address and for an error no page foresaw; the API keeps answering problems."""

from __future__ import annotations

import asyncpg
import httpx

from tests.conftest import make_key
from tests.console.conftest import Browsing


async def test_an_unknown_console_address_is_a_page(tab: Browsing, pool: asyncpg.Pool) -> None:
    tab.expected_statuses.add(404)
    await tab.sign_in(await make_key(pool, "admin"))
    for path in ("/console/no-such-page", "/report/no-such-page"):
        response = await tab.page.goto(tab.url(path))
        assert response is not None
        assert response.status == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert "content-security-policy" in response.headers
        assert (await tab.page.inner_text("h1")).strip() == "Error 404"
        request_id = response.headers["x-request-id"]
        assert request_id in await tab.page.inner_text("main")
    await tab.check("error-unknown-address")
    assert tab.unexpected_errors() == []


async def test_an_unexpected_error_on_a_console_page_is_a_page(
    tab: Browsing, pool: asyncpg.Pool
) -> None:
    await tab.sign_in(await make_key(pool, "regulator"))
    tab.expected_statuses.add(503)
    # Another transaction holds the platforms table: the page's query runs out of time, an
    # error the page itself never handles.
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("LOCK TABLE platforms IN ACCESS EXCLUSIVE MODE")
        response = await tab.page.goto(tab.url("/console/platforms"))
    assert response is not None
    assert response.status == 503
    assert response.headers["content-type"].startswith("text/html")
    assert (await tab.page.inner_text("h1")).strip() == "Error 503"
    main = await tab.page.inner_text("main")
    assert "the database is not answering" in main
    assert response.headers["x-request-id"] in main
    await tab.check("error-unexpected")
    # Once the table is free again, so is the page.
    assert await tab.goto("/console/platforms") == 200


async def test_the_api_still_answers_problems_under_the_same_failures(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    html = {"accept": "text/html"}
    r = await client.get("/v1/no-such-resource", headers={**admin, **html})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    r = await client.get("/console/no-such-page")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
