"""The API reference page runs from the service's own assets, under its strict CSP."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import httpx
import pytest

from service.api.reference import ASSETS
from tests.live_service import LiveService


async def test_the_reference_page_loads_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    for page in ("/schema", "/schema/swagger"):
        r = await client.get(page)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/html")
        sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert sources
        assert all(s.startswith("/") and not s.startswith("//") for s in sources), sources
        assert "<script>" not in r.text  # no inline script
        for source in sources:
            asset = await client.get(source)
            assert asset.status_code == 200, source
            assert asset.headers["x-content-type-options"] == "nosniff"
        assert 'data-spec-url="/schema/openapi.json"' in r.text
    r = await client.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert r.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "public" in r.headers["cache-control"]
    # The document, in both forms.
    assert (await client.get("/schema/openapi.json")).json()["openapi"].startswith("3.")
    r = await client.get("/schema/openapi.yaml")
    assert r.status_code == 200
    assert "openapi:" in r.text
    # The pages Litestar would load from CDNs are gone.
    for page in ("/schema/redoc", "/schema/elements", "/schema/rapidoc"):
        assert (await client.get(page)).status_code == 404, page
    assert (await client.get("/static/../settings.py")).status_code in {400, 404}


def test_the_vendored_copy_keeps_its_licence() -> None:
    licence = (ASSETS / "swagger-ui" / "LICENSE").read_text()
    assert "Apache License" in licence
    assert (ASSETS / "swagger-ui" / "swagger-ui-bundle.js.LICENSE.txt").exists()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs a Chromium")
async def test_the_page_renders_in_chromium_without_a_policy_violation(
    database_url: str, tmp_path: Path
) -> None:
    async with LiveService(database_url, tmp_path) as svc:
        proc = await asyncio.create_subprocess_exec(
            "chromium",
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
            f"{svc.base_url}/schema",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    dom, log = out.decode(), err.decode()
    assert "Content Security Policy" not in log, log[-2000:]
    # Swagger UI ran and drew the operations from the document.
    assert dom.count("opblock-summary") > 50
