"""The compliance report, checked figure by figure against values computed by hand.

The report covers the whole registry, so this test seeds a database of its own, with
January 2026 as the period and December 2025 as the previous one.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

import asyncpg
import msgspec

from service.db.queries.exports import FORMULA_STARTS
from service.domain.compliance import render_csv
from service.schemas.compliance import ComplianceReport
from tests.helpers.compliance import IDS, PERIOD, Seeded, compliance_report

DOCS_ALL = {
    "model_card": {"count": 4, "share": 0.8, "download_share": 0.97},
    "safety_testing": {"count": 2, "share": 0.4, "download_share": 0.91},
    "risk_analysis": {"count": 1, "share": 0.2, "download_share": 0.01},
    "use_guidance": {"count": 1, "share": 0.2, "download_share": 0.01},
}
M1, M2, M3 = (f"00000000-0000-7000-8000-00000000000{i}" for i in (1, 2, 3))
GAPS3 = ["safety_testing", "risk_analysis", "use_guidance"]


async def test_prevent_figures(seeded: Seeded) -> None:
    report = await compliance_report(seeded)
    prevent = report["overall"]["prevent"]
    assert (prevent["hostings"], prevent["models"], prevent["downloads"]) == (5, 4, 1000)
    assert prevent["documentation"] == DOCS_ALL
    # m1 900 + m2 60 + m3 30 = 990 = 99% of 1000: m4 (10) is not needed to reach it.
    assert prevent["watch_list"] == [
        {"model_id": M1, "model": "acme/m1", "downloads": 900, "share": 0.9, "gaps": GAPS3},
        {"model_id": M2, "model": "acme/m2", "downloads": 60, "share": 0.06, "gaps": GAPS3},
        {
            "model_id": M3,
            "model": "acme/m3",
            "downloads": 30,
            "share": 0.03,
            "gaps": ["model_card", *GAPS3],
        },
    ]
    hub = await compliance_report(seeded, platform="hub")
    prevent = hub["overall"]["prevent"]
    assert (prevent["hostings"], prevent["models"], prevent["downloads"]) == (4, 4, 1000)
    assert prevent["documentation"]["model_card"] == {
        "count": 3,
        "share": 0.75,
        "download_share": 0.97,
    }
    # On the hub alone, m1 has its safety testing evidence.
    assert prevent["watch_list"][0]["gaps"] == ["risk_analysis", "use_guidance"]
    assert hub["platforms"] == []


async def test_detect_figures(seeded: Seeded) -> None:
    detect = (await compliance_report(seeded))["overall"]["detect"]
    current = detect["current"]
    assert current["reported"] == 4
    assert current["by_status"] == {
        "closed": 1,
        "mitigated": 1,
        "triaged": 1,
        "duplicate": 1,
        "received": 1,
    }
    assert current["by_category"] == {
        "harmful_content": 1,
        "security_vulnerability": 1,
        "bias_discrimination": 1,
        "misuse": 1,
    }
    assert current["by_severity"] == {"critical": 1, "high": 2, "low": 1}
    # i1 reported a day before its 2-day deadline; i2 two days after its 15-day one; i6 (a
    # death, 10 days) not yet at the period's end, when its deadline was still to come: the
    # report is as of `to`, so it stays pending in January's report however late it is now.
    assert current["deadlines"] == {
        "serious": 3,
        "met": 1,
        "recorded_late": 0,
        "missed": 1,
        "pending": 1,
    }
    assert current["time_to_triage"] == {"p50_seconds": 10800.0, "p90_seconds": 16560.0}
    assert current["time_to_mitigation"] == {"p50_seconds": 54000.0, "p90_seconds": 68400.0}
    assert current["time_to_close"] == {"p50_seconds": 360000.0, "p90_seconds": 360000.0}
    previous = detect["previous"]
    assert previous["reported"] == 1
    assert previous["by_category"] == {"malfunction": 1}
    assert previous["time_to_triage"] == {"p50_seconds": None, "p90_seconds": None}
    assert detect["change"]["reported"] == 3.0
    assert detect["change"]["serious"] == 3.0
    assert detect["change"]["deadlines_missed"] == 1.0
    assert detect["change"]["time_to_triage_p50_seconds"] is None

    hub = (await compliance_report(seeded, platform="hub"))["overall"]["detect"]["current"]
    assert hub["reported"] == 3
    forge = (await compliance_report(seeded, platform="forge"))["overall"]["detect"]["current"]
    assert forge["reported"] == 1
    assert forge["by_category"] == {"bias_discrimination": 1}


async def test_audit_and_respond_figures(
    seeded: Seeded,
) -> None:
    overall = (await compliance_report(seeded))["overall"]
    assert overall["audits"] == {
        "completed": 2,
        "outcomes": {"fail": 1, "pass": 1},
        "open_findings_by_severity": {"high": 1, "critical": 1},
    }
    respond = overall["respond"]
    assert respond["proposed"] == 2
    assert respond["by_action"] == {"recall": 1, "restrict": 1}
    assert respond["by_status"] == {"executed": 1, "notified": 1}
    assert respond["time_to_execution"] == {"p50_seconds": 172800.0, "p90_seconds": 172800.0}
    assert respond["overdue_platforms"] == [
        {
            "platform": "hub",
            "decisions": 1,
            "hostings": 1,
            "oldest_deadline": "2026-01-20T00:00:00Z",
        }
    ]
    forge = (await compliance_report(seeded, platform="forge"))["overall"]
    assert forge["audits"] == {
        "completed": 2,
        "outcomes": {"fail": 1, "pass": 1},
        "open_findings_by_severity": {"high": 1},
    }
    assert forge["respond"]["proposed"] == 1
    assert forge["respond"]["overdue_platforms"] == []


async def test_per_platform_breakdown_and_renderings(
    seeded: Seeded,
) -> None:
    report = await compliance_report(seeded)
    assert [p["platform"] for p in report["platforms"]] == ["forge", "hub"]
    hub = await compliance_report(seeded, platform="hub")
    assert report["platforms"][1]["prevent"] == hub["overall"]["prevent"]
    assert report["previous_from"] == "2025-12-01T00:00:00Z"

    client, headers = seeded
    r = await client.get(
        "/v1/reports/compliance", params=PERIOD, headers={**headers, "Accept": "text/csv"}
    )
    assert r.headers["content-type"].startswith("text/csv")
    rows = {(s, m): v for s, m, v in csv.reader(io.StringIO(r.text, newline=""))}
    assert rows[("(all)", "prevent.downloads")] == "1000"
    assert rows[("hub", "detect.current.reported")] == "3"
    assert rows[("(all)", "prevent.watch_list[2].model")] == "acme/m3"

    # The figures' records travel in JSON only, not as CSV rows.
    assert not any(m.startswith("records.") for _, m in rows)


async def test_access_and_bad_input(seeded: Seeded) -> None:
    client, headers = seeded
    assert (await client.get("/v1/reports/compliance")).status_code == 401
    r = await client.get(
        "/v1/reports/compliance",
        params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        headers=headers,
    )
    assert r.status_code == 422
    r = await client.get("/v1/reports/compliance", params={"platform": "nowhere"}, headers=headers)
    assert r.status_code == 404
    r = await client.get("/v1/reports/compliance", params={"from": "soon"}, headers=headers)
    assert r.status_code == 400
    # Found by fuzzing: a previous period of the same length would begin before year 1.
    r = await client.get(
        "/v1/reports/compliance", params={"from": "0414-12-06T00:09:13+12:57"}, headers=headers
    )
    assert r.status_code == 422, r.text
    # Without a period the report covers the last 30 days.
    r = await client.get("/v1/reports/compliance", headers=headers)
    body = r.json()
    span = datetime.fromisoformat(body["period_to"]) - datetime.fromisoformat(body["period_from"])
    assert span.days == 30


async def test_the_csv_rendering_neutralises_formulas_and_keeps_numbers(
    seeded: Seeded,
) -> None:
    """Text cells that begin like a formula get a leading ``'``; numbers, negative ones
    too, are written as they are."""
    client, headers = seeded
    r = await client.get(
        "/v1/reports/compliance", params={**PERIOD, "format": "csv"}, headers=headers
    )
    served = list(csv.reader(io.StringIO(r.text, newline="")))
    assert not [cell for row in served for cell in row if cell.startswith(FORMULA_STARTS)]

    # No text the API accepts reaches the report beginning like a formula today (model names
    # and slugs are patterned), so a hostile name is put into a real report.
    report = msgspec.json.decode(
        (await client.get("/v1/reports/compliance", params=PERIOD, headers=headers)).content,
        type=ComplianceReport,
    )
    prevent = report.overall.prevent
    watched = msgspec.structs.replace(
        prevent.watch_list[0], model='=HYPERLINK("https://evil.example")', downloads=-5
    )
    hostile = msgspec.structs.replace(
        report,
        overall=msgspec.structs.replace(
            report.overall,
            prevent=msgspec.structs.replace(prevent, watch_list=[watched]),
        ),
    )
    rows = list(csv.reader(io.StringIO(render_csv(hostile).decode(), newline="")))
    cells = {(scope, metric): value for scope, metric, value in rows[1:]}
    assert cells[("(all)", "prevent.watch_list[0].model")] == '\'=HYPERLINK("https://evil.example")'
    assert cells[("(all)", "prevent.watch_list[0].downloads")] == "-5"


async def test_each_platform_in_the_breakdown_has_its_own_report_figures(
    seeded: Seeded, seeded_url: str
) -> None:
    """The whole registry's report counts every platform's figures in one pass: each
    platform's part of it is exactly what that platform's own report says, also for an
    incident on a platform only through a hosting it names, and counted once on the
    platform that both reported it and hosts what it names."""
    conn = await asyncpg.connect(seeded_url)
    try:
        await conn.execute(
            "INSERT INTO incident_hostings (incident_id, hosting_id) VALUES ($1, $2), ($3, $2)",
            IDS["i3"],
            IDS["hub_m1"],
            IDS["i1"],
        )
        report = await compliance_report(seeded)
        assert [p["platform"] for p in report["platforms"]] == ["forge", "hub"]
        for scope in report["platforms"]:
            own = await compliance_report(seeded, platform=scope["platform"])
            assert scope == own["overall"], scope["platform"]
        hub = report["platforms"][1]["detect"]["current"]
        # i1, i2 and i6 as reported by the hub, and now i3 (the forge's) naming a hub hosting.
        assert hub["reported"] == 4
        assert hub["by_category"]["harmful_content"] == 1
        assert report["platforms"][0]["detect"]["current"]["reported"] == 1
    finally:
        await conn.execute(
            "DELETE FROM incident_hostings WHERE hosting_id = $1 AND incident_id = ANY($2::uuid[])",
            IDS["hub_m1"],
            [IDS["i3"], IDS["i1"]],
        )
        await conn.close()
