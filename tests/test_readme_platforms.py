"""The README's platform sections hold true: the curl recipe lands, the kit snippets import."""

from __future__ import annotations

import ast
import asyncio
import re
import subprocess
from pathlib import Path

import httpx
import registry_kit

from tests.conftest import REPO_ROOT, PlatformFixture
from tests.live_service import LiveService


def _section(title: str) -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index(f"## {title}\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def _blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section, re.DOTALL)


def test_kit_snippets_compile_and_name_what_the_kit_exports() -> None:
    blocks = [
        block
        for title in ("For platforms: sending events", "For platforms: receiving notices")
        for block in _blocks(_section(title), "python")
    ]
    assert len(blocks) == 2
    kit_readme = (REPO_ROOT / "kit" / "README.md").read_text()
    blocks += _blocks(kit_readme, "python")
    assert len(blocks) == 4
    for block in blocks:
        tree = ast.parse(block)
        imported = [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "registry_kit"
            for alias in node.names
        ]
        assert imported
        assert set(imported) <= set(registry_kit.__all__)


async def test_curl_recipe_is_accepted_by_a_running_registry(
    client: httpx.AsyncClient, database_url: str, platform: PlatformFixture, tmp_path: Path
) -> None:
    (script,) = _blocks(_section("For platforms: sending events"), "sh")
    r = await client.post(
        f"/v1/platforms/{platform.slug}/webhook-secrets", headers=platform.headers
    )
    secret = r.json()["secret"]
    script = script.replace("SECRET=whsec_...", f"SECRET={secret}")
    script = script.replace("/v1/webhooks/hubzilla", f"/v1/webhooks/{platform.slug}")
    async with LiveService(database_url, tmp_path, REGISTRY_OUTBOX_WORKER="false") as svc:
        script = script.replace("http://127.0.0.1:8080", svc.base_url)
        result = await asyncio.to_thread(
            subprocess.run,
            ["/bin/bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert '"duplicate":false' in result.stdout.replace(" ", ""), result.stdout
    r = await client.get(
        "/v1/hostings", params={"platform": platform.slug}, headers=platform.headers
    )
    assert [h["model"] for h in r.json()["items"]] == ["acme/chat-7b"]
