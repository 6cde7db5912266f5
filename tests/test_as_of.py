"""Point-in-time reads of models and hostings, at the boundaries of each change."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import httpx

from service.domain.as_of import state_as_of
from tests.conftest import PlatformFixture, register_model


async def _recorded(conn: asyncpg.Connection, subject_id: str, kind: str) -> Any:
    return await conn.fetchval(
        "SELECT recorded_at FROM events WHERE subject_id = $1 AND kind = $2 ORDER BY seq DESC",
        subject_id,
        kind,
    )


async def test_model_as_of_just_before_and_after_a_change(
    client: httpx.AsyncClient, conn: asyncpg.Connection, admin: dict[str, str], uniq: str
) -> None:
    model = await register_model(client, admin, f"org-{uniq}/m", provider="Before")
    r = await client.patch(f"/v1/models/{model['id']}", json={"provider": "After"}, headers=admin)
    assert r.status_code == 200, r.text
    created = await _recorded(conn, str(model["id"]), "model.registered")
    changed = await _recorded(conn, str(model["id"]), "model.updated")
    tick = timedelta(microseconds=1)

    async def at(moment: Any) -> httpx.Response:
        return await client.get(
            f"/v1/models/{model['id']}", params={"as_of": moment.isoformat()}, headers=admin
        )

    assert (await at(created - tick)).status_code == 404
    assert (await at(created)).json()["provider"] == "Before"
    assert (await at(changed - tick)).json()["provider"] == "Before"
    assert (await at(changed)).json()["provider"] == "After"
    now = await client.get(f"/v1/models/{model['id']}", headers=admin)
    assert now.json()["provider"] == "After"


async def test_hosting_as_of_shows_the_licence_and_revision_of_the_day(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    model = await register_model(client, admin, f"org-{uniq}/hosted")
    r = await client.post(
        "/v1/hostings",
        json={
            "model": model["name"],
            "url": f"https://hub.example/{uniq}",
            "revision": "r1",
            "licence": "apache-2.0",
        },
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    hosting = r.json()
    r = await client.patch(
        f"/v1/hostings/{hosting['id']}",
        json={"revision": "r2", "licence": "cc-by-nc-4.0"},
        headers=platform.headers,
    )
    assert r.status_code == 200, r.text
    changed = await conn.fetchval(
        "SELECT max(recorded_at) FROM events WHERE subject_id = $1", hosting["id"]
    )
    before = changed - timedelta(microseconds=1)

    r = await client.get(
        f"/v1/hostings/{hosting['id']}", params={"as_of": before.isoformat()}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert (r.json()["revision"], r.json()["licence"]) == ("r1", "apache-2.0")
    r = await client.get(
        f"/v1/hostings/{hosting['id']}", params={"as_of": changed.isoformat()}, headers=admin
    )
    assert (r.json()["revision"], r.json()["licence"]) == ("r2", "cc-by-nc-4.0")

    # Another platform's key sees no more of the past than of the present.
    r = await client.get(
        f"/v1/hostings/{hosting['id']}",
        params={"as_of": changed.isoformat()},
        headers=other_platform.headers,
    )
    assert r.status_code == 404
    r = await client.get(
        f"/v1/hostings/{hosting['id']}",
        params={"as_of": changed.isoformat()},
        headers=platform.headers,
    )
    assert r.status_code == 200


async def test_as_of_needs_a_time_zone(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    model = await register_model(client, admin, f"org-{uniq}/tz")
    r = await client.get(
        f"/v1/models/{model['id']}", params={"as_of": "2026-01-01T00:00:00"}, headers=admin
    )
    assert r.status_code in (400, 422)


async def test_state_as_of_returns_none_for_unknown_subjects(conn: asyncpg.Connection) -> None:
    import uuid
    from datetime import UTC, datetime

    assert await state_as_of(conn, subject_id=uuid.uuid4(), as_of=datetime.now(UTC)) is None
