"""Which export jobs and audit grants a caller sees is decided where they are read: a
regulator sees the jobs it asked for (their files too), an auditor its own grants, whatever
the request names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import asyncpg
import httpx

from service.domain.keys import create_key
from service.schemas.keys import ApiKeyIn
from tests.conftest import bearer, make_key, register_model


async def _auditor(pool: asyncpg.Pool) -> tuple[str, dict[str, str]]:
    """A new auditor: its principal id, and headers carrying its key."""
    async with pool.acquire() as c, c.transaction():
        created = await create_key(
            cast("asyncpg.Connection", c),
            data=ApiKeyIn(role="auditor", name="auditor"),
            actor_id=None,
        )
    return str(created.api_key.principal_id), bearer(created.key)


async def test_an_export_job_and_its_files_are_its_requesters_and_the_admins(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    mine = bearer(await make_key(pool, "regulator"))
    theirs = bearer(await make_key(pool, "regulator"))
    r = await client.post("/v1/exports", json={"datasets": ["models"]}, headers=mine)
    assert r.status_code == 202, r.text
    path = f"/v1/exports/jobs/{r.json()['id']}"
    for who in (mine, admin):
        assert (await client.get(path, headers=who)).status_code == 200
        # The file is refused for being unfinished, not hidden.
        assert (await client.get(f"{path}/files/models.csv", headers=who)).status_code == 409
    assert (await client.get(path, headers=theirs)).status_code == 404
    r = await client.get(f"{path}/files/models.csv", headers=theirs)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_an_auditor_lists_its_own_grants_even_when_it_names_another_auditor(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str], uniq: str
) -> None:
    (a_id, a), (_, b) = await _auditor(pool), await _auditor(pool)
    model = await register_model(client, admin, f"scope-{uniq}/audited")
    r = await client.post(
        "/v1/audit-grants",
        json={
            "auditor_id": a_id,
            "model": model["name"],
            "components": ["code"],
            "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    given = r.json()
    for who, expected in ((b, []), (a, [given["id"]]), (admin, [given["id"]])):
        r = await client.get("/v1/audit-grants", params={"auditor_id": a_id}, headers=who)
        assert r.status_code == 200, r.text
        assert [g["id"] for g in r.json()["items"]] == expected
    assert (await client.get(f"/v1/audit-grants/{given['id']}", headers=b)).status_code == 404
    # What an auditor sees of the model follows its own grants, not another's.
    r = await client.get(f"/v1/audit-access/models/{model['id']}", headers=b)
    assert r.status_code == 200, r.text
    assert r.json()["components"] == []
    r = await client.get(f"/v1/audit-access/models/{model['id']}", headers=a)
    assert r.json()["components"] == ["code"]
