"""Auditors and their work as the audit API sees it: a new auditor key, a grant of access to
a model's components, and the body of an audit record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import httpx

from service.domain.keys import create_key
from service.schemas.keys import ApiKeyIn
from tests.conftest import bearer


@dataclass(frozen=True)
class Auditor:
    """An auditor's principal id and the headers that carry its key."""

    id: str
    headers: dict[str, str]


async def new_auditor(pool: asyncpg.Pool) -> Auditor:
    """A new auditor key, created as an operator would (no actor)."""
    async with pool.acquire() as c, c.transaction():
        created = await create_key(
            cast("asyncpg.Connection", c),
            data=ApiKeyIn(role="auditor", name="auditor"),
            actor_id=None,
        )
    return Auditor(id=str(created.api_key.principal_id), headers=bearer(created.key))


async def grant(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    auditor: Auditor,
    model: str,
    components: list[str],
    *,
    start: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The admin grants ``auditor`` access to ``model``'s ``components`` (by default from now
    for thirty days)."""
    now = datetime.now(UTC)
    body: dict[str, object] = {
        "auditor_id": auditor.id,
        "model": model,
        "components": components,
        "valid_until": (until or now + timedelta(days=30)).isoformat(),
    }
    if start is not None:
        body["valid_from"] = start.isoformat()
    r = await client.post("/v1/audit-grants", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return cast("dict[str, Any]", r.json())


def audit_body(
    *models: str, components: list[str] | None = None, **fields: object
) -> dict[str, object]:
    """An audit record of ``models`` (a red-team audit of the weights unless told)."""
    return {
        "models": list(models),
        "method": "red_team",
        "components": components or ["weights"],
        **fields,
    }
