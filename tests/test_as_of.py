"""Point-in-time reads of models, hostings, incidents and decisions, at the boundaries of
each change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from service.domain.as_of import state_as_of
from service.domain.console_sessions import open_session
from service.domain.incident_lists import list_incidents
from service.domain.incidents import Scope
from service.schemas.models import Model
from tests.conftest import PlatformFixture, make_key, make_platform, register_model
from tests.helpers.notices import admin_headers, confirm_target, decide, host


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

    assert (
        await state_as_of(
            conn,
            subject_type="model",
            subject_id=uuid.uuid4(),
            as_of=datetime.now(UTC),
            record=Model,
        )
        is None
    )


async def _same_id_other_type(
    conn: asyncpg.Connection, model: dict[str, Any], **state: object
) -> datetime:
    """Record, after ``model``'s own events, an event about a record of another type that
    carries the model's id and a state shaped like the model's but changed by ``state``.
    Returns when it was recorded."""
    recorded: datetime = await conn.fetchval(
        "INSERT INTO events (stage, kind, subject_type, subject_id, occurred_at, payload) "
        "VALUES ('prevent', 'hosting.updated', 'hosting', $1, now(), $2) RETURNING recorded_at",
        model["id"],
        {"state": {**model, **state}},
    )
    return recorded


async def test_as_of_reads_the_state_of_the_record_of_that_type_only(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    uniq: str,
) -> None:
    """Ids are unique within a type: a hosting's event under a model's id is not the
    model's state, in the API's point-in-time read and in the console's model page."""
    parent = await register_model(client, admin, f"org-{uniq}/parent", provider="Lab")
    child = await register_model(
        client,
        admin,
        f"org-{uniq}/child",
        provider="Lab",
        base_model=parent["name"],
        derivation="fine_tune",
    )
    await _same_id_other_type(conn, parent, provider="Impostor")
    moment = await _same_id_other_type(conn, child, name=f"org-{uniq}/impostor", base_model_id=None)

    r = await client.get(
        f"/v1/models/{parent['id']}", params={"as_of": moment.isoformat()}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["provider"] == "Lab"

    key = await make_key(pool, "admin")
    async with conn.transaction():
        opened = await open_session(conn, api_key=key, idle=timedelta(minutes=5))
    assert opened is not None
    client.cookies.set("rr_console", opened.cookie)
    r = await client.get(
        f"/console/models/{parent['id']}",
        params={"as_of": moment.isoformat()},
        headers={"accept": "text/html"},
    )
    assert r.status_code == 200, r.text
    # The lineage as of then reads every descendant's state at once (one statement with the walk).
    assert str(child["name"]) in r.text
    assert "Impostor" not in r.text
    assert f"org-{uniq}/impostor" not in r.text


async def test_incident_as_of_each_transition_and_its_clock_then(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    auditor: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    model = await register_model(client, admin, f"org-{uniq}/incident")
    r = await client.post(
        "/v1/incidents",
        json={
            "title": "jailbreak yields weapon instructions",
            "category": "harmful_content",
            "severity": "high",
            "serious": True,
            "serious_kind": "death_or_serious_harm",
            "models": [model["name"]],
        },
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    path = f"/v1/incidents/{incident['id']}"
    for step in ("triaged", "investigating"):
        r = await client.post(f"{path}/transitions", json={"to": step}, headers=admin)
        assert r.status_code == 200, r.text
    reported = await _recorded(conn, incident["id"], "incident.reported")
    triaged, investigating = [
        await conn.fetchval(
            "SELECT recorded_at FROM events WHERE subject_id = $1 AND payload->'state'->>'status'"
            " = $2 ORDER BY seq LIMIT 1",
            incident["id"],
            status,
        )
        for status in ("triaged", "investigating")
    ]
    tick = timedelta(microseconds=1)

    async def at(moment: Any, headers: dict[str, str] = admin) -> httpx.Response:
        return await client.get(path, params={"as_of": moment.isoformat()}, headers=headers)

    r = await at(reported - tick)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await at(reported)).json()["status"] == "received"
    assert (await at(triaged - tick)).json()["status"] == "received"
    assert (await at(triaged)).json()["status"] == "triaged"
    assert (await at(investigating - tick)).json()["status"] == "triaged"
    assert (await at(investigating)).json()["status"] == "investigating"
    assert (await client.get(path, headers=admin)).json()["status"] == "investigating"

    # The Article 73 clock is read at the moment asked about, not now.
    then = await at(reported)
    due = datetime.fromisoformat(then.json()["deadline"]["due_at"])
    assert then.json()["remaining_seconds"] == pytest.approx(
        (due - reported).total_seconds(), abs=1
    )

    # The past is no more visible than the present: the reporting platform sees it, another
    # platform does not; an auditor reads every incident, past or present, without its
    # reporter, which the reporting platform and admins see then as now.
    assert (await at(triaged, platform.headers)).json()["reporter_platform_id"] == platform.id
    assert (await at(triaged)).json()["reporter_platform_id"] == platform.id
    assert (await at(triaged, other_platform.headers)).status_code == 404
    past = await at(triaged, auditor)
    assert past.status_code == 200
    assert past.json()["reporter_platform_id"] is None


async def test_decision_as_of_shows_the_targets_and_confirmations_of_the_day(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    second = await admin_headers(pool)
    name = f"org-{uniq}/recalled"
    await register_model(client, admin, name)
    await host(client, admin, name, platform)
    await host(client, admin, name, other_platform)
    bystander = await make_platform(client, pool, admin, f"bystander-{uniq}")
    decision = await decide(client, admin, second, name)
    mine = next(t for t in decision["targets"] if t["platform_id"] == platform.id)
    await confirm_target(pool, decision, mine)
    path = f"/v1/decommissions/{decision['id']}"
    moments = {
        kind: await _recorded(conn, decision["id"], f"decommission.{kind}")
        for kind in ("proposed", "approved", "notified", "confirmed")
    }
    tick = timedelta(microseconds=1)

    async def at(moment: Any, headers: dict[str, str] = admin) -> httpx.Response:
        return await client.get(path, params={"as_of": moment.isoformat()}, headers=headers)

    assert (await at(moments["proposed"] - tick)).status_code == 404
    assert (await at(moments["proposed"])).json()["status"] == "proposed"
    assert (await at(moments["approved"] - tick)).json()["status"] == "proposed"
    assert (await at(moments["approved"])).json()["status"] == "approved"
    assert (await at(moments["notified"] - tick)).json()["status"] == "approved"
    assert (await at(moments["notified"])).json()["status"] == "notified"

    def confirmations(body: dict[str, Any]) -> dict[str, str | None]:
        return {t["platform_id"]: t["outcome"] for t in body["targets"]}

    before = (await at(moments["confirmed"] - tick)).json()
    after = (await at(moments["confirmed"])).json()
    assert confirmations(before) == {platform.id: None, other_platform.id: None}
    assert confirmations(after) == {platform.id: "removed", other_platform.id: None}

    # A platform sees a decision from its notification on, as it does today; a platform the
    # decision never targeted does not see it at all.
    assert (await at(moments["notified"] - tick, platform.headers)).status_code == 404
    assert (await at(moments["notified"], platform.headers)).status_code == 200
    assert (await at(moments["confirmed"], other_platform.headers)).status_code == 200
    assert (await at(moments["confirmed"], bystander.headers)).status_code == 404
    r = await client.get(path, params={"as_of": "yesterday"}, headers=admin)
    assert r.status_code == 400


async def test_incident_lists_as_of_show_each_incident_as_it_stood_in_every_order(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    """A list as of a moment (the model page's, the triage queue's orders, either direction)
    shows each incident in its state then, with its reporter and lineage flag, and leaves
    out those reported later."""
    base = await register_model(client, admin, f"org-{uniq}/listed-base")
    model = await register_model(
        client, admin, f"org-{uniq}/listed", base_model=base["name"], derivation="fine_tune"
    )
    body = {"category": "privacy", "severity": "high", "serious": True}
    body["serious_kind"] = "death_or_serious_harm"
    r = await client.post(
        "/v1/incidents",
        json={**body, "title": f"then {uniq}", "models": [base["name"]]},
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    moment = await conn.fetchval("SELECT clock_timestamp()")
    r = await client.post(
        f"/v1/incidents/{incident['id']}/transitions", json={"to": "triaged"}, headers=admin
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        "/v1/incidents",
        json={**body, "title": f"later {uniq}", "models": [model["name"]]},
        headers=admin,
    )
    assert r.status_code == 201, r.text

    now = datetime.now(UTC)
    # Read backwards, the page before a cursor past every incident in that order.
    past: dict[str, tuple[UUID, int | None]] = {
        "oldest": (UUID(int=2**128 - 1), None),
        "newest": (UUID(int=0), None),
        "deadline": (UUID(int=2**128 - 1), None),  # no deadline: after every deadline
        "severity": (UUID(int=2**128 - 1), 5),  # after "low"
    }
    for model_id in (None, UUID(str(model["id"]))):
        for sort in ("oldest", "newest", "deadline", "severity"):
            for backwards in (False, True):
                after, key = past[sort] if backwards else (None, None)
                listed = await list_incidents(
                    conn,
                    scope=Scope(),
                    now=now,
                    model_id=model_id,
                    text=uniq,
                    sort=sort,
                    sort_key=key,
                    after=after,
                    backwards=backwards,
                    limit=10,
                    as_of=moment,
                )
                assert [(i.title, i.status) for i in listed] == [(f"then {uniq}", "received")], (
                    model_id,
                    sort,
                    backwards,
                )
                [then] = listed
                assert then.reporter_platform_id == UUID(platform.id)
                assert then.inherited is (model_id is not None)
    # Today the same list shows both, the first triaged.
    listed = await list_incidents(
        conn, scope=Scope(), now=now, model_id=UUID(str(model["id"])), text=uniq, limit=10
    )
    assert [(i.title, i.status) for i in listed] == [
        (f"then {uniq}", "triaged"),
        (f"later {uniq}", "received"),
    ]
