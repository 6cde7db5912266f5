"""The audits pages: an auditor sees the grants in force, records an audit of a granted
model with a finding, evidence and a result, completes it, and reads its history; what the
API refuses, the page refuses; platforms are kept out."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from tests.conftest import make_key, make_platform, register_model
from tests.console.conftest import Browsing
from tests.helpers.audits import grant, new_auditor


async def test_an_auditor_records_and_completes_an_audit(
    tab: Browsing, client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    uniq = uuid.uuid4().hex[:8]
    granted, other = f"aud-{uniq}/granted", f"aud-{uniq}/other"
    await register_model(client, admin, granted)
    await register_model(client, admin, other)
    auditor = await new_auditor(pool)
    await grant(client, admin, auditor, granted, ["weights", "documentation"])
    # An expired grant is not in force, and is not offered.
    await grant(
        client,
        admin,
        auditor,
        other,
        ["weights"],
        start=datetime.now(UTC) - timedelta(days=10),
        until=datetime.now(UTC) - timedelta(days=1),
    )

    await tab.sign_in(auditor.headers["Authorization"].removeprefix("Bearer "))
    assert await tab.goto("/console/audits") == 200
    grants = await tab.page.locator("#grants tbody").inner_text()
    assert granted in grants
    assert other not in grants
    await tab.check("audits")

    await tab.page.get_by_label(granted).check()
    await tab.page.get_by_label("Method").select_option("red_team")
    await tab.page.get_by_label("weights").check()
    await tab.page.get_by_label("Summary").fill("jailbreak probing of the chat template")
    await tab.page.get_by_role("button", name="Record the audit").click()
    await tab.page.wait_for_load_state()
    assert "/console/audits/" in tab.page.url
    audit_id = tab.page.url.rsplit("/", 1)[-1]
    assert await tab.page.locator("#audit-status").inner_text() == "open"

    await tab.page.get_by_label("Finding", exact=True).fill("system prompt leaks under role play")
    await tab.page.get_by_label("Severity", exact=True).select_option("high")
    await tab.page.get_by_role("button", name="Add the finding").click()
    await tab.page.wait_for_load_state()
    evidence = b"transcript of the red-team session"
    sha = hashlib.sha256(evidence).hexdigest()
    await tab.page.get_by_label("Evidence URL").fill("https://evidence.example/session-1.txt")
    await tab.page.get_by_label("Its SHA-256 (hex)").fill(sha.upper())
    await tab.page.get_by_role("button", name="Add the evidence").click()
    await tab.page.wait_for_load_state()
    await tab.page.get_by_label("Metric", exact=True).fill("jailbreak_success_rate")
    await tab.page.get_by_label("Value", exact=True).fill("0.12")
    await tab.page.get_by_role("button", name="Add the result").click()
    await tab.page.wait_for_load_state()
    await tab.check("audit-open")

    # The record is the API's.
    r = await client.get(f"/v1/audits/{audit_id}", headers=auditor.headers)
    record = r.json()
    assert [f["title"] for f in record["findings"]] == ["system prompt leaks under role play"]
    assert record["findings"][0]["severity"] == "high"
    assert record["artefacts"][0]["sha256"] == sha
    assert record["evaluations"][0]["value"] == 0.12
    assert record["models"] == [granted]

    await tab.page.get_by_label("Outcome", exact=True).select_option("conditional")
    await tab.page.get_by_role("button", name="Complete the audit").click()
    await tab.page.wait_for_load_state()
    assert (await tab.page.locator("#audit-status").inner_text()).endswith(": conditional")
    # Completed: append-only, so the forms are gone.
    assert await tab.page.get_by_role("button", name="Add the finding").count() == 0
    history = await tab.page.locator("#audit-history").inner_text()
    for kind in (
        "audit.created",
        "audit.finding_added",
        "audit.artefact_added",
        "audit.evaluation_added",
        "audit.completed",
    ):
        assert kind in history
    await tab.check("audit-completed")
    listed = await tab.page.goto(tab.url("/console/audits"))
    assert listed is not None
    assert "conditional" in await tab.page.locator("#audits tbody").inner_text()


async def test_what_the_api_refuses_the_page_refuses(
    tab: Browsing, client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    uniq = uuid.uuid4().hex[:8]
    model = f"audr-{uniq}/m"
    model_id = str((await register_model(client, admin, model))["id"])
    auditor = await new_auditor(pool)
    await grant(client, admin, auditor, model, ["documentation"])
    await tab.sign_in(auditor.headers["Authorization"].removeprefix("Bearer "))
    tab.expected_statuses.update({403, 422})
    await tab.goto("/console/audits")
    # Weights were not granted: the domain refuses, nothing is recorded.
    await tab.page.get_by_label(model).check()
    await tab.page.get_by_label("weights").check()
    await tab.page.get_by_role("button", name="Record the audit").click()
    await tab.page.wait_for_load_state()
    assert await tab.page.locator("h1").inner_text() in {"Error 403", "Error 422"}
    # Auditors read every audit: look at this model's, of which there must be none.
    r = await client.get("/v1/audits", params={"model_id": model_id}, headers=auditor.headers)
    assert r.json()["items"] == []


@pytest.mark.parametrize("role", ["platform"])
async def test_platforms_are_refused_the_audits_pages(
    role: str, tab: Browsing, client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    slug = (await make_platform(client, pool, admin, f"audp-{uuid.uuid4().hex[:8]}")).slug
    await tab.sign_in(await make_key(pool, role, platform=slug))  # type: ignore[arg-type]
    tab.expected_statuses.add(403)
    assert await tab.goto("/console/audits") == 403
    assert await tab.goto(f"/console/audits/{uuid.uuid4()}") == 403
    assert "Audits" not in await tab.page.locator("header").inner_text()


async def test_a_regulator_reads_audits_but_records_none(tab: Browsing, pool: asyncpg.Pool) -> None:
    await tab.sign_in(await make_key(pool, "regulator"))
    assert await tab.goto("/console/audits") == 200
    assert await tab.page.get_by_role("button", name="Record the audit").count() == 0
    # A form posted anyway is refused as the API refuses it (auditors only).
    tab.expected_statuses.add(403)
    token = await tab.page.locator("input[name=csrf_token]").first.get_attribute("value")
    r = await tab.page.request.post(
        tab.url("/console/audits"),
        form={"csrf_token": token or "", "models": "x/y", "method": "red_team"},
        headers={"Accept": "text/html"},
    )
    assert r.status == 403
