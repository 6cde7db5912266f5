"""The incident listing's text filter and newest-first keyset, which the triage queue uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import asyncpg
import httpx

from service.domain.incident_lists import list_incidents
from service.domain.incidents import Scope
from service.domain.models import get_model
from tests.conftest import register_model


async def test_keyset_pages_follow_the_order_and_text_is_not_a_pattern(
    pool: asyncpg.Pool, client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    name = f"acme/order-{uniq}"
    await register_model(client, admin, name)
    refs = []
    for n, title in enumerate(["100% broken", "broken_ish", "fine", "also fine", "FINE again"]):
        r = await client.post(
            "/v1/incidents",
            json={
                "title": f"{title} {n}",
                "category": "other",
                "severity": "low",
                "models": [name],
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
        refs.append(r.json()["ref"])
    async with pool.acquire() as c:
        conn = cast("asyncpg.Connection", c)
        model_id = (await get_model(conn, name=name)).id
        now = datetime.now(UTC)

        async def pages(*, newest_first: bool, text: str | None = None) -> list[str]:
            """Every ref, fetched two at a time."""
            out: list[str] = []
            after = None
            while True:
                items = await list_incidents(
                    conn,
                    scope=Scope(),
                    now=now,
                    model_id=model_id,
                    include_lineage=False,
                    text=text,
                    newest_first=newest_first,
                    after=after,
                    limit=2,
                )
                if not items:
                    return out
                out.extend(i.ref for i in items)
                after = items[-1].id

        assert await pages(newest_first=False) == refs
        assert await pages(newest_first=True) == refs[::-1]
        # '%' and '_' are plain characters, and case does not matter.
        assert await pages(newest_first=False, text="100%") == refs[:1]
        assert await pages(newest_first=False, text="f_ne") == []
        assert await pages(newest_first=True, text="fine") == refs[2:][::-1]
