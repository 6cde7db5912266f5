"""Behind a trusted proxy the public channel limits each reporter, not the proxy."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.live_service import LiveService

REPORT = {"title": "Leaks data", "category": "privacy", "models": ["acme/proxied"]}


async def _statuses(base: str, forwarded_for: str, n: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base) as client:
        return [
            (
                await client.post(
                    "/v1/reports", json=REPORT, headers={"X-Forwarded-For": forwarded_for}
                )
            ).status_code
            for _ in range(n)
        ]


async def test_forwarded_clients_are_limited_apart_only_behind_a_trusted_proxy(
    database_url: str, tmp_path: Path
) -> None:
    limits = {"REGISTRY_PUBLIC_RATE_LIMIT": "2"}
    async with LiveService(
        database_url, tmp_path, REGISTRY_TRUSTED_PROXIES="127.0.0.1", **limits
    ) as svc:
        assert await _statuses(svc.base_url, "203.0.113.7", 3) == [201, 201, 429]
        # Another reporter behind the same proxy has an allowance of its own.
        assert await _statuses(svc.base_url, "198.51.100.9", 1) == [201]
    async with LiveService(database_url, tmp_path, **limits) as svc:
        # No trusted proxy: the header is ignored, and the peer is the client.
        assert await _statuses(svc.base_url, "203.0.113.7", 2) == [201, 201]
        assert await _statuses(svc.base_url, "198.51.100.9", 1) == [429]
