"""What the reconciliation found, as an admin reads it over the API."""

from __future__ import annotations

from typing import Any

import httpx


async def divergences(client: httpx.AsyncClient, admin: dict[str, str]) -> set[tuple[str, ...]]:
    """Every divergence listed by ``GET /v1/admin/divergences``: (dataset, record id, field)."""
    found: set[tuple[str, ...]] = set()
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/v1/admin/divergences", params=params, headers=admin)
        assert r.status_code == 200, r.text
        page = r.json()
        found |= {(d["dataset"], d["record_id"], d["field"]) for d in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return found
