"""The platform kit (``kit/``) pushing a whole catalogue, used as a platform would use it.

Each push goes through the kit's signing and streaming to the registry's real catalogue
endpoint (over ASGI, or a live process for the command) and the outcome is read back from
the registry's API: what the summary claims must be what was written.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar
from registry_kit import (
    CatalogueError,
    CatalogueSummary,
    RetryPolicy,
    SendError,
    push_catalogue_async,
)
from registry_kit.__main__ import main as kit_main

from tests.conftest import PlatformFixture
from tests.helpers.catalogue import bom, line, ndjson
from tests.helpers.kit import OTHER
from tests.helpers.webhooks import new_secret
from tests.live_service import LiveService

REGISTRY = "http://registry.test"


@pytest.fixture
async def secret(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture
) -> str:
    return await new_secret(client, admin, platform.slug)


async def _hostings(
    client: httpx.AsyncClient, admin: dict[str, str], slug: str
) -> dict[str, dict[str, Any]]:
    r = await client.get("/v1/hostings", params={"platform": slug, "limit": 200}, headers=admin)
    assert r.status_code == 200, r.text
    return {h["name"]: h for h in r.json()["items"]}


async def _no_sleep(seconds: float) -> None:
    return None


async def test_ndjson_file_is_streamed_in_parts_and_applied(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    tmp_path: Path,
) -> None:
    names = [f"acme{uniq}/model-{n}" for n in range(40)]
    path = tmp_path / "catalogue.ndjson"
    path.write_bytes(ndjson([line(name, downloads=n) for n, name in enumerate(names)]))
    seen: list[tuple[int, int]] = []
    summary = await push_catalogue_async(
        REGISTRY,
        platform.slug,
        secret,
        path,
        client=client,
        progress=lambda sent, total: seen.append((sent, total)),
        part_size=512,
    )
    assert isinstance(summary, CatalogueSummary)
    assert (summary.format, summary.added, summary.registered) == ("ndjson", 40, 40)
    assert (summary.changed, summary.removed, summary.rejected, summary.duplicate) == (
        0,
        0,
        [],
        False,
    )
    assert summary.delivery_id.startswith("catalogue_")
    hostings = await _hostings(client, admin, platform.slug)
    assert set(hostings) == set(names)
    assert hostings[names[7]]["downloads"] == 7
    # Sent in parts, each reported, ending with the whole file.
    size = path.stat().st_size
    assert len(seen) == -(-size // 512)
    assert [s for s, _ in seen] == sorted({s for s, _ in seen})
    assert seen[-1] == (size, size)


async def test_cyclonedx_bom_and_a_complete_catalogue(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    tmp_path: Path,
) -> None:
    owner = f"acme{uniq}"
    components = [
        {"type": "machine-learning-model", "name": p, "purl": p}
        for p in (f"pkg:huggingface/{owner}/chat@abc", f"pkg:github/{owner}/repo")
    ]
    path = tmp_path / "bom.json"  # .json: sent as CycloneDX without saying so
    path.write_bytes(bom(components))
    summary = await push_catalogue_async(REGISTRY, platform.slug, secret, path, client=client)
    assert (summary.format, summary.added) == ("cyclonedx", 2)
    hostings = await _hostings(client, admin, platform.slug)
    assert hostings[f"{owner}/chat"]["revision"] == "abc"

    # The same hostings as NDJSON, one left out, the catalogue complete: that one is removed.
    again = tmp_path / "again.txt"
    again.write_bytes(ndjson([line(f"{owner}/chat", url=hostings[f"{owner}/chat"]["url"])]))
    summary = await push_catalogue_async(
        REGISTRY, platform.slug, secret, again, format="ndjson", complete=True, client=client
    )
    assert (summary.format, summary.complete, summary.removed) == ("ndjson", True, 1)
    hostings = await _hostings(client, admin, platform.slug)
    assert hostings[f"{owner}/repo"]["status"] == "removed"
    assert hostings[f"{owner}/chat"]["status"] == "hosted"


class _LoseFirstAnswer(httpx.AsyncBaseTransport):
    """The registry gets and applies the first request; its answer never reaches the kit."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.ids: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.ids.append(request.headers["webhook-id"])
        response = await self.inner.handle_async_request(request)
        if len(self.ids) == 1:
            await response.aread()
            raise httpx.ReadError("connection reset before the answer", request=request)
        return response


async def test_a_push_whose_answer_was_lost_is_resent_under_its_id_and_applied_once(
    app: Litestar,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalogue.ndjson"
    path.write_bytes(ndjson([line(f"acme{uniq}/a"), line(f"acme{uniq}/b")]))
    lossy = _LoseFirstAnswer(httpx.ASGITransport(app=cast("Any", app)))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with httpx.AsyncClient(transport=lossy, base_url=REGISTRY) as flaky:
        summary = await push_catalogue_async(
            REGISTRY, platform.slug, secret, path, client=flaky, sleep=sleep
        )
    assert len(lossy.ids) == 2
    assert lossy.ids[0] == lossy.ids[1]
    assert len(waits) == 1
    # The second attempt found the first one applied: its summary, nothing written again.
    assert summary.duplicate is True
    assert (summary.added, summary.delivery_id) == (2, lossy.ids[0])

    # Pushing it again later under the same delivery id is as safe, and says the same.
    again = await push_catalogue_async(
        REGISTRY, platform.slug, secret, path, delivery_id=summary.delivery_id, client=client
    )
    assert again == summary
    assert len(await _hostings(client, admin, platform.slug)) == 2
    r = await client.get(
        "/v1/events", params={"platform": platform.slug, "limit": 200}, headers=admin
    )
    assert r.status_code == 200, r.text
    recorded = [e for e in r.json()["items"] if e["kind"] == "hosting.recorded"]
    assert len(recorded) == 2

    # The same delivery id with another body is refused, not taken for a repeat.
    other = tmp_path / "other.ndjson"
    other.write_bytes(ndjson([line(f"acme{uniq}/c")]))
    with pytest.raises(CatalogueError) as refused:
        await push_catalogue_async(
            REGISTRY, platform.slug, secret, other, delivery_id=summary.delivery_id, client=client
        )
    assert refused.value.status_code == 409
    assert "different body" in refused.value.problem["detail"]


async def test_a_wrong_secret_is_refused_once_and_writes_nothing(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalogue.ndjson"
    path.write_bytes(ndjson([line(f"acme{uniq}/a")]))
    with pytest.raises(CatalogueError) as refused:
        await push_catalogue_async(
            REGISTRY, platform.slug, OTHER, path, client=client, sleep=_no_sleep
        )
    assert isinstance(refused.value, SendError)
    assert (refused.value.status_code, refused.value.attempts) == (401, 1)
    assert refused.value.problem["status"] == 401
    assert await _hostings(client, admin, platform.slug) == {}


async def test_rejected_lines_are_reported_or_refuse_the_whole_catalogue(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalogue.ndjson"
    good = line(f"acme{uniq}/good")
    path.write_bytes(ndjson([good, "{not json", {"model": f"acme{uniq}/no-url"}, ""]))
    with pytest.raises(CatalogueError) as refused:
        await push_catalogue_async(
            REGISTRY, platform.slug, secret, path, all_or_nothing=True, client=client
        )
    assert refused.value.status_code == 422
    assert [e["key"] for e in refused.value.problem["errors"]] == ["line 2", "line 3"]
    assert await _hostings(client, admin, platform.slug) == {}

    summary = await push_catalogue_async(
        REGISTRY, platform.slug, secret, path, client=client, retry=RetryPolicy(max_attempts=1)
    )
    assert summary.added == 1
    assert [r.line for r in summary.rejected] == [2, 3]
    assert "url" in summary.rejected[1].reason
    assert set(await _hostings(client, admin, platform.slug)) == {good["model"]}


async def test_the_command_pushes_a_catalogue_to_a_live_registry(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    database_url: str,
    uniq: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "catalogue.ndjson"
    path.write_bytes(ndjson([line(f"acme{uniq}/a"), "oops"]))
    async with LiveService(database_url, tmp_path, REGISTRY_OUTBOX_WORKER="false") as svc:
        argv = ["catalogue", "push", svc.base_url, platform.slug, str(path), "--secret", secret]
        assert await asyncio.to_thread(kit_main, [*argv, "--delivery-id", f"c-{uniq}"]) == 0
        out, err = capsys.readouterr()
        summary = json.loads(out)
        assert (summary["added"], summary["delivery_id"]) == (1, f"c-{uniq}")
        assert [r["line"] for r in summary["rejected"]] == [2]
        assert f"sent {path.stat().st_size} of {path.stat().st_size} bytes (100%)" in err
        assert "1 added" in err
        assert "1 rejected" in err

        assert await asyncio.to_thread(kit_main, [*argv, "--all-or-nothing"]) == 1
        out, err = capsys.readouterr()
        assert json.loads(out)["status"] == 422
        assert "FAIL  the registry refused the catalogue: HTTP 422" in err

        wrong = [*argv[:-1], OTHER]
        assert await asyncio.to_thread(kit_main, wrong) == 1
        assert "HTTP 401" in capsys.readouterr().err
    assert set(await _hostings(client, admin, platform.slug)) == {f"acme{uniq}/a"}
