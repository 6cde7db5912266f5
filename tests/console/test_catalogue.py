"""The model page, the lists of models, hostings and platforms, and a platform's own view,
against records seeded through the API."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast
from urllib.parse import quote

import asyncpg
import httpx

from tests.conftest import PlatformFixture, bearer, make_key, make_platform, register_model
from tests.console.conftest import Browsing
from tests.helpers.audits import audit_body, grant, new_auditor
from tests.helpers.notices import drain


async def _hosting(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    model: str,
    downloads: int,
    **fields: object,
) -> dict[str, Any]:
    r = await client.post(
        "/v1/hostings",
        json={
            "model": model,
            "platform": platform.slug,
            "url": f"https://{platform.slug}.example/{model}",
            "downloads": downloads,
            **fields,
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return cast("dict[str, Any]", r.json())


async def _seed(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str], uniq: str
) -> dict[str, Any]:
    base = await register_model(client, admin, f"acme/base-{uniq}")
    model = await register_model(
        client, admin, f"acme/tuned-{uniq}", base_model=f"acme/base-{uniq}", derivation="fine_tune"
    )
    child = await register_model(
        client,
        admin,
        f"acme/tiny-{uniq}",
        base_model=f"acme/tuned-{uniq}",
        derivation="quantisation",
    )
    hub = await make_platform(client, pool, admin, f"hub-{uniq}")
    forge = await make_platform(client, pool, admin, f"forge-{uniq}")
    on_hub = await _hosting(
        client,
        admin,
        hub,
        f"acme/tuned-{uniq}",
        1000,
        documentation={"model_card": {"present": True, "url": "https://hub.example/card"}},
    )
    await _hosting(client, admin, forge, f"acme/tuned-{uniq}", 500)
    r = await client.patch(f"/v1/hostings/{on_hub['id']}", json={"downloads": 4000}, headers=admin)
    assert r.status_code == 200, r.text
    r = await client.post(
        "/v1/incidents",
        json={
            "title": f"Jailbreak {uniq}",
            "category": "misuse",
            "severity": "high",
            "models": [f"acme/tuned-{uniq}"],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return {
        "base": base,
        "model": model,
        "child": child,
        "hub": hub,
        "forge": forge,
        "incident": r.json(),
    }


async def test_the_model_page(
    tab: Browsing, pool: asyncpg.Pool, client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    seeded = await _seed(client, pool, admin, uniq)
    await tab.sign_in(await make_key(pool, "admin"))
    await tab.goto(f"/console/models/{seeded['model']['id']}")
    lineage = await tab.page.inner_text("#lineage")
    assert f"Ancestor (1 step up): acme/base-{uniq}" in lineage
    assert f"Descendant (1 step down): acme/tiny-{uniq}, quantisation" in lineage
    assert await tab.page.locator("svg rect.node").count() == 3
    hostings = await tab.page.inner_text("#hostings")
    assert f"hub-{uniq}" in hostings
    assert f"forge-{uniq}" in hostings
    assert "missing" in hostings
    # Downloads over time: 1,000 on the hub, then 500 more on the forge, then the hub at 4,000.
    totals = await tab.page.locator("#downloads tbody td:nth-child(2)").all_text_contents()
    assert totals == ["1,000", "1,500", "4,500"]
    assert seeded["incident"]["ref"] in await tab.page.inner_text("#model-incidents")
    history = await tab.page.inner_text("#history")
    assert "hosting.recorded" in history
    assert "incident.reported" in history
    await tab.check("model")

    await tab.page.get_by_label("Stage").select_option("detect")
    await tab.page.get_by_role("button", name="Filter").click()
    await tab.page.wait_for_url("**stage=detect**")
    history = await tab.page.inner_text("#history")
    assert "incident.reported" in history
    assert "hosting.recorded" not in history


async def test_the_lists_search(
    tab: Browsing, pool: asyncpg.Pool, client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    await _seed(client, pool, admin, uniq)
    await tab.sign_in(await make_key(pool, "regulator"))
    await tab.goto(f"/console/models?q={quote('acme/t')}")
    await tab.goto("/console/models")
    await tab.page.get_by_label("Name starts with").fill("acme/ti")
    await tab.page.get_by_role("button", name="Search").click()
    await tab.page.wait_for_url("**q=acme**")
    assert f"acme/tiny-{uniq}" in await tab.page.inner_text("main")
    await tab.check("models")

    await tab.goto(f"/console/hostings?platform=forge-{uniq}")
    rows = await tab.page.locator("#hostings tbody tr").all_inner_texts()
    assert len(rows) == 1
    assert f"forge-{uniq}" in rows[0]
    await tab.check("hostings")

    await tab.goto(f"/console/platforms?q=hub-{uniq}")
    text = await tab.page.inner_text("main")
    assert f"hub-{uniq}" in text
    assert f"forge-{uniq}" not in text
    await tab.check("platforms")


async def test_a_platform_sees_its_own_view_only(
    tab: Browsing, pool: asyncpg.Pool, client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    seeded = await _seed(client, pool, admin, uniq)
    hub: PlatformFixture = seeded["hub"]
    forged = await client.post(
        f"/v1/webhooks/{hub.slug}",
        content=b'{"type": "model.updated"}',
        headers={
            "content-type": "application/json",
            "webhook-id": f"forged-{uniq}",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1,AAAA",
        },
    )
    assert forged.status_code == 401, forged.text
    await tab.sign_in(await make_key(pool, "platform", platform=hub.slug))
    await tab.page.get_by_role("navigation").get_by_role("link", name="My platform").click()
    await tab.page.wait_for_url(f"**/console/platforms/{hub.slug}")
    hostings = await tab.page.inner_text("#hostings")
    assert f"hub-{uniq}" in hostings
    assert f"forge-{uniq}" not in hostings
    refused = tab.page.locator("#deliveries tbody tr", has_text=f"forged-{uniq}")
    assert "rejected" in await refused.inner_text()
    assert "no active signing secret" in await refused.inner_text()
    await tab.check("platform-view")

    # The model page shows the platform its own hostings only.
    await tab.goto(f"/console/models/{seeded['model']['id']}")
    assert f"forge-{uniq}" not in await tab.page.inner_text("#hostings")
    await tab.goto(f"/console/hostings?model={quote(f'acme/tuned-{uniq}')}")
    assert f"forge-{uniq}" not in await tab.page.inner_text("#hostings")

    tab.expected_statuses.add(404)
    assert await tab.goto(f"/console/platforms/forge-{uniq}") == 404
    # As through the API, another platform's hostings list nothing.
    assert await tab.goto(f"/console/hostings?platform=forge-{uniq}") == 200
    assert "No hosting." in await tab.page.inner_text("#hostings")


async def test_the_platform_view_shows_notices_with_attempts_and_what_to_confirm(
    tab: Browsing,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    seeded = await _seed(client, pool, admin, uniq)
    hub: PlatformFixture = seeded["hub"]
    # An endpoint nobody listens on: every attempt fails and is recorded.
    r = await client.post(
        f"/v1/platforms/{hub.slug}/endpoints",
        json={"url": f"http://127.0.0.1:9/hooks/{uniq}"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    endpoint_id = r.json()["endpoint"]["id"]
    try:
        # The approver exists before the proposal: four eyes refuse one created after it.
        second = bearer(await make_key(pool, "admin", name="second admin"))
        r = await client.post(
            "/v1/decommissions",
            json={"model": f"acme/tuned-{uniq}", "action": "recall", "reason": f"leaks {uniq}"},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        path = f"/v1/decommissions/{r.json()['id']}"
        assert (await client.post(f"{path}/approve", headers=second)).status_code == 200
        r = await client.post(f"{path}/notify", headers=admin)
        assert r.status_code == 200, r.text
        # One delivery round, as the service's worker would run it: the attempt fails.
        async with httpx.AsyncClient() as http:
            await drain(pool, http, lambda: True)

        await tab.sign_in(await make_key(pool, "platform", platform=hub.slug))
        deadline = time.monotonic() + 20
        while True:
            await tab.goto(f"/console/platforms/{hub.slug}")
            attempts = await tab.page.locator("#notices details li").all_text_contents()
            if any("no response" in a for a in attempts) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert any("no response" in a for a in attempts), attempts
        awaited = await tab.page.inner_text("#awaited")
        assert f"recall of acme/tuned-{uniq}: 1 hosting to confirm" in awaited
        await tab.check("platform-view-notices")
    finally:
        await conn.execute(
            "UPDATE notification_endpoints SET disabled_at = now(), "
            "disabled_reason = 'test over' WHERE id = $1",
            endpoint_id,
        )


async def test_the_model_page_as_of_shows_every_section_as_it_stood(
    tab: Browsing,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    seeded = await _seed(client, pool, admin, uniq)
    moment = await conn.fetchval("SELECT clock_timestamp()")
    await asyncio.sleep(0.05)
    # After the moment: a hosting on a third platform, the hub's count and card change, a
    # second incident, a new descendant, and a decision.
    depot = await make_platform(client, pool, admin, f"depot-{uniq}")
    await _hosting(client, admin, depot, f"acme/tuned-{uniq}", 7)
    hub_hosting = await conn.fetchval(
        "SELECT h.id FROM hostings h JOIN platforms p ON p.id = h.platform_id WHERE p.slug = $1",
        f"hub-{uniq}",
    )
    r = await client.patch(
        f"/v1/hostings/{hub_hosting}", json={"downloads": 9000, "licence": "mit"}, headers=admin
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        "/v1/incidents",
        json={
            "title": f"Later leak {uniq}",
            "category": "misuse",
            "severity": "low",
            "models": [f"acme/tuned-{uniq}"],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    later = r.json()
    await register_model(
        client, admin, f"acme/late-{uniq}", base_model=f"acme/tuned-{uniq}", derivation="merge"
    )
    r = await client.post(
        "/v1/decommissions",
        json={"model": f"acme/tuned-{uniq}", "action": "recall", "reason": f"later {uniq}"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    auditor = await new_auditor(pool)
    await grant(client, admin, auditor, f"acme/tuned-{uniq}", ["weights"])
    r = await client.post(
        "/v1/audits", json=audit_body(f"acme/tuned-{uniq}"), headers=auditor.headers
    )
    assert r.status_code == 201, r.text

    await tab.sign_in(await make_key(pool, "admin"))
    path = f"/console/models/{seeded['model']['id']}"
    # Today, every section shows what came after the moment.
    await tab.goto(path)
    assert f"depot-{uniq}" in await tab.page.inner_text("#hostings")
    assert "9,000" in await tab.page.inner_text("#hostings")
    assert later["ref"] in await tab.page.inner_text("#model-incidents")
    assert f"acme/late-{uniq}" in await tab.page.inner_text("#lineage")
    assert f"later {uniq}" in await tab.page.inner_text("#decisions")
    assert "red team audit" in await tab.page.inner_text("main")
    # The timeline names the fields each change changed: the hub's count and licence.
    changed = [
        set(line.removeprefix("Changed: ").split(", "))
        for line in (await tab.page.inner_text("#history")).splitlines()
        if line.startswith("Changed: ")
    ]
    assert any({"downloads", "licence"} <= fields for fields in changed), changed

    await tab.goto(f"{path}?as_of={quote(moment.isoformat())}")
    hostings = await tab.page.inner_text("#hostings")
    assert f"hub-{uniq}" in hostings
    assert f"forge-{uniq}" in hostings
    assert f"depot-{uniq}" not in hostings
    assert "4,000" in hostings
    assert "9,000" not in hostings
    assert "mit" not in hostings
    incidents = await tab.page.inner_text("#model-incidents")
    assert seeded["incident"]["ref"] in incidents
    assert later["ref"] not in incidents
    lineage = await tab.page.inner_text("#lineage")
    assert f"Ancestor (1 step up): acme/base-{uniq}" in lineage
    assert f"Descendant (1 step down): acme/tiny-{uniq}, quantisation" in lineage
    assert f"acme/late-{uniq}" not in lineage
    assert await tab.page.locator("svg rect.node").count() == 3
    assert f"later {uniq}" not in await tab.page.inner_text("#decisions")
    assert "red team audit" not in await tab.page.inner_text("main")
    totals = await tab.page.locator("#downloads tbody td:nth-child(2)").all_text_contents()
    assert totals == ["1,000", "1,500", "4,500"]
    await tab.check("model-as-of")


async def test_the_model_page_lists_its_package_urls(
    tab: Browsing, pool: asyncpg.Pool, client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    seeded = await _seed(client, pool, admin, uniq)
    path = f"/console/models/{seeded['model']['id']}"
    await tab.sign_in(await make_key(pool, "admin"))
    await tab.goto(path)
    assert "None" in await tab.page.inner_text("#purls")
    for fixture, purl_type in ((seeded["hub"], "huggingface"), (seeded["forge"], "github")):
        r = await client.patch(
            f"/v1/platforms/{fixture.slug}", json={"purl_type": purl_type}, headers=admin
        )
        assert r.status_code == 200, r.text
    await tab.goto(path)
    shown = await tab.page.locator("#purls li").all_inner_texts()
    assert shown == [f"pkg:github/acme/tuned-{uniq}", f"pkg:huggingface/acme/tuned-{uniq}"]
    await tab.check("model-purls")
    # A platform sees the purl of its own hosting only, as it sees its hostings.
    hub: PlatformFixture = seeded["hub"]
    await tab.sign_in(await make_key(pool, "platform", platform=hub.slug))
    await tab.goto(path)
    shown = await tab.page.locator("#purls li").all_inner_texts()
    assert shown == [f"pkg:huggingface/acme/tuned-{uniq}"]
