"""Incident aliases in the console: shown (linked to their databases), added from the incident
page by triage with the API's refusals, and searched for from the incidents list."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import quote

import asyncpg
import httpx

from tests.conftest import make_key, register_model
from tests.console.conftest import Browsing


async def _incident(
    client: httpx.AsyncClient, admin: dict[str, str], model: str, **fields: object
) -> dict[str, Any]:
    body = {"title": "t", "category": "malfunction", "severity": "medium", "models": [model]}
    r = await client.post("/v1/incidents", json={**body, **fields}, headers=admin)
    assert r.status_code == 201, r.text
    return cast("dict[str, Any]", r.json())


async def test_aliases_are_shown_added_with_the_apis_refusals_and_searched(
    tab: Browsing,
    other_tab: Browsing,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    number = int(uniq, 16) % 999_999_999 + 1
    aiid, cve = str(number), f"CVE-2026-{number:010d}"
    model = f"acme/aliases-{uniq}"
    await register_model(client, admin, model)
    known = await _incident(
        client,
        admin,
        model,
        title=f"Known elsewhere {uniq}",
        aliases=[{"scheme": "aiid", "value": f"AIID-{aiid}"}, {"scheme": "cve", "value": cve}],
    )
    fresh = await _incident(client, admin, model, title=f"Not yet {uniq}")
    await tab.sign_in(await make_key(pool, "admin", name="Alias Ada"))

    # Shown on the incident page, each linked to its database's page.
    await tab.goto(f"/console/incidents/{known['id']}")
    shown = tab.page.locator("#incident-aliases")
    assert await shown.get_by_role("link", name=aiid, exact=True).get_attribute("href") == (
        f"https://incidentdatabase.ai/cite/{aiid}"
    )
    assert await shown.get_by_role("link", name=cve).get_attribute("href") == (
        f"https://www.cve.org/CVERecord?id={cve}"
    )
    await tab.check("incident-aliases")

    # Added from the page with a plain form: kept in canonical form, AVID shown as text.
    avid = f"avid-2025-v{number % 1000:03d}"
    await tab.goto(f"/console/incidents/{fresh['id']}")
    assert (await shown.inner_text()).strip() == "None recorded."
    await tab.page.get_by_label("Database").select_option("avid")
    await tab.page.get_by_label("Identifier").fill(avid)
    await tab.page.get_by_role("button", name="Add the alias").click()
    await tab.page.wait_for_url(f"**/console/incidents/{fresh['id']}#aliases")
    assert (await shown.inner_text()).strip() == f"AVID: {avid.upper()}"
    assert await shown.get_by_role("link").count() == 0
    assert "incident.aliases_added" in await tab.page.inner_text("#timeline")
    event = await conn.fetchrow(
        "SELECT payload FROM events WHERE subject_id = $1 AND kind = 'incident.aliases_added'",
        fresh["id"],
    )
    assert event is not None
    r = await client.get(f"/v1/incidents/{fresh['id']}", headers=admin)
    assert r.json()["aliases"] == [{"scheme": "avid", "value": avid.upper()}]

    # An alias another incident holds: the API's 409, and nothing added.
    tab.expected_statuses.update({409, 422})
    await tab.page.get_by_label("Database").select_option("cve")
    await tab.page.get_by_label("Identifier").fill(cve.lower())
    async with tab.page.expect_navigation() as refused:
        await tab.page.get_by_role("button", name="Add the alias").click()
    response = await refused.value
    assert response is not None
    assert response.status == 409
    assert f"another incident already has the alias cve:{cve}" in await tab.page.inner_text(
        "[role=alert]"
    )
    await tab.check("incident-alias-refused")
    # Not its scheme's format: the API's 422, naming the format.
    await tab.goto(f"/console/incidents/{fresh['id']}")
    await tab.page.get_by_label("Database").select_option("cve")
    await tab.page.get_by_label("Identifier").fill("CVE-12")
    async with tab.page.expect_navigation() as refused:
        await tab.page.get_by_role("button", name="Add the alias").click()
    response = await refused.value
    assert response is not None
    assert response.status == 422
    assert "is not a CVE id such as" in await tab.page.inner_text("[role=alert]")
    r = await client.get(f"/v1/incidents/{fresh['id']}", headers=admin)
    assert r.json()["aliases"] == [{"scheme": "avid", "value": avid.upper()}]

    # The list finds an incident by any form of an alias, and only that one.
    await tab.goto(f"/console/incidents?model={quote(model)}")
    assert await tab.page.locator("#results tbody tr").count() == 2
    await tab.page.get_by_label("Alias").fill(f"AIID-{aiid}")
    await tab.page.get_by_label("Alias").press("Enter")
    await tab.page.wait_for_url("**alias=**")
    await tab.page.locator("#results tbody tr", has_text=known["ref"]).wait_for()
    assert await tab.page.locator("#results tbody tr").count() == 1
    await tab.goto(f"/console/incidents?alias={quote('avid:' + avid)}")
    assert await tab.page.locator("#results tbody td:first-child").all_inner_texts() == [
        fresh["ref"]
    ]
    await tab.check("incidents-by-alias")
    await tab.goto(f"/console/incidents?alias={quote('cve:CVE-2026-9' + aiid.zfill(9))}")
    assert (await tab.page.inner_text("#results tbody")).strip() == "No incident matches."
    assert await tab.goto("/console/incidents?alias=nonsense") == 422
    assert "is not an alias" in await tab.page.inner_text("[role=alert]")

    # Others who may read the incident see its aliases, and no form to add one.
    await other_tab.sign_in(await make_key(pool, "regulator"))
    await other_tab.goto(f"/console/incidents/{known['id']}")
    assert cve in await other_tab.page.inner_text("#incident-aliases")
    assert await other_tab.page.get_by_role("button", name="Add the alias").count() == 0
    # A form posted anyway is refused as the API refuses it (admins only), adding nothing.
    other_tab.expected_statuses.add(403)
    token = await other_tab.page.locator("input[name=csrf_token]").first.get_attribute("value")
    posted = await other_tab.page.request.post(
        other_tab.url(f"/console/incidents/{fresh['id']}/aliases"),
        form={"csrf_token": token or "", "scheme": "aiid", "value": str(number + 1)},
        headers={"Accept": "text/html"},
    )
    assert posted.status == 403
    r = await client.get(f"/v1/incidents/{fresh['id']}", headers=admin)
    assert r.json()["aliases"] == [{"scheme": "avid", "value": avid.upper()}]
