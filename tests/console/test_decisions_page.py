"""The decisions pages: an admin proposes a decision after seeing its impact, is refused
approving it, a second admin approves and notifies, and the confirmations per platform
show, the overdue one standing out; the CSAF advisory downloads; only admins get in."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import bearer, make_key, make_platform, register_model
from tests.console.conftest import Browsing
from tests.helpers.notices import confirm_target, host


async def test_propose_with_preview_four_eyes_notify_and_confirmations(
    tab: Browsing,
    other_tab: Browsing,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    tmp_path: Path,
) -> None:
    uniq = uuid.uuid4().hex[:8]
    hub = await make_platform(client, pool, admin, f"dec-hub-{uniq}")
    forge = await make_platform(client, pool, admin, f"dec-forge-{uniq}")
    model = f"dec-{uniq}/chat"
    await register_model(client, admin, model)
    await host(client, admin, model, hub)
    await host(client, admin, model, forge)
    # Both admins exist before the proposal, neither created by the other.
    proposer = await make_key(pool, "admin", name="proposer")
    approver = await make_key(pool, "admin", name="approver")

    await tab.sign_in(proposer)
    assert await tab.goto("/console/decisions") == 200
    await tab.check("decisions")
    await tab.page.get_by_role("link", name="Propose a decision").click()
    await tab.page.wait_for_load_state()
    # The form offers no way to propose before the impact is shown.
    assert await tab.page.get_by_role("button", name="Propose this decision").count() == 0
    await tab.check("decision-new")
    await tab.page.get_by_label("Model", exact=True).fill(model)
    await tab.page.get_by_label("Action").select_option("recall")
    await tab.page.get_by_label("Reason", exact=True).fill("leaks personal data")
    past = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    await tab.page.get_by_label("Platforms confirm by (UTC)").fill(past)
    await tab.page.get_by_role("button", name="Preview the impact").click()
    await tab.page.wait_for_load_state()
    summary = await tab.page.locator("#impact-summary").inner_text()
    assert summary.startswith(f"2 hostings of {model} on 2 platforms"), summary
    assert hub.slug in summary
    assert forge.slug in summary
    # The same impact as the API's preview of the same draft.
    r = await client.post(
        "/v1/decommissions/impact",
        json={"model": model, "action": "recall", "reason": "leaks personal data"},
        headers=admin,
    )
    assert r.json()["hostings"] == 2
    assert sorted(r.json()["notify"]) == sorted([hub.slug, forge.slug])
    await tab.check("decision-preview")
    await tab.page.get_by_role("button", name="Propose this decision").click()
    await tab.page.wait_for_load_state()
    assert "/console/decisions/" in tab.page.url
    decision_path = tab.page.url.removeprefix(tab.base_url)
    decision_id = decision_path.rsplit("/", 1)[-1]
    assert await tab.page.locator("#decision-status").inner_text() == "proposed"

    # The proposer may not approve: the domain's refusal is shown, nothing changes.
    tab.expected_statuses.add(403)
    await tab.page.get_by_role("button", name="Approve").click()
    await tab.page.wait_for_load_state()
    main = await tab.page.locator("main").inner_text()
    assert "a decision needs a second admin: its proposer may not approve it" in main
    await tab.check("decision-self-approval-refused")
    await tab.goto(decision_path)
    assert await tab.page.locator("#decision-status").inner_text() == "proposed"

    # A second admin, in another browser, approves and notifies.
    await other_tab.sign_in(approver)
    await other_tab.goto(decision_path)
    # The reach changes while the page is open (new download counts): the approval quotes
    # the impact the page showed, so it is refused and the page must be read again.
    r = await client.get("/v1/hostings", params={"platform": hub.slug}, headers=admin)
    [hosting] = r.json()["items"]
    r = await client.patch(f"/v1/hostings/{hosting['id']}", json={"downloads": 777}, headers=admin)
    assert r.status_code == 200, r.text
    other_tab.expected_statuses.add(409)
    await other_tab.page.get_by_role("button", name="Approve").click()
    await other_tab.page.wait_for_load_state()
    assert (
        "impact has changed since it was shown" in await other_tab.page.locator("main").inner_text()
    )
    await other_tab.goto(decision_path)
    assert await other_tab.page.locator("#decision-status").inner_text() == "proposed"
    assert "777" in await other_tab.page.locator("main").inner_text()
    await other_tab.page.get_by_role("button", name="Approve").click()
    await other_tab.page.wait_for_load_state()
    assert await other_tab.page.locator("#decision-status").inner_text() == "approved"
    assert "approver" in await other_tab.page.locator("#decision-approved").inner_text()
    await other_tab.page.get_by_role("button", name="Notify the platforms").click()
    await other_tab.page.wait_for_load_state()
    assert await other_tab.page.locator("#decision-status").inner_text() == "notified"
    # Only the legal steps remain as buttons.
    assert await other_tab.page.get_by_role("button", name="Approve").count() == 0
    assert await other_tab.page.get_by_role("button", name="Notify the platforms").count() == 0

    # One platform confirms; the other, past its deadline, stands out.
    decision = (await client.get(f"/v1/decommissions/{decision_id}", headers=admin)).json()
    target = next(t for t in decision["targets"] if t["platform"] == hub.slug)
    await confirm_target(pool, decision, target)
    await tab.goto(decision_path)
    assert await tab.page.locator("#confirmation-count").inner_text() == (
        "1 of 2 hostings confirmed."
    )
    hub_rows = tab.page.locator(f'table[data-platform="{hub.slug}"] tbody tr')
    assert "removed" in await hub_rows.inner_text()
    assert await hub_rows.get_attribute("class") is None
    forge_rows = tab.page.locator(f'table[data-platform="{forge.slug}"] tbody tr')
    assert await forge_rows.get_attribute("class") == "overdue"
    alert = await tab.page.locator("#overdue-alert").inner_text()
    assert f"{forge.slug} (overdue by " in alert
    assert hub.slug not in await tab.page.locator("#overdue-alert").inner_text()
    await tab.check("decision")
    await tab.goto("/console/decisions")
    overdue = await tab.page.locator("#overdue-confirmations").inner_text()
    assert forge.slug in overdue
    assert hub.slug not in overdue

    # The CSAF advisory is the API's.
    await tab.goto(decision_path)
    async with tab.page.expect_download() as info:
        await tab.page.get_by_role("link", name="Download the CSAF advisory").click()
    download = await info.value
    await download.save_as(tmp_path / "advisory.json")
    advisory = json.loads((tmp_path / "advisory.json").read_text())
    r = await client.get(f"/v1/exports/csaf/decisions/{decision_id}", headers=admin)
    assert advisory == r.json()

    # Withdrawn: the platforms are told, and no step is left.
    await tab.page.get_by_label("Reason for withdrawing").fill("superseded by a new decision")
    await tab.page.get_by_role("button", name="Withdraw").click()
    await tab.page.wait_for_load_state()
    assert await tab.page.locator("#decision-status").inner_text() == "withdrawn"
    assert await tab.page.get_by_role("button").filter(has_text="Withdraw").count() == 0


async def test_a_draft_the_api_refuses_is_refused_by_the_page(
    tab: Browsing, pool: asyncpg.Pool
) -> None:
    await tab.sign_in(await make_key(pool, "admin"))
    tab.expected_statuses.update({404, 422})
    await tab.goto("/console/decisions/new")
    await tab.page.get_by_label("Model", exact=True).fill(f"nobody/{uuid.uuid4().hex[:8]}")
    await tab.page.get_by_label("Reason", exact=True).fill("no such model")
    await tab.page.get_by_role("button", name="Preview the impact").click()
    await tab.page.wait_for_load_state()
    assert "is not registered" in await tab.page.locator("main").inner_text()


@pytest.mark.parametrize("role", ["auditor", "regulator", "platform"])
async def test_only_admins_reach_the_decisions_pages(
    role: str, tab: Browsing, client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    platform = None
    if role == "platform":
        platform = (await make_platform(client, pool, admin, f"decr-{uuid.uuid4().hex[:8]}")).slug
    model = f"decr-{uuid.uuid4().hex[:8]}/m"
    await register_model(client, admin, model)
    r = await client.post(
        "/v1/decommissions",
        json={"model": model, "action": "restrict", "reason": "r"},
        headers=bearer(await make_key(pool, "admin")),
    )
    assert r.status_code == 201, r.text
    await tab.sign_in(await make_key(pool, role, platform=platform))  # type: ignore[arg-type]
    tab.expected_statuses.add(403)
    assert "Decisions" not in await tab.page.locator("header").inner_text()
    for path in ("", "/new", f"/{r.json()['id']}", f"/{r.json()['id']}/csaf"):
        assert await tab.goto(f"/console/decisions{path}") == 403, path
