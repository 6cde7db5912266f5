"""The public report form and the reporter's status page, in a browser without JavaScript,
and their limits, which are the API's."""

from __future__ import annotations

from typing import Any, cast

import asyncpg
import httpx
from litestar import Litestar

from service.app import create_app
from service.settings import Settings, load_settings
from tests.conftest import register_model
from tests.console.conftest import Browsing


async def _fill_report(tab: Browsing, *, title: str, model: str) -> None:
    page = tab.page
    await page.get_by_label("What happened, in one line").fill(title)
    await page.get_by_label("Which model or models").fill(model)
    await page.get_by_label("Category").select_option("privacy")
    await page.get_by_label("Severity").select_option("high")
    await page.get_by_label("Description").fill("It repeats home addresses from its training set.")
    await page.get_by_label("Links to evidence").fill("https://example.org/evidence/1")
    await page.get_by_label("Email").fill("reporter@example.org")


async def test_report_follow_up_and_add_information_without_javascript(
    either_tab: Browsing,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    tab = either_tab
    model = f"acme/leaky-{uniq}"
    await register_model(client, admin, model)
    assert await tab.goto("/report") == 200
    await tab.check("report-form")
    await _fill_report(tab, title=f"Leaks addresses {uniq}", model=model)
    await tab.page.get_by_role("button", name="Send the report").click()
    await tab.page.get_by_text("Keep these two now.").wait_for()
    ref = (await tab.page.inner_text("#receipt-ref")).strip()
    token = (await tab.page.inner_text("#receipt-token")).strip()
    assert ref.startswith("RR-")
    assert token.startswith("rf_")
    await tab.check("report-receipt")

    row = await conn.fetchrow(
        "SELECT id, title, category, severity, channel FROM incidents WHERE ref = $1", ref
    )
    assert row is not None
    assert (row["title"], row["category"], row["severity"], row["channel"]) == (
        f"Leaks addresses {uniq}",
        "privacy",
        "high",
        "public",
    )
    incident_id = str(row["id"])
    # Staff see the incident but never the contact details.
    seen = await client.get(f"/v1/incidents/{incident_id}", headers=admin)
    assert "reporter@example.org" not in seen.text

    for body, shared in (("We are looking into it.", True), ("Private triage remark", False)):
        r = await client.post(
            f"/v1/incidents/{incident_id}/notes",
            json={"body": body, "share_with_reporter": shared},
            headers=admin,
        )
        assert r.status_code == 201, r.text

    await tab.goto("/report/status")
    await tab.check("report-lookup")
    await tab.page.get_by_label("Reference").fill(ref)
    await tab.page.get_by_label("Follow-up token").fill(token)
    await tab.page.get_by_role("button", name="Show my report").click()
    await tab.page.locator("#report-status").wait_for()
    assert (await tab.page.inner_text("#report-status")).strip() == "received"
    assert "reporter@example.org" in await tab.page.inner_text("#contact")
    notes = await tab.page.inner_text("#notes")
    assert "We are looking into it." in notes
    assert "Private triage remark" not in notes
    await tab.check("report-status")

    await tab.page.get_by_label("What you want to add").fill("It also leaks phone numbers.")
    await tab.page.get_by_role("button", name="Add to my report").click()
    await tab.page.get_by_text("Your information was added.").wait_for()
    assert "It also leaks phone numbers." in await tab.page.inner_text("#notes")
    r = await client.get(f"/v1/incidents/{incident_id}/notes", headers=admin)
    assert [n["author"] for n in r.json()["items"]].count("reporter") == 1


async def test_a_refused_report_says_why_and_writes_nothing(
    either_tab: Browsing, conn: asyncpg.Connection, uniq: str
) -> None:
    tab = either_tab
    tab.expected_statuses.update({400, 422})
    await tab.goto("/report")
    await _fill_report(tab, title=f"Bad model name {uniq}", model="not a model name")
    await tab.page.get_by_role("button", name="Send the report").click()
    alert = tab.page.get_by_role("alert")
    await alert.wait_for()
    assert "models" in await alert.inner_text()
    # What was typed is kept.
    assert await tab.page.get_by_label("What happened, in one line").input_value() == (
        f"Bad model name {uniq}"
    )
    await tab.check("report-form-refused")

    # Serious without its kind: a rule of the domain (422), checked by the same function.
    await _fill_report(tab, title=f"Serious without kind {uniq}", model=f"acme/x-{uniq}")
    await tab.page.get_by_label("This is a serious incident").check()
    await tab.page.get_by_role("button", name="Send the report").click()
    await tab.page.get_by_role("alert").wait_for()
    assert "serious_kind" in await tab.page.inner_text("main")
    written = await conn.fetchval("SELECT count(*) FROM incidents WHERE title LIKE '%' || $1", uniq)
    assert written == 0


async def test_a_wrong_token_shows_nothing(either_tab: Browsing) -> None:
    tab = either_tab
    tab.expected_statuses.add(404)
    await tab.goto("/report/status")
    await tab.page.get_by_label("Reference").fill("RR-2026-000000")
    await tab.page.get_by_label("Follow-up token").fill("rf_guess")
    await tab.page.get_by_role("button", name="Show my report").click()
    alert = tab.page.get_by_role("alert")
    await alert.wait_for()
    assert "no report with that reference and token" in await alert.inner_text()


def _limited(settings: Settings, **overrides: object) -> Settings:
    return load_settings({}, database_url=settings.database_url, **overrides)


def _form_client(app: Litestar) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=cast("Any", app))
    return httpx.AsyncClient(transport=transport, base_url="http://registry.test")


async def test_the_form_shares_the_api_rate_limit(
    settings: Settings, pool: asyncpg.Pool, uniq: str
) -> None:
    app = create_app(_limited(settings, public_rate_limit=3), pool=pool)
    async with _form_client(app) as client:
        token = (await client.get("/report")).cookies["rr_form"]
        form = {"csrf_token": token, "title": f"rate {uniq}", "category": "other", "models": "a/b"}
        assert (await client.post("/report", data=form)).status_code == 201
        api = {"title": f"rate {uniq}", "category": "other", "models": ["a/b"]}
        assert (await client.post("/v1/reports", json=api)).status_code == 201
        assert (await client.post("/report", data=form)).status_code == 201
        r = await client.post("/report", data=form, headers={"accept": "text/html"})
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert "too many reports" in r.text
        assert (await client.post("/v1/reports", json=api)).status_code == 429


async def test_the_form_has_the_api_size_limit(
    settings: Settings, pool: asyncpg.Pool, conn: asyncpg.Connection, uniq: str
) -> None:
    app = create_app(_limited(settings, public_max_body_bytes=2048), pool=pool)
    async with _form_client(app) as client:
        token = (await client.get("/report")).cookies["rr_form"]
        form = {
            "csrf_token": token,
            "title": f"size {uniq}",
            "category": "other",
            "models": "a/b",
            "description": "x" * 3000,
        }
        r = await client.post("/report", data=form)
        assert r.status_code == 413
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (
        await conn.fetchval("SELECT count(*) FROM incidents WHERE title = $1", f"size {uniq}") == 0
    )
