"""Hostile input answers 4xx, never 5xx: OPTIONS without a key, JSON nested too deeply,
oversized or too many request headers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from litestar import Litestar
from litestar.routes import HTTPRoute

from service.middleware import MAX_HEADER_BYTES, MAX_HEADER_COUNT, MAX_JSON_DEPTH, json_too_deep
from tests.conftest import PlatformFixture
from tests.helpers.webhooks import sign_for
from tests.live_service import LiveService

ANY_ID = "00000000-0000-7000-8000-000000000001"


def _concrete(path: str, slug: str) -> str:
    """A route's path with its parameters filled in (a platform's slug where one fits)."""
    path = re.sub(r"\{(platform|slug)(:[a-z]+)?\}", slug, path)
    path = re.sub(r"\{[^}:]+:int\}", "1", path)
    return re.sub(r"\{[^}]+\}", ANY_ID, path)


def _paths(app: Litestar) -> list[str]:
    return sorted({r.path for r in app.routes if isinstance(r, HTTPRoute)})


async def test_options_answers_on_every_path_without_a_key(
    client: httpx.AsyncClient, app: Litestar, platform: PlatformFixture
) -> None:
    paths = _paths(app)
    assert len(paths) > 40
    answers = {}
    for path in paths:
        r = await client.options(_concrete(path, platform.slug))
        answers[path] = (r.status_code, r.headers.get("allow"))
    broken = {p: a for p, a in answers.items() if a[0] != 204 or not a[1]}
    assert not broken, broken
    # The guarded controllers among them: exports, compliance, keys, webhook secrets.
    assert answers["/v1/exports/{dataset:str}"] == (204, "GET, OPTIONS")


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


async def test_json_nested_too_deeply_is_a_bad_request_on_every_route(
    client: httpx.AsyncClient,
    app: Litestar,
    admin: dict[str, str],
    platform: PlatformFixture,
) -> None:
    """Every operation that takes a body, with a key and (webhooks) a valid signature."""
    r = await client.post(f"/v1/platforms/{platform.slug}/webhook-secrets", json={}, headers=admin)
    secret = r.json()["secret"]
    schema = app.openapi_schema.to_schema()
    answers: dict[tuple[str, str, int], int] = {}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if "requestBody" not in operation:
                continue
            for body in (_nested(977), b"[" * 977 + b"]" * 977, _nested(MAX_JSON_DEPTH + 1)):
                headers = {**admin, "Content-Type": "application/json"}
                headers.update(sign_for(path, secret, body))
                r = await client.request(
                    method.upper(), _concrete(path, platform.slug), content=body, headers=headers
                )
                answers[(method, path, len(body))] = r.status_code
                if r.status_code == 400:
                    assert r.headers["content-type"] == "application/problem+json"
                    assert "nests more than" in r.json()["detail"]
    assert len(answers) > 60
    assert {k: v for k, v in answers.items() if v != 400} == {}


async def test_depth_counts_brackets_outside_strings_only(
    client: httpx.AsyncClient, uniq: str
) -> None:
    assert not json_too_deep(b'{"a": "' + b"[" * 500 + b'"}')
    assert not json_too_deep(b'{"a": "\\"' + b"[" * 500 + b'"}')
    assert json_too_deep(b"[" * (MAX_JSON_DEPTH + 1))
    assert not json_too_deep(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)
    # An unclosed string ends the scan; it does not make it quadratic (17 s for 40 KB once).
    started = time.perf_counter()
    assert not json_too_deep(b"[]" * MAX_JSON_DEPTH + b'"' + b'\\"' * 20_000)
    assert not json_too_deep(b"[]" * MAX_JSON_DEPTH + b'"' + b'\\"' * 20_000 + b"\\")
    assert time.perf_counter() - started < 1.0
    # Many brackets side by side are not depth.
    assert not json_too_deep(b"[" + b"[1]," * 1000 + b"[1]]")
    r = await client.post(
        "/v1/reports",
        json={
            "title": "[" * 200 + " brackets in a title " + "{" * 200,
            "category": "privacy",
            "models": [f"deep{uniq}/m"],
        },
    )
    assert r.status_code == 201, r.text


async def test_too_many_or_too_large_request_headers_answer_431(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    many = {f"x-filler-{i}": "1" for i in range(MAX_HEADER_COUNT + 1)}
    large = {"x-filler": "a" * (MAX_HEADER_BYTES + 1)}
    for extra in (many, large):
        r = await client.get("/v1/models", headers={**admin, **extra})
        assert r.status_code == 431, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "x-request-id" in r.headers
    # Within the limits, the same request goes through.
    r = await client.get("/v1/models", headers={**admin, "x-filler": "a" * 4096})
    assert r.status_code == 200


async def test_the_live_server_answers_431_for_headers_beyond_its_parser_default(
    database_url: str, tmp_path: Path
) -> None:
    """uvicorn's parser would refuse a 20 KB header block with a bare 400 of its own."""
    async with LiveService(database_url, tmp_path) as svc, httpx.AsyncClient() as c:
        r = await c.get(f"{svc.base_url}/healthz", headers={"x-filler": "a" * 20_000})
        assert r.status_code == 431, r.text
        r = await c.get(f"{svc.base_url}/healthz")
        assert r.status_code == 200
