"""Catalogue sync from the platform's side: a signed PUT of its whole catalogue, in NDJSON or
CycloneDX, compared set-wise with what it hosts; only real changes written, each a ledger
event as the matching webhook would write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import httpx
import msgspec
import pytest

from service.app import create_app
from service.settings import Settings
from tests.conftest import PlatformFixture, register_model
from tests.helpers.catalogue import CYCLONEDX, NDJSON, bom, line, ndjson, push
from tests.helpers.hostings import platform_hostings
from tests.helpers.webhooks import deliver, hosted, new_secret, signed


async def _hostings(
    client: httpx.AsyncClient, admin: dict[str, str], slug: str
) -> dict[str, dict[str, Any]]:
    """The platform's hostings by the name it hosts each under."""
    return {h["name"]: h for h in await platform_hostings(client, admin, slug)}


async def _events(conn: asyncpg.Connection, platform_id: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT kind, subject_id, payload FROM events WHERE platform_id = $1"
            " AND (kind LIKE 'hosting.%' OR kind LIKE 'model.%') ORDER BY seq",
            platform_id,
        )
    )


async def test_ndjson_sync_adds_changes_and_is_idempotent(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    a, b, c = (f"acme/cat-{n}-{uniq}" for n in "abc")
    base = f"acme/base-{uniq}"
    body = ndjson(
        [
            line(a, revision="r1", licence="apache-2.0", downloads=10),
            line(
                b,
                base_model=base,
                relation="fine_tune",
                documentation={"model_card": {"present": True, "url": "https://hub.example/c"}},
            ),
            line(c, gated=True, external_id=f"id-{uniq}"),
        ]
    )
    r = await push(client, platform.slug, secret, body)
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["added"], s["changed"], s["removed"], s["unchanged"]) == (3, 0, 0, 0), s
    assert s["registered"] == 4
    assert s["rejected"] == []
    hostings = await _hostings(client, admin, platform.slug)
    assert set(hostings) == {a, b, c}
    assert (hostings[a]["revision"], hostings[a]["licence"], hostings[a]["downloads"]) == (
        "r1",
        "apache-2.0",
        10,
    )
    assert hostings[b]["documentation"]["model_card"] == {
        "present": True,
        "url": "https://hub.example/c",
    }
    assert hostings[c]["gated"] is True
    assert hostings[c]["external_id"] == f"id-{uniq}"
    r = await client.get(f"/v1/models/{hostings[b]['model_id']}", headers=admin)
    assert (r.json()["base_model"], r.json()["derivation"]) == (base, "fine_tune")
    before = await _events(conn, platform.id)
    assert sorted(e["kind"] for e in before) == sorted(
        ["model.registered"] * 4 + ["hosting.recorded"] * 3
    )

    # The same catalogue again, under a new delivery id: nothing changes, nothing written.
    r = await push(client, platform.slug, secret, body)
    s = r.json()
    assert (s["added"], s["changed"], s["removed"], s["unchanged"], s["events"]) == (
        0,
        0,
        0,
        3,
        0,
    ), s
    assert await _events(conn, platform.id) == before

    # The same delivery id with the same body: the first answer, marked as a duplicate.
    r1 = await push(client, platform.slug, secret, body, msg_id=f"cat-{uniq}")
    r2 = await push(client, platform.slug, secret, body, msg_id=f"cat-{uniq}")
    assert r2.status_code == 200
    assert r2.json()["duplicate"] is True
    assert r2.json()["sync_id"] == r1.json()["sync_id"]
    # ... and with another body: a conflict, nothing written.
    r3 = await push(client, platform.slug, secret, ndjson([line(a)]), msg_id=f"cat-{uniq}")
    assert r3.status_code == 409, r3.text

    # One line changed: one hosting.updated event, its changes only.
    changed = ndjson(
        [
            line(a, revision="r2", licence="apache-2.0", downloads=10),
            line(b),
            line(c, gated=True, external_id=f"id-{uniq}"),
        ]
    )
    r = await push(client, platform.slug, secret, changed)
    s = r.json()
    assert (s["added"], s["changed"], s["unchanged"], s["events"]) == (0, 1, 2, 1), s
    [update] = (await _events(conn, platform.id))[len(before) :]
    assert update["kind"] == "hosting.updated"
    assert update["payload"]["changes"] == {"revision": {"from": "r1", "to": "r2"}}
    assert update["payload"]["catalogue"]["id"] == s["sync_id"]


async def test_same_events_as_the_webhook_for_the_same_data(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    secret: str,
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    """A hosting recorded by a catalogue has the state a model.hosted webhook gives it."""
    model = f"acme/same-{uniq}"
    await register_model(client, admin, model)
    fields = {"revision": "abc", "licence": "mit", "downloads": 5}
    other_secret = await new_secret(client, admin, other_platform.slug)
    r = await deliver(client, other_platform.slug, other_secret, hosted(model, **fields))
    assert r.status_code == 202, r.text
    r = await push(client, platform.slug, secret, ndjson([line(model, **fields)]))
    assert r.status_code == 200, r.text
    by_hook = (await _events(conn, other_platform.id))[-1]
    by_sync = (await _events(conn, platform.id))[-1]
    assert by_hook["kind"] == by_sync["kind"] == "hosting.recorded"
    ignore = {"id", "platform_id", "platform", "created_at", "updated_at", "downloads_at", "url"}
    hook_state = {k: v for k, v in by_hook["payload"]["state"].items() if k not in ignore}
    sync_state = {k: v for k, v in by_sync["payload"]["state"].items() if k not in ignore}
    assert hook_state == sync_state


async def test_complete_catalogue_removes_the_absent_only_when_it_says_so(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    a, b = f"acme/keep-{uniq}", f"acme/drop-{uniq}"
    r = await push(client, platform.slug, secret, ndjson([line(a), line(b)]))
    assert r.json()["added"] == 2
    r = await push(client, platform.slug, secret, ndjson([line(a)]))
    assert r.json()["removed"] == 0
    assert (await _hostings(client, admin, platform.slug))[b]["status"] == "hosted"
    r = await push(client, platform.slug, secret, ndjson([line(a)]), complete=True)
    assert r.json()["removed"] == 1, r.text
    assert (await _hostings(client, admin, platform.slug))[b]["status"] == "removed"
    # Listed again: hosted again (a reinstatement, as model.hosted would be).
    r = await push(client, platform.slug, secret, ndjson([line(a), line(b)]), complete=True)
    s = r.json()
    assert (s["changed"], s["removed"], s["unchanged"]) == (1, 0, 1), s
    assert (await _hostings(client, admin, platform.slug))[b]["status"] == "hosted"


async def test_bad_lines_are_reported_and_the_rest_applied(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    good, bad = f"acme/good-{uniq}", f"acme/bad-{uniq}"
    body = ndjson(
        [
            line(good),
            "{not json",
            line(bad, downloads=-1),
            line(good, revision="again"),
            {"model": f"acme/nourl-{uniq}"},
        ]
    )
    # All or nothing: the whole catalogue is refused, nothing written.
    r = await push(client, platform.slug, secret, body, all_or_nothing=True)
    assert r.status_code == 422, r.text
    assert await _hostings(client, admin, platform.slug) == {}
    r = await push(client, platform.slug, secret, body)
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["added"] == 1
    assert [x["line"] for x in s["rejected"]] == [2, 3, 4, 5]
    assert "again" in s["rejected"][2]["reason"]
    assert "line 1" in s["rejected"][2]["reason"]
    assert ">= 0" in s["rejected"][1]["reason"]
    assert set(await _hostings(client, admin, platform.slug)) == {good}


async def test_another_platforms_hosting_is_403_and_writes_nothing(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    body = ndjson(
        [line(f"acme/mine-{uniq}"), line(f"acme/not-{uniq}", platform=other_platform.slug)]
    )
    r = await push(client, platform.slug, secret, body)
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert await _hostings(client, admin, platform.slug) == {}


async def test_signature_size_and_media_type(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    body = ndjson([line(f"acme/sig-{uniq}")])
    headers = signed(secret, body)
    headers["content-type"] = NDJSON
    path = f"/v1/platforms/{platform.slug}/catalogue"
    r = await client.put(path, content=body + b"\n", headers=headers)  # altered after signing
    assert r.status_code == 401, r.text
    wrong = "whsec_" + "A" * 43 + "="
    r = await push(client, platform.slug, wrong, body)
    assert r.status_code == 401, r.text
    r = await push(client, platform.slug, secret, body, media="text/plain")
    assert r.status_code == 415, r.text
    r = await push(client, "no-such-platform", secret, body)
    assert r.status_code == 404, r.text


def _component(purl: str, **extra: Any) -> dict[str, Any]:
    return {"type": "machine-learning-model", "name": purl, "purl": purl, **extra}


@pytest.mark.parametrize("spec", ["1.6", "1.7"])
async def test_cyclonedx_bom_lineage_documentation_and_licence(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    spec: str,
) -> None:
    owner = f"acme{uniq}"
    components = [
        {"type": "library", "name": "torch", "version": "2.5"},
        _component(
            f"pkg:huggingface/{owner}/tuned@abc123",
            licenses=[{"license": {"id": "Apache-2.0"}}],
            pedigree={"ancestors": [_component(f"pkg:huggingface/{owner}/base")]},
            properties=[
                {"name": "registry:relation", "value": "adapter"},
                {"name": "registry:downloads", "value": "42"},
            ],
            modelCard={"considerations": {"useCases": ["chat"]}},
            externalReferences=[{"type": "model-card", "url": "https://example.org/card"}],
        ),
        _component(f"pkg:github/{owner}/repo"),
        _component(f"pkg:huggingface/{owner}"),  # no owner/name: rejected, the rest applied
    ]
    r = await push(client, platform.slug, secret, bom(components, spec=spec), media=CYCLONEDX)
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["added"] == 2, s
    assert [x["line"] for x in s["rejected"]] == [4], s
    hostings = await _hostings(client, admin, platform.slug)
    tuned = hostings[f"{owner}/tuned"]
    assert tuned["url"] == f"https://huggingface.co/{owner}/tuned"
    assert (tuned["revision"], tuned["licence"], tuned["downloads"]) == ("abc123", "apache-2.0", 42)
    docs = tuned["documentation"]
    assert docs["model_card"] == {"present": True, "url": "https://example.org/card"}
    assert docs["use_guidance"]["present"] is True
    assert docs["risk_analysis"]["present"] is False
    assert hostings[f"{owner}/repo"]["url"] == f"https://github.com/{owner}/repo"
    r = await client.get(f"/v1/models/{tuned['model_id']}", headers=admin)
    assert (r.json()["base_model"], r.json()["derivation"]) == (f"{owner}/base", "adapter")


async def test_invalid_bom_is_422_naming_the_first_fault(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    bad = bom([{"type": "bogus", "name": "x"}, _component(f"pkg:huggingface/acme/x{uniq}")])
    r = await push(client, platform.slug, secret, bad, media=CYCLONEDX)
    assert r.status_code == 422, r.text
    assert "bogus" in r.json()["detail"]
    assert "components[0]" in r.json()["detail"]
    r = await push(client, platform.slug, secret, bom([], spec="1.2"), media=CYCLONEDX)
    assert r.status_code == 422, r.text
    assert await _hostings(client, admin, platform.slug) == {}


async def test_models_found_by_package_url(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    owner = f"Acme{uniq}"
    r = await client.patch(
        f"/v1/platforms/{platform.slug}", json={"purl_type": "huggingface"}, headers=admin
    )
    assert r.status_code == 200, r.text
    r = await push(
        client,
        platform.slug,
        secret,
        bom([_component(f"pkg:huggingface/{owner}/Chat@abc")]),
        media=CYCLONEDX,
    )
    assert r.status_code == 200, r.text
    base = f"pkg:huggingface/{owner}/Chat"
    # The synced hosting carries the purl its hub gives it: found by it, with any version
    # or its own; another version, another case or another ecosystem is not it.
    for purl, found in (
        (f"pkg:huggingface/{owner}/Chat", [f"{owner}/Chat"]),
        (f"pkg:huggingface/{owner}/Chat@ABC", [f"{owner}/Chat"]),
        (f"pkg:huggingface/{owner}/Chat@other", []),
        (f"pkg:huggingface/{owner.lower()}/chat@abc", []),
        (f"pkg:github/{owner}/Chat", []),
    ):
        r = await client.get("/v1/models", params={"purl": purl}, headers=platform.headers)
        assert r.status_code == 200, r.text
        assert [m["name"] for m in r.json()["items"]] == found, purl
    # A new revision synced moves the hosting's purl with it.
    r = await push(
        client,
        platform.slug,
        secret,
        bom([_component(f"pkg:huggingface/{owner}/Chat@def")]),
        media=CYCLONEDX,
    )
    assert r.status_code == 200, r.text
    assert r.json()["changed"] == 1, r.text
    for purl, found in ((f"{base}@def", [f"{owner}/Chat"]), (f"{base}@abc", [])):
        r = await client.get("/v1/models", params={"purl": purl}, headers=platform.headers)
        assert [m["name"] for m in r.json()["items"]] == found, purl
    r = await client.get("/v1/models", params={"purl": "not a purl"}, headers=admin)
    assert r.status_code == 422, r.text
    r = await client.get("/v1/models", params={"purl": "pkg:huggingface/noowner"}, headers=admin)
    assert r.status_code == 422, r.text


@pytest.fixture
async def bounded(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a tiny catalogue size limit and a half-second upload deadline."""
    small = msgspec.structs.replace(
        settings, catalogue_max_bytes=100_000, catalogue_upload_seconds=0.5
    )
    app = create_app(small, pool=pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cast("Any", app)), base_url="http://registry.test"
    ) as c:
        yield c


async def test_oversize_and_slow_uploads_are_bounded(
    client: httpx.AsyncClient,
    bounded: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    body = ndjson([line(f"acme/big-{uniq}-{n}") for n in range(2000)])
    assert len(body) > 100_000
    r = await push(bounded, platform.slug, secret, body)  # announced too large
    assert r.status_code == 413, r.text
    headers = signed(secret, body)
    headers["content-type"] = NDJSON

    async def streamed() -> AsyncIterator[bytes]:  # no content-length: counted as it comes
        for start in range(0, len(body), 20_000):
            yield body[start : start + 20_000]

    path = f"/v1/platforms/{platform.slug}/catalogue"
    r = await bounded.put(path, content=streamed(), headers=headers)
    assert r.status_code == 413, r.text

    # Past the first 64 KiB (which the request hygiene reads before any route), slowly.
    small = ndjson([line(f"acme/slow-{uniq}-{n}") for n in range(1000)])
    assert 70_000 < len(small) < 100_000
    headers = signed(secret, small)
    headers["content-type"] = NDJSON

    async def slow() -> AsyncIterator[bytes]:
        yield small[:70_000]
        await asyncio.sleep(1.5)
        yield small[70_000:]

    r = await bounded.put(path, content=slow(), headers=headers)
    assert r.status_code == 408, r.text
    assert await _hostings(client, admin, platform.slug) == {}
