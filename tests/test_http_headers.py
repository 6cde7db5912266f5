"""Protective response headers: ``nosniff`` everywhere, ``no-store`` on anything that may
carry a key, secret, follow-up token or contact details, and a strict policy on HTML."""

from __future__ import annotations

import httpx

from service.middleware import CONTENT_SECURITY_POLICY
from tests.conftest import PlatformFixture


def _no_store(r: httpx.Response) -> None:
    assert r.headers["cache-control"] == "no-store", (r.request.url, r.headers)
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_every_answer_carries_nosniff(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for method, path, headers in [
        ("GET", "/healthz", {}),
        ("GET", "/v1/models", admin),
        ("GET", "/v1/models", {}),  # 401
        ("GET", "/v1/nowhere", admin),  # 404
        ("OPTIONS", "/v1/exports/events", {}),
        ("GET", "/schema/openapi.json", {}),
        ("POST", "/v1/models", admin),  # 400
    ]:
        r = await client.request(method, path, headers=headers)
        assert r.headers["x-content-type-options"] == "nosniff", (method, path)


async def test_keys_secrets_tokens_and_contact_details_are_never_stored(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    r = await client.post("/v1/keys", json={"role": "auditor", "name": "a"}, headers=admin)
    assert r.status_code == 201, r.text
    _no_store(r)
    r = await client.post(f"/v1/platforms/{platform.slug}/webhook-secrets", json={}, headers=admin)
    assert r.status_code == 201, r.text
    _no_store(r)
    r = await client.post(
        f"/v1/platforms/{platform.slug}/endpoints",
        json={"url": f"https://hooks-{uniq}.example.org/notices"},
        headers=admin,
    )
    assert "secret" not in r.text or r.status_code == 201
    _no_store(r)
    r = await client.post(
        "/v1/reports",
        json={
            "title": "Leaks addresses",
            "category": "privacy",
            "models": [f"hdr{uniq}/m"],
            "contact": {"email": f"me-{uniq}@example.org"},
        },
    )
    assert r.status_code == 201, r.text
    _no_store(r)
    receipt = r.json()
    r = await client.get(
        f"/v1/reports/{receipt['ref']}",
        headers={"Follow-Up-Token": receipt["followup_token"]},
    )
    assert r.status_code == 200, r.text
    _no_store(r)
    r = await client.get("/v1/keys", headers=admin)
    _no_store(r)


async def test_html_pages_carry_a_strict_policy(
    client: httpx.AsyncClient, admin: dict[str, str], regulator: dict[str, str]
) -> None:
    pages = [await client.get("/schema")]
    for r in pages:
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert CONTENT_SECURITY_POLICY.startswith("default-src 'none'")
    # The compliance report's HTML page is gone: the console's dashboard (and its PDF) is
    # the printable report now.
    r = await client.get(
        "/v1/reports/compliance",
        params={"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z", "format": "html"},
        headers=regulator,
    )
    assert r.status_code == 400, r.text
    # JSON answers do not need a page policy.
    r = await client.get("/v1/models", headers=admin)
    assert "content-security-policy" not in r.headers
