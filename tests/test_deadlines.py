"""EU AI Act Article 73 clocks: 2, 10 and 15 days from awareness, tested at the boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest

from service.domain.deadlines import compute_deadline, is_overdue, remaining_seconds
from tests.conftest import register_model

AWARE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("kind", "death", "widespread", "days"),
    [
        ("critical_infrastructure", False, False, 2),
        ("fundamental_rights", False, True, 2),
        # Widespread and a death: the shortest deadline wins.
        ("death_or_serious_harm", True, True, 2),
        ("death_or_serious_harm", True, False, 10),
        # Serious harm to health without a death is the 15-day case.
        ("death_or_serious_harm", False, False, 15),
        ("fundamental_rights", False, False, 15),
        ("property_or_environment", False, False, 15),
    ],
)
def test_deadline_days(kind: str, death: bool, widespread: bool, days: int) -> None:
    deadline = compute_deadline(
        serious=True, serious_kind=kind, death=death, widespread=widespread, aware_at=AWARE
    )
    assert deadline is not None
    assert deadline.days == days
    assert deadline.due_at == AWARE + timedelta(days=days)


def test_not_serious_has_no_clock() -> None:
    assert (
        compute_deadline(
            serious=False, serious_kind=None, death=False, widespread=False, aware_at=AWARE
        )
        is None
    )


@pytest.mark.parametrize("days", [2, 10, 15])
def test_overdue_boundary(days: int) -> None:
    kind = {2: "critical_infrastructure", 10: "death_or_serious_harm", 15: "fundamental_rights"}
    deadline = compute_deadline(
        serious=True, serious_kind=kind[days], death=days == 10, widespread=False, aware_at=AWARE
    )
    assert deadline is not None
    due = AWARE + timedelta(days=days)

    def overdue(now: datetime) -> bool:
        return is_overdue(deadline=deadline, clock=True, initial_report_at=None, now=now)

    def left(now: datetime) -> float | None:
        return remaining_seconds(deadline=deadline, clock=True, initial_report_at=None, now=now)

    # Exactly at the deadline the report is still on time; one microsecond later it is not.
    assert not overdue(due)
    assert left(due) == 0
    assert overdue(due + TICK)
    assert left(due + TICK) == pytest.approx(-1e-6)
    assert not overdue(due - TICK)


def test_reported_rejected_or_merged_incidents_are_never_overdue() -> None:
    deadline = compute_deadline(
        serious=True,
        serious_kind="critical_infrastructure",
        death=False,
        widespread=False,
        aware_at=AWARE,
    )
    late = AWARE + timedelta(days=30)
    assert not is_overdue(deadline=deadline, clock=True, initial_report_at=AWARE, now=late)
    # Without the clock (a rejected or merged incident: the row's article73_clock), never.
    assert not is_overdue(deadline=deadline, clock=False, initial_report_at=None, now=late)
    assert (
        remaining_seconds(deadline=deadline, clock=False, initial_report_at=None, now=late) is None
    )


async def test_overdue_filter_and_authority_report(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    name = f"acme/clock-{uniq}"
    model = await register_model(client, admin, name)
    now = datetime.now(UTC)

    async def report(aware_at: datetime, **fields: object) -> dict[str, Any]:
        r = await client.post(
            "/v1/incidents",
            json={
                "title": "clock",
                "category": "malfunction",
                "severity": "high",
                "models": [name],
                "aware_at": aware_at.isoformat(),
                **fields,
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
        return cast("dict[str, Any]", r.json())

    serious = {"serious": True, "serious_kind": "fundamental_rights"}
    on_time = await report(now - timedelta(days=15) + timedelta(minutes=5), **serious)
    late = await report(now - timedelta(days=15) - timedelta(minutes=5), **serious)
    plain = await report(now - timedelta(days=40))
    assert on_time["overdue"] is False
    assert on_time["remaining_seconds"] > 0
    assert late["overdue"] is True
    assert late["remaining_seconds"] < 0
    assert plain["deadline"] is None
    assert plain["overdue"] is False

    async def listed(**params: str) -> set[str]:
        r = await client.get(
            "/v1/incidents", params={"model_id": str(model["id"]), **params}, headers=admin
        )
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    assert await listed(overdue="true") == {late["id"]}
    assert await listed(overdue="false") == {on_time["id"], plain["id"]}

    # The initial report to the authority stops the clock; a second one is a conflict.
    r = await client.post(
        f"/v1/incidents/{late['id']}/authority-reports", json={"kind": "initial"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["overdue"] is False
    assert r.json()["authority_initial_report_at"] is not None
    r = await client.post(
        f"/v1/incidents/{late['id']}/authority-reports", json={"kind": "initial"}, headers=admin
    )
    assert r.status_code == 409
    r = await client.post(
        f"/v1/incidents/{late['id']}/authority-reports", json={"kind": "complete"}, headers=admin
    )
    assert r.status_code == 200
    assert r.json()["authority_complete_report_at"] is not None
    assert await listed(overdue="true") == set()
    # Not serious: nothing to report.
    r = await client.post(
        f"/v1/incidents/{plain['id']}/authority-reports", json={"kind": "initial"}, headers=admin
    )
    assert r.status_code == 409


async def test_reclassifying_moves_the_deadline(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    name = f"acme/reclass-{uniq}"
    await register_model(client, admin, name)
    aware = datetime.now(UTC) - timedelta(days=1)
    r = await client.post(
        "/v1/incidents",
        json={
            "title": "x",
            "category": "misuse",
            "severity": "high",
            "models": [name],
            "aware_at": aware.isoformat(),
            "serious": True,
            "serious_kind": "fundamental_rights",
        },
        headers=admin,
    )
    incident = r.json()
    assert incident["deadline"]["days"] == 15
    r = await client.patch(
        f"/v1/incidents/{incident['id']}",
        json={"serious_kind": "death_or_serious_harm", "death": True},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["deadline"]["days"] == 10
    assert r.json()["deadline"]["basis"] == "art73(4) death"
    r = await client.patch(
        f"/v1/incidents/{incident['id']}", json={"widespread": True}, headers=admin
    )
    assert r.json()["deadline"]["days"] == 2
    # A death needs the death_or_serious_harm kind.
    r = await client.patch(
        f"/v1/incidents/{incident['id']}",
        json={"serious_kind": "fundamental_rights"},
        headers=admin,
    )
    assert r.status_code == 422
