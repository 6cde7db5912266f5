"""A model's timeline across prevent, detect and respond, with lineage, filters and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import asyncpg
import httpx

from service.domain.ledger import record_event
from tests.conftest import PlatformFixture, register_model


async def _event(
    pool: asyncpg.Pool,
    *,
    stage: str,
    kind: str,
    model_id: object,
    platform_id: object = None,
    occurred_at: datetime | None = None,
) -> int:
    async with pool.acquire() as c, c.transaction():
        return await record_event(
            cast("asyncpg.Connection", c),
            stage=stage,
            kind=kind,
            subject_type="test",
            subject_id=UUID(str(model_id)),
            model_id=UUID(str(model_id)),
            platform_id=UUID(str(platform_id)) if platform_id else None,
            actor_id=None,
            occurred_at=occurred_at,
            state={"note": kind},
        )


async def _lineage(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    base = await register_model(client, admin, f"org-{uniq}/base")
    tune = await register_model(
        client, admin, f"org-{uniq}/tune", base_model=base["name"], derivation="fine_tune"
    )
    quant = await register_model(
        client, admin, f"org-{uniq}/quant", base_model=tune["name"], derivation="quantisation"
    )
    return base, tune, quant


async def test_history_spans_stages_and_lineage(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    auditor: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    base, tune, quant = await _lineage(client, admin, uniq)
    r = await client.post(
        "/v1/hostings",
        json={"model": tune["name"], "url": f"https://hub.example/{uniq}"},
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    await _event(pool, stage="detect", kind="incident.reported", model_id=base["id"])
    await _event(pool, stage="detect", kind="incident.triaged", model_id=tune["id"])
    await _event(pool, stage="respond", kind="decommission.approved", model_id=quant["id"])

    r = await client.get(f"/v1/models/{tune['id']}/history", headers=auditor)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    seqs = [e["seq"] for e in items]
    assert seqs == sorted(seqs, reverse=True)
    got = {(e["kind"], e["relation"], e["inherited"]) for e in items}
    assert {
        ("model.registered", "ancestor", True),
        ("incident.reported", "ancestor", True),
        ("model.registered", "self", False),
        ("hosting.recorded", "self", False),
        ("incident.triaged", "self", False),
        ("model.registered", "descendant", True),
        ("decommission.approved", "descendant", True),
    } <= got
    assert {e["stage"] for e in items} == {"prevent", "detect", "respond"}

    r = await client.get(
        f"/v1/models/{tune['id']}/history", params={"lineage": "false"}, headers=auditor
    )
    assert {e["relation"] for e in r.json()["items"]} == {"self"}

    r = await client.get(
        f"/v1/models/{tune['id']}/history", params={"stage": "detect"}, headers=auditor
    )
    assert {e["kind"] for e in r.json()["items"]} == {"incident.reported", "incident.triaged"}

    r = await client.get(
        f"/v1/models/{tune['id']}/history", params={"kind": "model.registered"}, headers=auditor
    )
    assert len(r.json()["items"]) == 3

    r = await client.get(
        f"/v1/models/{tune['id']}/history", params={"platform": platform.slug}, headers=auditor
    )
    assert [e["kind"] for e in r.json()["items"]] == ["hosting.recorded"]

    # A platform key sees its own platform's events only.
    r = await client.get(f"/v1/models/{tune['id']}/history", headers=platform.headers)
    assert r.status_code == 200
    assert {e["platform_id"] for e in r.json()["items"]} == {platform.id}


async def test_history_pages_both_ways_without_gaps_or_repeats(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str], uniq: str
) -> None:
    _, tune, _ = await _lineage(client, admin, uniq)
    for i in range(5):
        await _event(pool, stage="detect", kind=f"incident.step_{'abcde'[i]}", model_id=tune["id"])

    async def walk(order: str) -> list[int]:
        seqs: list[int] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"order": order, "limit": 2}
            if cursor:
                params["cursor"] = cursor
            r = await client.get(f"/v1/models/{tune['id']}/history", params=params, headers=admin)
            assert r.status_code == 200, r.text
            seqs += [e["seq"] for e in r.json()["items"]]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return seqs

    newest = await walk("newest")
    oldest = await walk("oldest")
    assert len(newest) == len(set(newest)) == 8  # 3 registrations + 5 incidents
    assert oldest == sorted(newest) == list(reversed(newest))


async def test_history_time_range_bounds_occurred_at(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str], uniq: str
) -> None:
    model = await register_model(client, admin, f"org-{uniq}/timed")
    day = datetime(2026, 3, 1, tzinfo=UTC)
    for offset in (0, 1, 2):
        await _event(
            pool,
            stage="detect",
            kind="incident.reported",
            model_id=model["id"],
            occurred_at=day + timedelta(days=offset),
        )
    r = await client.get(
        f"/v1/models/{model['id']}/history",
        params={
            "since": (day + timedelta(days=1)).isoformat(),
            "until": (day + timedelta(days=2)).isoformat(),
        },
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert [e["occurred_at"] for e in r.json()["items"]] == ["2026-03-02T00:00:00Z"]

    r = await client.get(
        f"/v1/models/{model['id']}/history",
        params={"since": day.isoformat(), "until": day.isoformat()},
        headers=admin,
    )
    assert r.status_code == 422


async def test_history_of_an_unknown_model_is_404(
    client: httpx.AsyncClient, auditor: dict[str, str]
) -> None:
    r = await client.get(f"/v1/models/{UUID(int=7)}/history", headers=auditor)
    assert r.status_code == 404


async def test_events_filter_order_and_range(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    regulator: dict[str, str],
    admin: dict[str, str],
    uniq: str,
) -> None:
    model = await register_model(client, admin, f"org-{uniq}/ledger")
    await _event(pool, stage="respond", kind="decision.made", model_id=model["id"])
    await _event(pool, stage="respond", kind="notification.sent", model_id=model["id"])
    r = await client.get(
        "/v1/events",
        params={"model_id": str(model["id"]), "order": "newest", "stage": "respond"},
        headers=regulator,
    )
    assert r.status_code == 200, r.text
    assert [e["kind"] for e in r.json()["items"]] == ["notification.sent", "decision.made"]
    r = await client.get(
        "/v1/events",
        params={"model_id": str(model["id"]), "kind": "decision.made"},
        headers=regulator,
    )
    assert [e["kind"] for e in r.json()["items"]] == ["decision.made"]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = await client.get(
        "/v1/events", params={"model_id": str(model["id"]), "since": future}, headers=regulator
    )
    assert r.json()["items"] == []


async def test_a_cursor_past_any_seq_is_refused(
    client: httpx.AsyncClient, auditor: dict[str, str], admin: dict[str, str], uniq: str
) -> None:
    model = await register_model(client, admin, f"org-{uniq}/cursor")
    for path in (f"/v1/models/{model['id']}/history", "/v1/events"):
        r = await client.get(path, params={"cursor": "__________8"}, headers=auditor)
        assert r.status_code == 400, r.text


async def test_an_event_about_several_models_is_in_each_history_once(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    auditor: dict[str, str],
    admin: dict[str, str],
    uniq: str,
) -> None:
    base, tune, quant = await _lineage(client, admin, uniq)
    other = await register_model(client, admin, f"org-{uniq}/unrelated")
    async with pool.acquire() as c, c.transaction():
        seq = await record_event(
            cast("asyncpg.Connection", c),
            stage="detect",
            kind="audit.completed",
            subject_type="audit",
            subject_id=UUID(str(other["id"])),
            model_id=UUID(str(other["id"])),
            actor_id=None,
            state={"model_ids": [str(other["id"]), str(tune["id"]), str(quant["id"])]},
            extra={"model_ids": [str(other["id"]), str(tune["id"])]},
        )
    for model, relation in ((other, "self"), (tune, "self"), (quant, "self"), (base, "descendant")):
        r = await client.get(f"/v1/models/{model['id']}/history", headers=auditor)
        assert r.status_code == 200, r.text
        found = [e for e in r.json()["items"] if e["seq"] == seq]
        assert [(e["relation"], e["inherited"]) for e in found] == [(relation, relation != "self")]
    r = await client.get(
        f"/v1/models/{quant['id']}/history", params={"stage": "detect"}, headers=auditor
    )
    assert [e["seq"] for e in r.json()["items"]] == [seq]


def test_event_columns_are_selected_in_the_order_events_are_built_from() -> None:
    from service.db.queries.ledger_tree import EVENT_COLUMNS, SERVED_EVENT_COLUMNS
    from service.schemas.events import Event

    assert tuple(c.strip() for c in EVENT_COLUMNS.split(",")) == Event.__struct_fields__
    served = [c.strip().split(" AS ")[-1] for c in SERVED_EVENT_COLUMNS.split(",")]
    assert tuple(served) == Event.__struct_fields__


async def test_every_combination_of_filters_agrees_with_filtering_the_whole_timeline(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    regulator: dict[str, str],
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    """Each set of filters is its own statement; each must select what its filters say."""
    model = await register_model(client, admin, f"org-{uniq}/filters")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(12):
        await _event(
            pool,
            stage=("prevent", "detect", "respond")[i % 3],
            kind=("a.one", "b.two")[i % 2],
            model_id=model["id"],
            platform_id=platform.id if i % 4 == 0 else None,
            occurred_at=start + timedelta(days=i),
        )

    async def read(path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        r = await client.get(path, params={"limit": "200", **params}, headers=regulator)
        assert r.status_code == 200, (params, r.text)
        return cast("list[dict[str, Any]]", r.json()["items"])

    history = f"/v1/models/{model['id']}/history"
    everything = await read(history, {"order": "oldest"})
    combos: list[dict[str, str]] = [
        {"stage": "detect"},
        {"kind": "b.two", "stage": "respond"},
        {"platform": platform.slug, "kind": "a.one"},
        {"since": (start + timedelta(days=3)).isoformat()},
        {"until": (start + timedelta(days=5)).isoformat(), "stage": "prevent"},
        {
            "since": (start + timedelta(days=2)).isoformat(),
            "until": (start + timedelta(days=9)).isoformat(),
            "kind": "a.one",
            "platform": platform.slug,
        },
    ]

    def keep(event: dict[str, Any], params: dict[str, str]) -> bool:
        occurred = datetime.fromisoformat(event["occurred_at"])
        return (
            event["stage"] == params.get("stage", event["stage"])
            and event["kind"] == params.get("kind", event["kind"])
            and ("platform" not in params or event["platform_id"] == platform.id)
            and ("since" not in params or occurred >= datetime.fromisoformat(params["since"]))
            and ("until" not in params or occurred < datetime.fromisoformat(params["until"]))
        )

    for params in combos:
        expected = [e["seq"] for e in everything if keep(e, params)]
        assert expected, params  # every combination selects something, and not everything
        assert len(expected) < len(everything), params
        for order, direction in (("oldest", 1), ("newest", -1)):
            got = await read(history, {**params, "order": order})
            assert [e["seq"] for e in got] == expected[::direction], (params, order)
            got = await read("/v1/events", {**params, "model_id": str(model["id"]), "order": order})
            assert [e["seq"] for e in got] == expected[::direction], (params, order)
