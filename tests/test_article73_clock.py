"""One rule decides whether the Article 73 clock applies (serious, neither rejected nor a
duplicate), and the incident view, ``?overdue=true`` and the compliance report all follow
it; an authority report recorded after the deadline with an earlier claimed time is
counted apart, not as met."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx

from tests.conftest import PlatformFixture, register_model
from tests.helpers.notices import host

SERIOUS = {"serious": True, "serious_kind": "fundamental_rights"}  # 15 days


async def test_the_clock_rule_is_one_on_view_filter_and_report(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    name = f"acme/clock-rule-{uniq}"
    model = await register_model(client, admin, name)
    hosting_id = await host(client, admin, name, platform)
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=20)  # due 5 days ago
    lately = now - timedelta(days=1)  # due in 14 days

    async def report(aware_at: datetime) -> dict[str, Any]:
        r = await client.post(
            "/v1/incidents",
            json={
                "title": "clock",
                "category": "malfunction",
                "severity": "high",
                "models": [name],
                "hostings": [hosting_id],
                "aware_at": aware_at.isoformat(),
                **SERIOUS,
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
        return cast("dict[str, Any]", r.json())

    async def move(incident: dict[str, Any], **body: object) -> dict[str, Any]:
        r = await client.post(
            f"/v1/incidents/{incident['id']}/transitions", json=body, headers=admin
        )
        assert r.status_code == 200, r.text
        return cast("dict[str, Any]", r.json())

    async def authority(incident: dict[str, Any], **body: object) -> dict[str, Any]:
        r = await client.post(
            f"/v1/incidents/{incident['id']}/authority-reports",
            json={"kind": "initial", **body},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        return cast("dict[str, Any]", r.json())

    missed = await report(long_ago)
    rejected = await move(await report(long_ago), to="rejected", reason="not an incident")
    duplicate = await move(await report(long_ago), to="duplicate", duplicate_of=missed["id"])
    # Claimed sent a day after awareness (on time), recorded only now, after the deadline.
    claimed = long_ago + timedelta(days=1)
    recorded_late = await authority(await report(long_ago), at=claimed.isoformat())
    met = await authority(await report(lately))
    pending = await report(lately)

    assert missed["article73_clock"] is True
    assert missed["overdue"] is True
    for no_clock in (rejected, duplicate):
        assert no_clock["article73_clock"] is False
        assert no_clock["overdue"] is False
        assert no_clock["remaining_seconds"] is None
    assert datetime.fromisoformat(recorded_late["authority_initial_report_at"]) == claimed
    recorded_at = datetime.fromisoformat(recorded_late["authority_initial_report_recorded_at"])
    assert recorded_at >= now
    assert recorded_late["overdue"] is False
    assert pending["overdue"] is False

    # The overdue filter is the same rule, in SQL.
    r = await client.get(
        "/v1/incidents", params={"model_id": str(model["id"]), "overdue": "true"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == [missed["id"]]
    r = await client.get(
        "/v1/incidents", params={"model_id": str(model["id"]), "overdue": "false"}, headers=admin
    )
    assert {i["id"] for i in r.json()["items"]} == {
        rejected["id"],
        duplicate["id"],
        recorded_late["id"],
        met["id"],
        pending["id"],
    }

    # And so is the compliance report's: the rejected incident is neither missed nor
    # pending, the late recording is neither met nor missed.
    period = {
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(days=1)).isoformat(),
        "platform": platform.slug,
    }
    r = await client.get("/v1/reports/compliance", params=period, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["overall"]["detect"]["current"]["deadlines"] == {
        "serious": 5,
        "met": 1,
        "recorded_late": 1,
        "missed": 1,
        "pending": 1,
    }
