"""The compliance report for a past period is a function of the ledger up to its end.

Records are written through the API, the report for a period ending now is taken, then
every kind of record the report counts is changed through the API after the period (a new
hosting, documentation evidence, downloads, an incident's transition, a new decision, a
platform's confirmation); the same request must give the same figures, byte for byte.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import PlatformFixture, register_model
from tests.helpers.notices import admin_headers, confirm_target, decide

pytestmark = pytest.mark.usefixtures("pool")


async def _report(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, str], fmt: str
) -> bytes:
    r = await client.get(
        "/v1/reports/compliance", params={**params, "format": fmt}, headers=headers
    )
    assert r.status_code == 200, r.text
    return r.content


def _figures(body: bytes) -> dict[str, Any]:
    """The JSON report without the moment it was generated, the one field meant to differ."""
    import json

    report: dict[str, Any] = json.loads(body)
    report.pop("generated_at")
    return report


async def test_a_past_period_gives_the_same_report_after_later_changes(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    model = await register_model(client, admin, f"org-{uniq}/before")
    r = await client.post(
        "/v1/hostings",
        json={"model": model["name"], "url": f"https://hub.example/{uniq}", "downloads": 100},
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    hosting = r.json()
    r = await client.post(
        "/v1/incidents",
        json={
            "title": "Leaks prompts",
            "category": "privacy",
            "severity": "high",
            "models": [model["name"]],
        },
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    second = await admin_headers(pool)
    decision = await decide(client, admin, second, str(model["name"]))
    await asyncio.sleep(0.01)
    until = datetime.now(UTC)
    await asyncio.sleep(0.01)
    period = {
        "from": (until - timedelta(hours=1)).isoformat(),
        "to": until.isoformat(),
    }
    scopes = [{**period, "platform": platform.slug}, period]
    before = {
        (i, fmt): await _report(client, regulator, params, fmt)
        for i, params in enumerate(scopes)
        for fmt in ("json", "csv")
    }
    mine = _figures(before[(0, "json")])["overall"]
    assert mine["prevent"]["hostings"] == 1
    assert mine["prevent"]["documentation"]["model_card"]["count"] == 0
    assert mine["detect"]["current"]["by_status"] == {"received": 1}
    assert mine["respond"]["by_status"] == {"notified": 1}

    # After the period: every kind of change the report reads.
    other = await register_model(client, admin, f"org-{uniq}/after")
    r = await client.post(
        "/v1/hostings",
        json={"model": other["name"], "url": f"https://hub.example/{uniq}-2", "downloads": 5},
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    r = await client.patch(
        f"/v1/hostings/{hosting['id']}",
        json={
            "downloads": 900,
            "documentation": {
                "model_card": {"present": True, "url": f"https://hub.example/{uniq}/card"}
            },
        },
        headers=platform.headers,
    )
    assert r.status_code == 200, r.text
    # Triaged, as claimed, within the period; but recorded after it.
    triaged = datetime.fromisoformat(incident["reported_at"]) + timedelta(microseconds=1)
    assert triaged < until
    r = await client.post(
        f"/v1/incidents/{incident['id']}/transitions",
        json={"to": "triaged", "at": triaged.isoformat()},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    await confirm_target(pool, decision, decision["targets"][0])
    await decide(client, admin, second, str(other["name"]))

    for (i, fmt), body in before.items():
        again = await _report(client, regulator, scopes[i], fmt)
        if fmt == "json":
            assert _figures(again) == _figures(body), scopes[i]
        else:
            assert again == body, scopes[i]

    # The same scope up to now does see the changes: the comparison above can fail.
    now = {"from": period["from"], "to": datetime.now(UTC).isoformat()}
    later = _figures(await _report(client, regulator, {**now, "platform": platform.slug}, "json"))[
        "overall"
    ]
    assert later["prevent"]["hostings"] == 2
    assert later["prevent"]["documentation"]["model_card"]["count"] == 1
    assert later["detect"]["current"]["by_status"] == {"triaged": 1}
    assert later["respond"]["proposed"] == 2


@pytest.mark.parametrize(
    ("params", "key"),
    [
        # The previous period would begin before year 1.
        ({"from": "0001-06-01T00:00:00Z", "to": "0002-06-01T00:00:00Z"}, "from"),
        ({"from": "0414-12-06T00:09:13+12:57"}, "from"),
        # An offset that takes the start before year 1 in UTC.
        ({"from": "0001-01-01T00:00:00+01:00", "to": "0001-01-05T00:00:00Z"}, "from"),
        # The last representable moments: nothing can follow them, nor be converted to UTC.
        ({"from": "9999-12-01T00:00:00Z", "to": "9999-12-31T23:59:59.999999Z"}, "to"),
        ({"from": "9999-12-01T00:00:00Z", "to": "9999-12-31T23:00:00-05:00"}, "to"),
        ({"to": "0001-01-10T00:00:00Z"}, "to"),
    ],
)
async def test_a_period_outside_the_calendar_is_a_422_naming_the_bound(
    client: httpx.AsyncClient, regulator: dict[str, str], params: dict[str, str], key: str
) -> None:
    r = await client.get("/v1/reports/compliance", params=params, headers=regulator)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert key in r.text
