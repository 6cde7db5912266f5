"""The detect and respond events a platform sends: incidents and executed decommissions."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import httpx

from tests.conftest import PlatformFixture
from tests.helpers.webhooks import deliver, event, hosted, new_secret


async def _decision(
    conn: asyncpg.Connection, *, model: str, targets: list[tuple[str, str]]
) -> UUID:
    """A notified recall, with (platform slug, model) hostings as its targets."""
    decision_id: UUID = await conn.fetchval(
        """
        INSERT INTO decommissions (model_id, action, reason, effective_at, status)
        SELECT id, 'recall', 'unsafe outputs', now(), 'notified' FROM models WHERE name = $1
        RETURNING id
        """,
        model,
    )
    for slug, name in targets:
        await conn.execute(
            """
            INSERT INTO decommission_targets (decommission_id, hosting_id, platform_id,
                                              model_id, inherited)
            SELECT $1, h.id, h.platform_id, h.model_id, false
            FROM hostings h JOIN platforms p ON p.id = h.platform_id
            JOIN models m ON m.id = h.model_id
            WHERE p.slug = $2 AND m.name = $3
            """,
            decision_id,
            slug,
            name,
        )
    return decision_id


async def test_decommission_executed_confirms_the_target(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    model = f"org-{uniq}/recalled"
    assert (await deliver(client, platform.slug, secret, hosted(model))).status_code == 202
    decision = await _decision(conn, model=model, targets=[(platform.slug, model)])
    # After the proposal (a confirmation follows it) and not in the future.
    executed_at = datetime.now(UTC)
    body = event(
        "decommission.executed",
        {
            "decision_id": str(decision),
            "model": model,
            "outcome": "removed",
            "executed_at": executed_at.isoformat(),
        },
    )
    r = await deliver(client, platform.slug, secret, body)
    assert r.status_code == 202, r.text
    seqs = r.json()["events"]
    rows = await conn.fetch(
        "SELECT stage, kind, subject_id, payload FROM events WHERE seq = ANY($1::bigint[]) "
        "ORDER BY seq",
        seqs,
    )
    # This platform held the decision's only target, so its confirmation executes it.
    assert [(row["stage"], row["kind"]) for row in rows] == [
        ("prevent", "hosting.removed"),
        ("respond", "decommission.confirmed"),
        ("respond", "decommission.executed"),
    ]
    assert rows[1]["subject_id"] == decision
    assert rows[1]["payload"]["outcome"] == "removed"
    assert rows[2]["payload"]["state"]["status"] == "executed"
    confirmed = await conn.fetchval(
        "SELECT confirmed_at FROM decommission_targets WHERE decommission_id = $1", decision
    )
    assert confirmed == executed_at
    r = await client.get("/v1/hostings", params={"platform": platform.slug}, headers=admin)
    assert r.json()["items"][0]["status"] == "removed"


async def test_decommission_executed_for_unknown_decision_is_422(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    model = f"org-{uniq}/m"
    assert (await deliver(client, platform.slug, secret, hosted(model))).status_code == 202
    body = event(
        "decommission.executed",
        {"decision_id": str(uuid4()), "model": model, "outcome": "restricted"},
    )
    r = await deliver(client, platform.slug, secret, body)
    assert r.status_code == 422, r.text


async def test_decommission_executed_for_another_platforms_target_is_403(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    secret: str,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    model = f"org-{uniq}/m"
    other_secret = await new_secret(client, admin, other_platform.slug)
    assert (await deliver(client, platform.slug, secret, hosted(model))).status_code == 202
    r = await deliver(client, other_platform.slug, other_secret, hosted(model))
    assert r.status_code == 202
    decision = await _decision(conn, model=model, targets=[(other_platform.slug, model)])
    body = event(
        "decommission.executed",
        {"decision_id": str(decision), "model": model, "outcome": "removed"},
    )
    r = await deliver(client, platform.slug, secret, body)
    assert r.status_code == 403, r.text
    r = await client.get("/v1/hostings", params={"platform": platform.slug}, headers=admin)
    assert r.json()["items"][0]["status"] == "hosted"


async def test_incident_reported_records_a_webhook_incident(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    model = f"org-{uniq}/m"
    assert (await deliver(client, platform.slug, secret, hosted(model))).status_code == 202
    body = event(
        "incident.reported",
        {
            "title": "Model produces instructions for weapons",
            "category": "harmful_content",
            "severity": "high",
            "models": [model],
            "evidence_urls": ["https://hub.example/reports/1"],
        },
    )
    r = await deliver(client, platform.slug, secret, body)
    assert r.status_code == 202, r.text
    [seq] = r.json()["events"]
    row = await conn.fetchrow(
        "SELECT e.kind, e.payload, i.channel, i.reporter_platform_id FROM events e "
        "JOIN incidents i ON i.id = e.subject_id WHERE e.seq = $1",
        seq,
    )
    assert row is not None
    assert row["kind"] == "incident.reported"
    assert row["channel"] == "webhook"
    assert row["reporter_platform_id"] == UUID(platform.id)
    # The event names the delivery by id only: how it came (and so from whom) stays with the
    # record, out of a leaf anyone may read.
    assert set(row["payload"]["delivery"]) == {"id"}


async def test_incident_reported_with_unknown_fields_is_400(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str
) -> None:
    body = event(
        "incident.reported",
        {"title": "x", "category": "other", "severity": "low", "models": [], "mood": "bad"},
    )
    r = await deliver(client, platform.slug, secret, body)
    assert r.status_code == 400


async def test_incident_naming_another_platforms_hosting_is_403(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    secret: str,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    model = f"org-{uniq}/m"
    other_secret = await new_secret(client, admin, other_platform.slug)
    assert (
        await deliver(client, other_platform.slug, other_secret, hosted(model))
    ).status_code == 202
    r = await client.get("/v1/hostings", params={"platform": other_platform.slug}, headers=admin)
    [theirs] = r.json()["items"]
    body = event(
        "incident.reported",
        {"title": "t", "category": "other", "severity": "low", "hostings": [theirs["id"]]},
    )
    r = await deliver(client, platform.slug, secret, body)
    assert r.status_code == 403, r.text
    count = await conn.fetchval(
        "SELECT count(*) FROM incidents WHERE reporter_platform_id = $1", UUID(platform.id)
    )
    assert count == 0
