"""The triage queue and the incident page, against incidents seeded through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import quote
from uuid import UUID

import asyncpg
import httpx

from tests.conftest import make_key, make_platform, register_model
from tests.console.conftest import Browsing


async def _incident(
    client: httpx.AsyncClient, admin: dict[str, str], model: str, **fields: object
) -> dict[str, Any]:
    body = {"title": "t", "category": "malfunction", "severity": "medium", "models": [model]}
    r = await client.post("/v1/incidents", json={**body, **fields}, headers=admin)
    assert r.status_code == 201, r.text
    return cast("dict[str, Any]", r.json())


async def _admin_principal(conn: asyncpg.Connection, key: str) -> Any:
    lookup = key.split("_")[1]
    return await conn.fetchval("SELECT principal_id FROM api_keys WHERE lookup = $1", lookup)


async def test_the_queue_filters_by_url_and_marks_the_overdue(
    tab: Browsing, pool: asyncpg.Pool, client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    model = f"acme/queue-{uniq}"
    await register_model(client, admin, model)
    aware = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    late = await _incident(
        client,
        admin,
        model,
        title=f"Overdue serious {uniq}",
        severity="critical",
        serious=True,
        serious_kind="fundamental_rights",
        aware_at=aware,
    )
    calm = await _incident(client, admin, model, title=f"Calm one {uniq}", severity="low")
    await tab.sign_in(await make_key(pool, "admin"))

    await tab.goto(f"/console/incidents?model={quote(model)}")
    rows = tab.page.locator("#results tbody tr")
    assert await rows.count() == 2
    overdue_row = tab.page.locator("tr.is-overdue")
    assert await overdue_row.count() == 1
    assert late["ref"] in await overdue_row.inner_text()
    assert "overdue by" in await overdue_row.inner_text()
    await tab.check("triage-queue")

    # Filtering in the page changes the address; the address alone reproduces the filter.
    await tab.page.get_by_label("Severity").select_option("low")
    await tab.page.wait_for_url("**severity=low**")
    await tab.page.locator("#results tbody tr", has_text=calm["ref"]).wait_for()
    assert await rows.count() == 1
    shared = tab.page.url
    await tab.goto(shared.removeprefix(tab.base_url))
    assert await tab.page.locator("#results tbody tr").count() == 1
    assert calm["ref"] in await tab.page.inner_text("#results")

    await tab.goto(f"/console/incidents?model={quote(model)}&overdue=yes")
    assert await tab.page.locator("#results tbody tr").count() == 1
    await tab.goto(f"/console/incidents?q={quote('CALM ONE ' + uniq)}")
    assert await tab.page.locator("#results tbody tr").count() == 1
    assert calm["ref"] in await tab.page.inner_text("#results")

    # Newest first, one page at a time: the keyset follows the order.
    third = await _incident(client, admin, model, title=f"Third {uniq}")
    refs = [late["ref"], calm["ref"], third["ref"]]
    await tab.goto(f"/console/incidents?model={quote(model)}&sort=newest")
    shown = await tab.page.locator("#results tbody td:first-child").all_inner_texts()
    assert shown == refs[::-1]

    tab.expected_statuses.add(400)
    assert await tab.goto("/console/incidents?severity=apocalyptic") == 400


async def test_a_triage_move_made_in_the_page_lands_in_the_ledger(
    tab: Browsing,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    model = f"acme/move-{uniq}"
    await register_model(client, admin, model)
    incident = await _incident(client, admin, model, title=f"Move me {uniq}")
    before_move = datetime.now(UTC)
    key = await make_key(pool, "admin", name="Triage Tess")
    await tab.sign_in(key)
    await tab.goto(f"/console/incidents/{incident['id']}")
    moves = tab.page.locator("#moves button")
    assert sorted(await moves.all_inner_texts()) == ["Mark triaged", "Reject"]
    await tab.check("incident")

    await tab.page.get_by_role("button", name="Mark triaged").click()
    await tab.page.wait_for_load_state()
    assert (await tab.page.inner_text("#incident-status")).strip() == "triaged"
    # Only the legal moves from "triaged" are offered now.
    assert sorted(await moves.all_inner_texts()) == ["Mark investigating", "Reject"]
    timeline = await tab.page.inner_text("#timeline")
    assert "incident.triaged" in timeline
    assert "by Triage Tess (admin)" in timeline

    event = await conn.fetchrow(
        "SELECT actor_id, stage FROM events WHERE subject_id = $1 AND kind = 'incident.triaged'",
        incident["id"],
    )
    assert event is not None
    assert event["actor_id"] == await _admin_principal(conn, key)
    assert event["stage"] == "detect"

    # As of a moment before the move, the page shows the incident as it stood.
    await tab.goto(f"/console/incidents/{incident['id']}?as_of={quote(before_move.isoformat())}")
    assert (await tab.page.inner_text("#incident-status")).strip() == "received"
    assert await tab.page.locator("#moves").count() == 0
    await tab.check("incident-as-of")


async def test_merging_a_duplicate_and_adding_notes(
    tab: Browsing,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    model = f"acme/dup-{uniq}"
    await register_model(client, admin, model)
    survivor = await _incident(client, admin, model, title=f"First report {uniq}")
    duplicate = await _incident(client, admin, model, title=f"Second report {uniq}")
    await tab.sign_in(await make_key(pool, "admin"))
    await tab.goto(f"/console/incidents/{survivor['id']}")
    assert duplicate["ref"] in await tab.page.inner_text("#candidates")
    await tab.page.get_by_role(
        "button", name=f"Merge {duplicate['ref']} into this incident"
    ).click()
    await tab.page.wait_for_load_state()
    row = await conn.fetchrow(
        "SELECT status, duplicate_of FROM incidents WHERE id = $1", duplicate["id"]
    )
    assert row is not None
    assert (row["status"], str(row["duplicate_of"])) == ("duplicate", survivor["id"])
    assert await tab.page.locator("#candidates").count() == 0

    await tab.page.get_by_label("New note").fill("Checked with the platform.")
    await tab.page.get_by_label("Share with the reporter").check()
    await tab.page.get_by_role("button", name="Add the note").click()
    await tab.page.wait_for_load_state()
    await tab.page.get_by_text("Checked with the platform.").wait_for()
    note = await conn.fetchrow(
        "SELECT author, share_with_reporter FROM incident_notes WHERE incident_id = $1",
        survivor["id"],
    )
    assert note is not None
    assert (note["author"], note["share_with_reporter"]) == ("registry", True)
    await tab.check("incident-merged")


async def test_a_platform_sees_only_its_own_incidents(
    tab: Browsing, pool: asyncpg.Pool, client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    model = f"acme/scope-{uniq}"
    await register_model(client, admin, model)
    foreign = await _incident(client, admin, model, title=f"Not the platform's {uniq}")
    platform = await make_platform(client, pool, admin, f"scoped-{uniq}")
    other = await make_platform(client, pool, admin, f"elsewhere-{uniq}")
    await tab.sign_in(await make_key(pool, "platform", platform=platform.slug))
    await tab.goto(f"/console/incidents?model={quote(model)}")
    assert foreign["ref"] not in await tab.page.inner_text("main")
    assert await tab.page.locator("#results tbody tr", has_text="No incident matches").count() == 1
    await tab.check("incidents-platform")
    assert await tab.page.locator("#moves").count() == 0

    tab.expected_statuses.add(404)
    assert await tab.goto(f"/console/incidents/{foreign['id']}") == 404
    await tab.check("error-not-found")
    assert await tab.goto(f"/console/incidents?platform={other.slug}") == 404
    # A platform may not triage, whatever it posts.
    cookie = next(c for c in await tab.page.context.cookies() if c["name"] == "rr_console")
    async with httpx.AsyncClient(base_url=tab.base_url) as raw:
        page = await raw.get(
            "/console/incidents", headers={"cookie": f"rr_console={cookie['value']}"}
        )
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        r = await raw.post(
            f"/console/incidents/{foreign['id']}/transitions",
            data={"csrf_token": token, "to": "triaged"},
            headers={"cookie": f"rr_console={cookie['value']}", "accept": "text/html"},
        )
    assert r.status_code == 403
    status = (await client.get(f"/v1/incidents/{foreign['id']}", headers=admin)).json()["status"]
    assert status == "received"


async def test_authority_reports_and_decisions_on_the_incident_page(
    tab: Browsing,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    model = f"acme/serious-{uniq}"
    await register_model(client, admin, model)
    incident = await _incident(
        client,
        admin,
        model,
        title=f"Serious {uniq}",
        serious=True,
        serious_kind="critical_infrastructure",
    )
    r = await client.post(
        "/v1/decommissions",
        json={
            "model": model,
            "action": "restrict",
            "reason": f"Pulled after {incident['ref']}",
            "incident_ids": [incident["id"]],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    await tab.sign_in(await make_key(pool, "admin"))
    await tab.goto(f"/console/incidents/{incident['id']}")
    assert f"Pulled after {incident['ref']}" in await tab.page.inner_text("#incident-decisions")
    await tab.page.get_by_role("button", name="Record the initial report").click()
    await tab.page.get_by_role("button", name="Record the complete report").wait_for()
    recorded = await conn.fetchrow(
        "SELECT authority_initial_report_at, authority_complete_report_at FROM incidents "
        "WHERE id = $1",
        incident["id"],
    )
    assert recorded is not None
    assert recorded["authority_initial_report_at"] is not None
    assert recorded["authority_complete_report_at"] is None
    await tab.check("incident-serious")


async def test_an_auditor_sees_every_incident_but_not_who_reported_it(
    tab: Browsing,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    model = f"acme/audited-{uniq}"
    await register_model(client, admin, model)
    incident = await _incident(client, admin, model, title=f"Not granted {uniq}")
    reporter = str(await _admin_principal(conn, admin["Authorization"].split(" ")[1]))
    await tab.sign_in(await make_key(pool, "auditor"))
    await tab.goto(f"/console/incidents?model={quote(model)}")
    assert incident["ref"] in await tab.page.inner_text("main")
    assert await tab.goto(f"/console/incidents/{incident['id']}") == 200
    page = await tab.page.inner_text("main")
    assert f"Not granted {uniq}" in page
    assert reporter[:8] not in page
    assert "by the reporter or the registry" in page


async def test_the_incident_page_as_of_shows_the_notes_and_decisions_of_then(
    tab: Browsing,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    model = f"acme/then-{uniq}"
    await register_model(client, admin, model)
    incident = await _incident(client, admin, model, title=f"Then {uniq}")
    r = await client.post(
        f"/v1/incidents/{incident['id']}/notes", json={"body": f"early {uniq}"}, headers=admin
    )
    assert r.status_code == 201, r.text
    moment = await conn.fetchval("SELECT clock_timestamp()")
    r = await client.post(
        f"/v1/incidents/{incident['id']}/notes", json={"body": f"late {uniq}"}, headers=admin
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/decommissions",
        json={
            "model": model,
            "action": "restrict",
            "reason": f"Pulled later {uniq}",
            "incident_ids": [incident["id"]],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    await tab.sign_in(await make_key(pool, "admin"))
    await tab.goto(f"/console/incidents/{incident['id']}")
    assert f"late {uniq}" in await tab.page.inner_text("#notes + ol")
    assert f"Pulled later {uniq}" in await tab.page.inner_text("#incident-decisions")

    await tab.goto(f"/console/incidents/{incident['id']}?as_of={quote(moment.isoformat())}")
    notes = await tab.page.inner_text("#notes + ol")
    assert f"early {uniq}" in notes
    assert f"late {uniq}" not in notes
    assert f"Pulled later {uniq}" not in await tab.page.inner_text("main")
    await tab.check("incident-as-of-notes")


async def _walk(tab: Browsing, path: str) -> tuple[list[str], list[str]]:
    """The references on the first page and, through "Next page", on the second."""
    await tab.goto(path)
    assert await tab.page.get_by_role("link", name="Previous page").count() == 0
    refs = tab.page.locator("#results tbody td:first-child a")
    first = await refs.all_inner_texts()
    await tab.page.get_by_role("link", name="Next page").click()
    await tab.page.wait_for_url("**cursor=**")
    second = await refs.all_inner_texts()
    assert await tab.page.get_by_role("link", name="Next page").count() == 0
    return first, second


async def test_the_queue_sorts_by_deadline_and_severity_with_pages_both_ways(
    tab: Browsing, pool: asyncpg.Pool, client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    model = f"acme/sorted-{uniq}"
    await register_model(client, admin, model)
    severities = ["low", "medium", "high", "critical"]
    now = datetime.now(UTC)
    made = []
    for n in range(53):
        fields: dict[str, object] = {"title": f"Sorted {n} {uniq}", "severity": severities[n % 4]}
        if n % 3 == 0:
            # Serious, with deadlines out of report order (and one shared by two reports).
            fields |= {
                "serious": True,
                "serious_kind": "critical_infrastructure",
                "aware_at": (now - timedelta(hours=(n * 7) % 40)).isoformat(),
            }
        made.append(await _incident(client, admin, model, **fields))
    by_id = sorted(made, key=lambda i: UUID(i["id"]))
    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    by_severity = [i["ref"] for i in sorted(by_id, key=lambda i: rank[i["severity"]])]
    never = datetime.max.replace(tzinfo=UTC)

    def due(i: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(i["deadline"]["due_at"]) if i["deadline"] else never

    by_deadline = [i["ref"] for i in sorted(by_id, key=due)]
    assert by_deadline != [i["ref"] for i in by_id]

    await tab.sign_in(await make_key(pool, "admin"))
    for sort, expected in (("severity", by_severity), ("deadline", by_deadline)):
        first, second = await _walk(tab, f"/console/incidents?model={quote(model)}&sort={sort}")
        assert first + second == expected, sort
        # Back from the second page: the first page again, with no page before it.
        await tab.page.get_by_role("link", name="Previous page").click()
        await tab.page.wait_for_url("**before=**")
        refs = tab.page.locator("#results tbody td:first-child a")
        assert await refs.all_inner_texts() == first, sort
        assert await tab.page.get_by_role("link", name="Previous page").count() == 0
        assert await tab.page.get_by_role("link", name="Next page").count() == 1
    await tab.check("triage-by-deadline")

    # A page link made up by hand is refused with a page, not a crash.
    tab.expected_statuses.add(400)
    assert await tab.goto("/console/incidents?sort=severity&cursor=9~nonsense") == 400
