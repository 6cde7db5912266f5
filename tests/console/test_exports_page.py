"""The exports page: a regulator starts a signed bundle, follows its progress, downloads it
as one archive and checks it with the registry's own verifier, as the page tells them to."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from service.domain.bundles import verify_bundle
from service.domain.checkpoints import load_or_create_signer
from tests.conftest import REPO_ROOT, make_key, make_platform, register_model
from tests.console.conftest import Browsing
from tests.helpers.ledger import ORIGIN, seal_all, write_test_key
from tests.live_service import LiveService

VERIFY_EXPORT = [sys.executable, "-m", "service", "verify-export"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the test's own fixed commands
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


async def _start_bundle(tab: Browsing, *, datasets: list[str], platform: str) -> str:
    await tab.goto("/console/exports")
    await tab.page.get_by_label("events", exact=True).uncheck()
    for name in datasets:
        await tab.page.get_by_label(name, exact=True).check()
    await tab.page.get_by_label("JSON lines").check()
    await tab.page.get_by_label("Platform (its slug)").fill(platform)
    await tab.page.get_by_role("button", name="Start the bundle").click()
    await tab.page.wait_for_load_state()
    assert "/console/exports/" in tab.page.url, await tab.page.content()
    return tab.page.url.rsplit("/", 1)[-1]


async def test_a_regulator_starts_follows_downloads_and_verifies_a_bundle(
    tab: Browsing,
    live: LiveService,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    tmp_path: Path,
) -> None:
    uniq = uuid.uuid4().hex[:8]
    hub = await make_platform(client, pool, admin, f"exp-{uniq}")
    await register_model(client, admin, f"exp-{uniq}/m")
    r = await client.post(
        "/v1/hostings",
        json={"model": f"exp-{uniq}/m", "url": "https://hub.example/m"},
        headers=hub.headers,
    )
    assert r.status_code == 201, r.text

    # The bundle names the newest checkpoint: one signed by the run's key, as the live
    # service's bundles are.
    await seal_all(pool, load_or_create_signer(write_test_key(tmp_path / "k.pem"), name=ORIGIN))
    await tab.sign_in(await make_key(pool, "regulator"))
    assert await tab.goto("/console/exports") == 200
    assert "Exports" in await tab.page.locator("header nav").inner_text()
    await tab.check("exports")

    job_id = await _start_bundle(tab, datasets=["hostings", "models"], platform=hub.slug)
    # The page follows the job (its script polls; it reloads once the job is done).
    status = tab.page.locator("#export-status")
    assert await status.inner_text() in {"queued", "running", "done"}
    await tab.page.locator("#archive-link").wait_for(timeout=60_000)
    assert await status.inner_text() == "done"
    assert await tab.page.locator("#export-progress").get_attribute("value") == "1.0"
    await tab.check("export-bundle")

    commands = await tab.page.locator("#verify-commands").inner_text()
    folder = f"export-{job_id}"
    assert commands.splitlines() == [
        f"tar -xf {folder}.tar",
        f"curl -o registry-verifier.key {live.base_url}/.well-known/risk-registry/checkpoint-key",
        f"risk-registry verify-export {folder} --key registry-verifier.key",
    ]
    async with tab.page.expect_download() as info:
        await tab.page.locator("#archive-link").click()
    download = await info.value
    assert download.suggested_filename == f"{folder}.tar"
    await download.save_as(tmp_path / f"{folder}.tar")

    # The instructions, followed as written (the key fetched over HTTP, the CLI verifier).
    untar = await asyncio.to_thread(_run, ["tar", "-xf", f"{folder}.tar"], tmp_path)
    assert untar.returncode == 0, untar.stderr
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        key = (await http.get("/.well-known/risk-registry/checkpoint-key")).text
    assert key.strip() == await tab.page.locator("#verifier-key").inner_text()
    (tmp_path / "registry-verifier.key").write_text(key)
    result = await asyncio.to_thread(
        _run,
        [*VERIFY_EXPORT, folder, "--json", "--key", "registry-verifier.key"],
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == {"ok": True, "problems": []}
    bundle = tmp_path / folder
    assert sorted(p.name for p in bundle.iterdir()) == [
        "hostings.jsonl",
        "manifest.json",
        "manifest.sig",
        "models.jsonl",
    ]
    assert f"exp-{uniq}/m" in (bundle / "models.jsonl").read_text()
    # A changed byte is caught by the same verifier.
    (bundle / "hostings.jsonl").write_bytes((bundle / "hostings.jsonl").read_bytes() + b"\n")
    assert verify_bundle(bundle, key.strip()) != []

    # The bundle is listed among the regulator's recent ones.
    await tab.goto("/console/exports")
    assert (
        await tab.page.locator(f'#recent-exports a[href="/console/exports/{job_id}"]').count() == 1
    )


async def test_without_javascript_the_bundle_page_refreshes_itself(
    browser: object, live: LiveService, pool: asyncpg.Pool
) -> None:
    from tests.console.conftest import open_tab

    async for tab in open_tab(browser, live.base_url, javascript=False):  # type: ignore[arg-type]
        await tab.sign_in(await make_key(pool, "admin"))
        await tab.goto("/console/exports")
        await tab.page.get_by_role("button", name="Start the bundle").click()
        await tab.page.wait_for_load_state()
        assert "/console/exports/" in tab.page.url
        # No script runs: the page's own refresh brings the finished state.
        await tab.page.locator("#archive-link").wait_for(timeout=60_000)
        assert await tab.page.locator("#export-status").inner_text() == "done"


async def test_bad_bundle_requests_are_refused_with_a_page(
    tab: Browsing, pool: asyncpg.Pool
) -> None:
    await tab.sign_in(await make_key(pool, "regulator"))
    tab.expected_statuses.update({422})
    await tab.goto("/console/exports")
    await tab.page.get_by_label("events", exact=True).uncheck()
    await tab.page.get_by_role("button", name="Start the bundle").click()
    await tab.page.wait_for_load_state()
    assert "choose at least one dataset" in await tab.page.locator("main").inner_text()
    await tab.goto("/console/exports")
    await tab.page.get_by_label("Platform (its slug)").fill("no-such-platform-here")
    await tab.page.get_by_role("button", name="Start the bundle").click()
    await tab.page.wait_for_load_state()
    assert "no platform 'no-such-platform-here'" in await tab.page.locator("main").inner_text()


@pytest.mark.parametrize("role", ["auditor", "platform"])
async def test_auditors_and_platforms_are_refused_exports(
    role: str, tab: Browsing, client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    platform = None
    if role == "platform":
        platform = (await make_platform(client, pool, admin, f"expr-{uuid.uuid4().hex[:8]}")).slug
    await tab.sign_in(await make_key(pool, role, platform=platform))  # type: ignore[arg-type]
    tab.expected_statuses.add(403)
    assert await tab.goto("/console/exports") == 403
    assert "Exports" not in await tab.page.locator("header").inner_text()
    # The archive of someone else's job is refused the same way as the page.
    assert await tab.goto(f"/console/exports/{uuid.uuid4()}/archive") == 403
