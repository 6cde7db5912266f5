"""A delivery is answered the same whichever way it takes in: the plain ASGI intake (a body
with Content-Length) or Litestar's documented route (a chunked body, which that layer leaves
to Litestar). Status, headers and RFC 9457 bodies match, and both count under one route."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PlatformFixture
from tests.helpers.webhooks import event, hosted, new_secret, signed


@pytest.fixture
async def secret(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture
) -> str:
    return await new_secret(client, admin, platform.slug)


async def _requests(client: httpx.AsyncClient, **labels: str) -> float:
    """The service's own count of requests with these labels, from /metrics."""
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "registry_http_requests_total" and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                return float(sample.value)
    return 0.0


Send = Callable[[str, bytes, dict[str, str]], Awaitable[httpx.Response]]


def _ways(client: httpx.AsyncClient) -> dict[str, Send]:
    async def announced(path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await client.post(path, content=body, headers=headers)

    async def chunked(path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield body[:7]
            yield body[7:]

        return await client.post(path, content=chunks(), headers=headers)

    return {"announced": announced, "chunked": chunked}


def _shape(r: httpx.Response, way: str) -> tuple[object, ...]:
    """What a platform sees, less what differs by delivery: the request id, the delivery id,
    the event numbers (not how many), the body's length and the names that carry ``way``."""
    headers = [
        (name, "" if name in {"content-length", "x-request-id"} else value)
        for name, value in r.headers.items()
    ]
    body = json.loads(r.text.replace(way, "WAY"))
    if "events" in body:
        body["events"] = len(body["events"])
    body.pop("delivery_id", None)
    return r.status_code, headers, body


async def _answers(
    client: httpx.AsyncClient, make: Callable[[str], tuple[str, bytes, dict[str, str]]]
) -> dict[str, tuple[object, ...]]:
    shapes = {}
    for way, send in _ways(client).items():
        path, body, headers = make(way)
        r = await send(path, body, headers)
        shapes[way] = _shape(r, way)
        assert r.headers["x-request-id"]
    return shapes


async def test_each_answer_is_the_same_both_ways_in(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    slug = platform.slug

    def accepted(way: str) -> tuple[str, bytes, dict[str, str]]:
        body = hosted(f"org-{uniq}/{way}")
        return f"/v1/webhooks/{slug}", body, signed(secret, body)

    def updated(way: str) -> tuple[str, bytes, dict[str, str]]:
        body = event("model.updated", {"model": f"org-{uniq}/{way}", "revision": "r2"})
        return f"/v1/webhooks/{slug}", body, signed(secret, body)

    def unknown_hosting(way: str) -> tuple[str, bytes, dict[str, str]]:
        body = event("model.updated", {"model": f"org-{uniq}/none-{way}", "revision": "r2"})
        return f"/v1/webhooks/{slug}", body, signed(secret, body)

    def bad_signature(way: str) -> tuple[str, bytes, dict[str, str]]:
        body = hosted(f"org-{uniq}/{way}-unsigned")
        return f"/v1/webhooks/{slug}", body, signed("whsec_" + "A" * 32, body)

    def unknown_platform(way: str) -> tuple[str, bytes, dict[str, str]]:
        body = hosted(f"org-{uniq}/{way}")
        return f"/v1/webhooks/nowhere-{uniq}", body, signed(secret, body)

    def malformed(way: str) -> tuple[str, bytes, dict[str, str]]:
        body = event("model.hosted", {"nothing": way})
        return f"/v1/webhooks/{slug}", body, signed(secret, body)

    def other(way: str) -> tuple[str, bytes, dict[str, str]]:
        data = {"model": f"org-{uniq}/{way}", "platform": other_platform.slug, "revision": "r"}
        body = event("model.updated", data)
        return f"/v1/webhooks/{slug}", body, signed(secret, body)

    expected = {
        accepted: 202,
        updated: 202,
        unknown_hosting: 422,
        bad_signature: 401,
        unknown_platform: 404,
        malformed: 400,
        other: 403,
    }
    for make, status in expected.items():
        shapes = await _answers(client, make)
        assert shapes["announced"] == shapes["chunked"], make.__name__
        assert shapes["announced"][0] == status, (make.__name__, shapes)


async def test_duplicates_and_conflicts_are_the_same_both_ways_in(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    shapes: dict[str, list[tuple[object, ...]]] = {}
    for way, send in _ways(client).items():
        msg_id = f"msg-{uniq}-{way}"
        body = hosted(f"org-{uniq}/{way}")
        headers = signed(secret, body, msg_id=msg_id)
        first = await send(f"/v1/webhooks/{platform.slug}", body, headers)
        again = await send(f"/v1/webhooks/{platform.slug}", body, headers)
        changed = hosted(f"org-{uniq}/{way}", revision="other")
        conflict = await send(
            f"/v1/webhooks/{platform.slug}", changed, signed(secret, changed, msg_id=msg_id)
        )
        assert [first.status_code, again.status_code, conflict.status_code] == [202, 200, 409]
        assert again.json()["events"] == first.json()["events"]
        shapes[way] = [_shape(r, way) for r in (first, again, conflict)]
    assert shapes["announced"] == shapes["chunked"]


@pytest.mark.parametrize("door", ["huggingface", "github"])
async def test_native_doors_refuse_the_same_both_ways_in(
    client: httpx.AsyncClient, platform: PlatformFixture, door: str
) -> None:
    def unsigned(way: str) -> tuple[str, bytes, dict[str, str]]:
        body = b'{"event": {"action": "update", "scope": "repo"}, "way": "' + way.encode() + b'"}'
        headers = {"content-type": "application/json", "x-github-delivery": str(uuid.uuid4())}
        return f"/v1/webhooks/{platform.slug}/{door}", body, headers

    shapes = await _answers(client, unsigned)
    assert shapes["announced"] == shapes["chunked"]
    assert shapes["announced"][0] == 401


async def test_both_ways_in_count_under_the_route_template(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    labels = {"method": "POST", "route": "/v1/webhooks/{platform}", "status": "202"}
    before = await _requests(client, **labels)
    for way, send in _ways(client).items():
        body = hosted(f"org-{uniq}/{way}")
        r = await send(f"/v1/webhooks/{platform.slug}", body, signed(secret, body))
        assert r.status_code == 202, r.text
    after = await _requests(client, **labels)
    assert after - before == pytest.approx(2)
