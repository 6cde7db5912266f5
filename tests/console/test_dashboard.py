"""The compliance dashboard shows the API's figures for the same period, and only to
regulators and admins."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import bearer, make_key, make_platform, register_model
from tests.console.conftest import Browsing
from tests.helpers.compliance import pdf_text


def _figures(report: dict[str, Any]) -> dict[str, str]:
    """The report's figures under the names the page marks them with (``data-figure``)."""
    overall = report["overall"]
    prevent, current = overall["prevent"], overall["detect"]["current"]
    out: dict[str, Any] = {
        "prevent.models": prevent["models"],
        "prevent.downloads": prevent["downloads"],
        "deadlines.reported": current["reported"],
        "overdue.count": len(overall["respond"]["overdue_platforms"]),
        "decisions.proposed": overall["respond"]["proposed"],
        "watch.count": len(prevent["watch_list"]),
    }
    for m in prevent["watch_list"]:
        out[f"watch.{m['model']}.downloads"] = m["downloads"]
        out[f"watch.{m['model']}.share"] = m["share"]
        out[f"watch.{m['model']}.gaps"] = (
            ", ".join(g.replace("_", " ") for g in m["gaps"]) or "none"
        )
    categories = sorted(
        {c for w in report["series"]["incidents_per_week"] for c in w["by_category"]}
    )
    for w in report["series"]["incidents_per_week"]:
        for c in categories:
            out[f"week.{w['week']}.{c}"] = w["by_category"].get(c, 0)
    for b in report["series"]["time_to_triage"]:
        out[f"triage.{b['from_seconds']}"] = b["incidents"]
    for scope in report["platforms"]:
        slug = scope["platform"]
        out[f"platform.{slug}.hostings"] = scope["prevent"]["hostings"]
        out[f"platform.{slug}.reported"] = scope["detect"]["current"]["reported"]
        out[f"platform.{slug}.missed"] = scope["detect"]["current"]["deadlines"]["missed"]
        for name, share in scope["prevent"]["documentation"].items():
            out[f"platform.{slug}.{name}"] = share["share"]
    for name, share in prevent["documentation"].items():
        out[f"documentation.{name}.count"] = share["count"]
        out[f"documentation.{name}.share"] = share["share"]
        out[f"documentation.{name}.download_share"] = share["download_share"]
    for key, value in current["deadlines"].items():
        out[f"deadlines.{key}"] = value
    for key in ("time_to_triage", "time_to_mitigation", "time_to_close"):
        for q in ("p50_seconds", "p90_seconds"):
            out[f"{key}.{q}"] = current[key][q]
    for group in ("by_action", "by_status"):
        for key, value in overall["respond"][group].items():
            out[f"decisions.{group}.{key}"] = value
    for o in overall["respond"]["overdue_platforms"]:
        out[f"overdue.{o['platform']}.decisions"] = o["decisions"]
    return {k: "" if v is None else str(v) for k, v in out.items()}


async def _shown(tab: Browsing) -> dict[str, str]:
    """Each marked figure: its exact value (``data-value``) or else its text."""
    found: dict[str, str] = await tab.page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[data-figure]')].map(
             e => [e.dataset.figure, e.dataset.value ?? e.textContent.trim()]))"""
    )
    return found


async def test_the_dashboard_shows_the_api_figures_for_the_period(
    tab: Browsing,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    tmp_path: Path,
) -> None:
    uniq = uuid.uuid4().hex[:8]
    hub = await make_platform(client, pool, admin, f"dash-{uniq}")
    for i, (downloads, card, safety) in enumerate([(900, True, False), (100, False, True)]):
        name = f"dash-{uniq}/m{i}"
        await register_model(client, admin, name)
        r = await client.post(
            "/v1/hostings",
            json={
                "model": name,
                "platform": hub.slug,
                "url": f"https://{hub.slug}.example/{name}",
                "downloads": downloads,
                "documentation": {
                    "model_card": {"present": card},
                    "safety_testing": {"present": safety},
                },
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
    # Two serious incidents: one whose two-day Article 73 deadline has passed, one fresh.
    for days, widespread in [(5, True), (0, False)]:
        r = await client.post(
            "/v1/incidents",
            json={
                "title": f"dashboard {uniq} {days}",
                "category": "misuse",
                "severity": "high",
                "models": [f"dash-{uniq}/m0"],
                "aware_at": (datetime.now(UTC) - timedelta(days=days)).isoformat(),
                "serious": True,
                "serious_kind": "fundamental_rights",
                "widespread": widespread,
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
    today = datetime.now(UTC).date()
    since = today - timedelta(days=6)
    r = await client.get(
        "/v1/reports/compliance",
        params={"from": f"{since}T00:00:00Z", "to": f"{today + timedelta(days=1)}T00:00:00Z"},
        headers=bearer(await make_key(pool, "regulator")),
    )
    assert r.status_code == 200, r.text
    expected = _figures(r.json())
    assert expected["prevent.models"] != "0"
    assert int(expected["deadlines.serious"]) >= 2

    await tab.sign_in(await make_key(pool, "regulator"))
    assert await tab.goto(f"/console/compliance?from={since}&to={today}") == 200
    assert await _shown(tab) == expected
    # The chart's bars carry the same shares as the table.
    bars = await tab.page.eval_on_selector_all(
        "#docs-chart rect", "rs => rs.map(r => r.dataset.value)"
    )
    docs = r.json()["overall"]["prevent"]["documentation"]
    assert bars == [
        str(docs[n][k]) if docs[n][k] is not None else ""
        for n in ("model_card", "safety_testing", "risk_analysis", "use_guidance")
        for k in ("share", "download_share")
    ]
    await tab.check("compliance-dashboard")

    # Every figure's export link is the one the API names for it.
    links: dict[str, str] = await tab.page.eval_on_selector_all(
        "a[data-export]",
        "as => Object.fromEntries(as.map(a => [a.dataset.export, a.getAttribute('href')]))",
    )
    records = r.json()["overall"]["records"]
    assert "detect.current.deadlines.missed" in links
    assert links == {key: records[key]["export"] for key in links}
    # One of them, followed: the export returns the serious incidents the page counts.
    exported = await client.get(
        links["detect.current.deadlines.serious"] + "&format=jsonl",
        headers=bearer(await make_key(pool, "regulator")),
    )
    assert len(exported.content.splitlines()) == int(expected["deadlines.serious"])

    # The download button gives the same page printed by Chromium, figures included.
    async with tab.page.expect_download() as info:
        await tab.page.get_by_role("link", name="Download PDF").click()
    download = await info.value
    assert download.suggested_filename == f"compliance-{since}-to-{today}.pdf"
    saved = tmp_path / "dashboard.pdf"
    await download.save_as(saved)
    text = pdf_text(saved.read_bytes(), tmp_path)
    assert f"{expected['prevent.models']} models" in text
    rows = [" ".join(line.split()) for line in text.splitlines()]
    missed = next(line for line in rows if line.startswith("Deadline missed"))
    assert missed.split()[2] == expected["deadlines.missed"], missed
    assert "Download PDF" not in text

    # Printed, the page keeps its figures and charts and drops the navigation and the picker.
    await tab.page.emulate_media(media="print")
    assert not await tab.page.locator("header nav").is_visible()
    assert not await tab.page.get_by_role("button", name="Show").is_visible()
    assert await tab.page.locator("#docs-chart").is_visible()
    assert await _shown(tab) == expected
    await tab.page.emulate_media(media="screen")

    # The period picker: another period is another report.
    await tab.page.get_by_label("From", exact=True).fill(str(today - timedelta(days=400)))
    await tab.page.get_by_role("button", name="Show").click()
    await tab.page.wait_for_load_state()
    assert f"from={today - timedelta(days=400)}" in tab.page.url
    await tab.check("compliance-dashboard-long-period")
    # A period with nothing in it: empty charts and tables, still accessible.
    assert await tab.goto("/console/compliance?from=2000-01-01&to=2000-01-31") == 200
    assert await tab.page.locator("#watch-chart").count() == 0
    await tab.check("compliance-dashboard-empty")


@pytest.mark.parametrize("role", ["auditor", "platform"])
async def test_auditors_and_platforms_are_refused_the_dashboard(
    role: str, tab: Browsing, client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    platform = None
    if role == "platform":
        platform = (await make_platform(client, pool, admin, f"dash-{uuid.uuid4().hex[:8]}")).slug
    await tab.sign_in(await make_key(pool, role, platform=platform))  # type: ignore[arg-type]
    tab.expected_statuses.add(403)
    assert await tab.goto("/console/compliance") == 403
    assert "Compliance" not in await tab.page.locator("header").inner_text()


async def test_a_bad_period_is_refused_with_a_page(tab: Browsing, pool: asyncpg.Pool) -> None:
    await tab.sign_in(await make_key(pool, "admin"))
    tab.expected_statuses.update({400, 422})
    assert await tab.goto("/console/compliance?from=2026-02-30") == 400
    # The same status as the API gives a period that ends before it starts.
    assert await tab.goto("/console/compliance?from=2026-03-02&to=2026-03-01") == 422
    assert "'from' must not be after 'to'" in await tab.page.locator("main").inner_text()
    # The last representable day has no day after it to end the period: refused, not a 500.
    assert await tab.goto("/console/compliance?from=9999-12-01&to=9999-12-31") == 422
