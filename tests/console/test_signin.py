"""Signing in to the console, signing out, form tokens, revocation and the idle timeout."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, cast

import asyncpg
import httpx
from litestar import Litestar

from service.domain.console_sessions import find_session, open_session
from tests.conftest import make_key
from tests.console.conftest import Browsing
from tests.live_service import LiveService

IDLE = timedelta(minutes=30)


async def _session_cookie(tab: Browsing) -> dict[str, Any]:
    cookies = await tab.page.context.cookies()
    found = [c for c in cookies if c["name"] == "rr_console"]
    assert len(found) == 1, cookies
    return cast("dict[str, Any]", found[0])


async def test_sign_in_returns_to_the_page_asked_for_and_sign_out_ends_it(
    tab: Browsing, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    key = await make_key(pool, "admin", name="Ada Triage")
    assert await tab.goto("/console") == 200
    assert "/console/sign-in?next=%2Fconsole" in tab.page.url
    await tab.check("sign-in")

    await tab.sign_in(key)
    assert tab.page.url == tab.url("/console")
    await tab.page.get_by_text("Signed in as").wait_for()
    assert "Ada Triage" in await tab.page.inner_text("main")
    await tab.check("home")

    cookie = await _session_cookie(tab)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/console"
    # Only a hash of the cookie is stored.
    stored = await conn.fetchval(
        "SELECT count(*) FROM console_sessions WHERE token_hash = sha256($1::text::bytea)",
        cookie["value"],
    )
    assert stored == 1

    await tab.page.get_by_role("button", name="Sign out").click()
    await tab.page.wait_for_url("**/console/sign-in")
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM console_sessions WHERE token_hash = sha256($1::text::bytea)",
            cookie["value"],
        )
        == 0
    )
    # The old cookie, replayed, opens nothing.
    async with httpx.AsyncClient(base_url=tab.base_url) as client:
        r = await client.get("/console", headers={"cookie": f"rr_console={cookie['value']}"})
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/sign-in")


async def test_a_wrong_key_is_refused_with_a_plain_message(
    tab: Browsing, pool: asyncpg.Pool
) -> None:
    tab.expected_statuses.add(401)
    await tab.goto("/console/sign-in")
    await tab.page.get_by_label("API key").fill("rr_0123456789abcdef_not-the-secret")
    await tab.page.get_by_role("button", name="Sign in").click()
    alert = tab.page.get_by_role("alert")
    await alert.wait_for()
    assert "not valid" in await alert.inner_text()
    assert not [c for c in await tab.page.context.cookies() if c["name"] == "rr_console"]
    await tab.check("sign-in-refused")


async def test_a_revoked_key_ends_its_sessions(
    tab: Browsing, pool: asyncpg.Pool, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    key = await make_key(pool, "auditor", name="to be revoked")
    await tab.sign_in(key)
    assert await tab.goto("/console") == 200
    listing = await client.get("/v1/keys", params={"role": "auditor", "limit": 200}, headers=admin)
    assert listing.status_code == 200, listing.text
    [mine] = [k for k in listing.json()["items"] if k["name"] == "to be revoked"]
    r = await client.delete(f"/v1/keys/{mine['id']}", headers=admin)
    assert r.status_code == 200, r.text

    await tab.goto("/console")
    assert "/console/sign-in" in tab.page.url


async def test_an_idle_session_ends(
    tab: Browsing, pool: asyncpg.Pool, conn: asyncpg.Connection
) -> None:
    await tab.sign_in(await make_key(pool, "regulator"))
    cookie = await _session_cookie(tab)
    await conn.execute(
        "UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes' "
        "WHERE token_hash = sha256($1::text::bytea)",
        cookie["value"],
    )
    await tab.goto("/console")
    assert "/console/sign-in" in tab.page.url


async def test_a_form_without_its_token_is_refused(
    tab: Browsing, pool: asyncpg.Pool, live: LiveService
) -> None:
    await tab.sign_in(await make_key(pool, "admin"))
    cookie = await _session_cookie(tab)
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        for forged in ({}, {"csrf_token": "guessed-" + "x" * 40}):
            r = await client.post(
                "/console/sign-out",
                data=forged,
                headers={"accept": "text/html", "cookie": f"rr_console={cookie['value']}"},
            )
            assert r.status_code == 403, r.text
            assert "form token" in r.text
    # The session survived the forged sign-out.
    assert await tab.goto("/console") == 200
    assert "/console/sign-in" not in tab.page.url


async def test_every_console_form_checks_its_token(app: Litestar, pool: asyncpg.Pool) -> None:
    """Each POST route of the console and the report form refuses a form without its
    token, from a signed-in sender, before doing anything."""
    posts = sorted(
        route.path
        for route in app.routes
        if (route.path.startswith(("/console", "/report")))
        and "POST" in getattr(route, "methods", set())
    )
    assert "/console/sign-in" in posts
    assert "/console/sign-out" in posts
    async with pool.acquire() as c:
        opened = await open_session(
            cast("asyncpg.Connection", c), api_key=await make_key(pool, "admin"), idle=IDLE
        )
    assert opened is not None
    transport = httpx.ASGITransport(app=cast("Any", app))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as client:
        # A form cookie the forged forms will not carry the value of.
        await client.get("/console/sign-in")
        await client.get("/report")
        client.cookies.set("rr_console", opened.cookie)
        for path in posts:
            concrete = re.sub(r"\{\w+:uuid\}", "00000000-0000-0000-0000-000000000000", path)
            r = await client.post(concrete, data={"anything": "x"})
            assert r.status_code == 403, (path, r.status_code, r.text)
    # Still signed in: the forged sign-out did nothing.
    async with pool.acquire() as c:
        found = await find_session(cast("asyncpg.Connection", c), cookie=opened.cookie, idle=IDLE)
    assert found is not None


async def test_the_session_cookie_is_secure_over_https(app: Litestar, pool: asyncpg.Pool) -> None:
    transport = httpx.ASGITransport(app=cast("Any", app))
    for scheme, secure in (("https", True), ("http", False)):
        async with httpx.AsyncClient(
            transport=transport, base_url=f"{scheme}://registry.test"
        ) as client:
            form = await client.get("/console/sign-in")
            token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            r = await client.post(
                "/console/sign-in",
                data={"csrf_token": token, "api_key": await make_key(pool, "auditor")},
            )
            assert r.status_code == 303, r.text
            cookie = r.headers["set-cookie"]
            assert cookie.startswith("rr_console=")
            assert "HttpOnly" in cookie
            assert "SameSite=strict" in cookie
            assert ("Secure" in cookie) is secure


async def test_any_replica_serves_a_session(
    tab: Browsing, pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    """Signed in on the live server, the same cookie opens the console on another app
    process (the in-process app here): the session lives in PostgreSQL, not in memory."""
    await tab.sign_in(await make_key(pool, "regulator", name="Replica Rita"))
    cookie = await _session_cookie(tab)
    client.cookies.set("rr_console", cookie["value"])
    r = await client.get("/console")
    assert r.status_code == 200, r.text
    assert "Replica Rita" in r.text
