"""The README's platform sections hold true: the curl recipe and the kit examples work."""

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
    assert len(blocks) == 5
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


async def test_curl_recipe_and_kit_example_land_in_a_running_registry(
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
        # The kit's example sends the same event through the same live registry.
        (example,) = _blocks(_section("For platforms: sending events"), "python")
        example = example.replace('"hubzilla", "whsec_..."', f'"{platform.slug}", "{secret}"')
        example = example.replace("http://127.0.0.1:8080", svc.base_url)
        printed: list[tuple[object, ...]] = []
        namespace = {"print": lambda *args: printed.append(args)}
        code = compile(example, "README", "exec")
        await asyncio.to_thread(exec, code, namespace)
    assert result.returncode == 0, result.stderr
    assert '"duplicate":false' in result.stdout.replace(" ", ""), result.stdout
    ((msg_id, body),) = printed
    assert str(msg_id).startswith("msg_")
    assert isinstance(body, dict)
    assert body["duplicate"] is False
    r = await client.get(
        "/v1/hostings", params={"platform": platform.slug}, headers=platform.headers
    )
    hosting = r.json()["items"]
    assert [h["model"] for h in hosting] == ["acme/chat-7b"]
    assert hosting[0]["licence"] == "apache-2.0"


def test_receiving_example_verifies_a_notice() -> None:
    (example,) = _blocks(_section("For platforms: receiving notices"), "python")
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    example = example.replace('NoticeReceiver("whsec_...")', f'NoticeReceiver("{secret}")')
    notice = registry_kit.encode_event("decommission.notice", {"model": "acme/chat-7b"})
    body = notice[:-1] + b',"id":"n-1"}'
    for key, want in ((secret, 200), ("whsec_aGVsbG8gd29ybGQgdGhpcyBpcyBhIHNlY3JldA==", 401)):
        headers = registry_kit.signed_headers(key, msg_id="n-1", body=body)
        namespace: dict[str, object] = {"headers": headers, "raw_body": body}
        exec(compile(example, "README", "exec"), namespace)  # noqa: S102 - the README's own code
        assert namespace["status"] == want
