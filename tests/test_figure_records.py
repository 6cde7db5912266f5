"""Each compliance figure names the export that returns exactly the records it counts: the
test follows every export URL the report gives (overall and per platform) and counts the
rows it returns against the figure."""

from __future__ import annotations

from typing import Any

import msgspec

from tests.helpers.compliance import PERIOD, Seeded, compliance_report


async def _rows(seeded: Seeded, url: str) -> list[dict[str, Any]]:
    client, headers = seeded
    # (httpx's ``params=`` would replace the URL's query rather than add to it.)
    r = await client.get(url + ("&" if "?" in url else "?") + "format=jsonl", headers=headers)
    assert r.status_code == 200, (url, r.text)
    return [msgspec.json.decode(line) for line in r.content.splitlines() if line]


def _expected(scope: dict[str, Any], key: str, rows: list[dict[str, Any]]) -> tuple[Any, Any]:
    """(what the figure says, what the exported rows say) for one figure."""
    prevent, current, respond = scope["prevent"], scope["detect"]["current"], scope["respond"]
    parts = key.split(".")
    if key == "prevent.hostings":
        return prevent["hostings"], len(rows)
    if key == "prevent.models":
        return prevent["models"], len({r["model_id"] for r in rows})
    if key == "prevent.downloads":
        return prevent["downloads"], sum(r["downloads"] or 0 for r in rows)
    if parts[:2] == ["prevent", "documentation"]:
        return prevent["documentation"][parts[2]]["count"], len(rows)
    if parts[:2] == ["prevent", "watch_list"]:
        watched = next(m for m in prevent["watch_list"] if m["model"] == parts[2])
        if len(parts) == 3:
            return watched["downloads"], sum(r["downloads"] or 0 for r in rows)
        # A gap: at least one of the model's hostings lacks the element, and each row does.
        gap = parts[4]
        return True, bool(rows) and all(not r[f"{gap}_present"] for r in rows)
    if key == "detect.current.reported":
        return current["reported"], len(rows)
    if parts[:2] == ["detect", "current"] and parts[2].startswith("time_to_"):
        return current["reported"], len(rows)
    if parts[:2] == ["detect", "current"] and parts[2] in ("by_category", "by_status"):
        return current[parts[2]][parts[3]], len(rows)
    if parts[:3] == ["detect", "current", "deadlines"]:
        return current["deadlines"][parts[3]], len(rows)
    if key == "respond.proposed":
        return respond["proposed"], len(rows)
    if parts[0] == "respond" and parts[1] in ("by_action", "by_status"):
        return respond[parts[1]][parts[2]], len(rows)
    raise AssertionError(f"no check for {key}")


async def test_every_figure_export_returns_exactly_the_records_it_counts(
    seeded: Seeded,
) -> None:
    report = await compliance_report(seeded)
    scopes = [report["overall"], *report["platforms"]]
    assert [s["platform"] for s in scopes] == [None, "forge", "hub"]
    checked = 0
    for scope in scopes:
        records = scope["records"]
        # The figures the dashboard shows each have their export.
        for key in (
            "prevent.hostings",
            "prevent.documentation.model_card",
            "detect.current.reported",
            "detect.current.deadlines.serious",
            "detect.current.deadlines.met",
            "detect.current.deadlines.missed",
            "detect.current.deadlines.pending",
            "respond.proposed",
        ):
            assert records[key]["export"].startswith("/v1/exports/"), key
        for key, where in records.items():
            if "export" not in where:
                continue
            rows = await _rows(seeded, where["export"])
            figure, counted = _expected(scope, key, rows)
            assert figure == counted, (scope["platform"], key, where["export"])
            checked += 1
    assert checked > 40
    # Not every figure is zero: the seed has met, missed, duplicates and categories.
    overall = report["overall"]["detect"]["current"]
    assert overall["deadlines"]["met"] == 1
    # Judged at the period's end: one deadline had passed by then, one was still to come.
    assert overall["deadlines"]["missed"] == 1
    assert overall["deadlines"]["pending"] == 1
    assert overall["by_status"]["duplicate"] == 1


async def test_the_figure_exports_are_filters_a_reader_can_use(seeded: Seeded) -> None:
    report = await compliance_report(seeded)
    records = report["overall"]["records"]
    assert records["detect.current.deadlines.missed"] == {
        "export": "/v1/exports/incidents?from=2026-01-01T00%3A00%3A00Z"
        "&to=2026-02-01T00%3A00%3A00Z&article73=missed",
        "console": "/console/incidents?serious=true&overdue=true",
    }
    hub = report["platforms"][1]["records"]
    assert hub["prevent.documentation.safety_testing"]["export"] == (
        "/v1/exports/hostings?status=hosted&to=2026-02-01T00%3A00%3A00Z&platform=hub"
        "&documented=safety_testing"
    )
    # Without ``duplicates=false`` the merged duplicate is exported too: one more row.
    everything = await _rows(
        seeded, f"/v1/exports/incidents?from={PERIOD['from']}&to={PERIOD['to']}"
    )
    assert len(everything) == report["overall"]["detect"]["current"]["reported"] + 1


async def test_a_dataset_refuses_filters_it_has_no_field_for(seeded: Seeded) -> None:
    client, headers = seeded
    r = await client.get("/v1/exports/events", params={"status": "hosted"}, headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "'status'" in r.json()["detail"]
    r = await client.get("/v1/exports/hostings", params={"article73": "met"}, headers=headers)
    assert r.status_code == 422, r.text
    r = await client.get("/v1/exports/hostings", params={"documented": "nonsense"}, headers=headers)
    assert r.status_code == 400, r.text
    r = await client.get("/v1/exports/incidents", params={"serious": "maybe"}, headers=headers)
    assert r.status_code == 400, r.text


async def test_the_series_count_the_reports_incidents_by_week_and_time_to_triage(
    seeded: Seeded,
) -> None:
    report = await compliance_report(seeded)
    series = report["series"]
    # January 2026 touches five weeks (Mondays, UTC); the merged duplicate is left out.
    assert series["incidents_per_week"] == [
        {"week": "2025-12-29", "by_category": {}},
        {
            "week": "2026-01-05",
            "by_category": {"harmful_content": 1, "security_vulnerability": 1},
        },
        {"week": "2026-01-12", "by_category": {"bias_discrimination": 1}},
        {"week": "2026-01-19", "by_category": {}},
        {"week": "2026-01-26", "by_category": {"misuse": 1}},
    ]
    # The weeks add up to the report's own count by category.
    totals: dict[str, int] = {}
    for week in series["incidents_per_week"]:
        for category, n in week["by_category"].items():
            totals[category] = totals.get(category, 0) + n
    assert totals == report["overall"]["detect"]["current"]["by_category"]
    # Triage took 1 h, 3 h and 5 h.
    assert [
        (b["from_seconds"], b["to_seconds"], b["incidents"]) for b in series["time_to_triage"]
    ] == [
        (0, 3600, 0),
        (3600, 14400, 2),
        (14400, 86400, 1),
        (86400, 259200, 0),
        (259200, 604800, 0),
        (604800, None, 0),
    ]
    # Narrowed to a platform, the series narrow too: forge reported only R-3.
    forge = await compliance_report(seeded, platform="forge")
    assert [w["by_category"] for w in forge["series"]["incidents_per_week"]][2] == {
        "bias_discrimination": 1
    }
    assert sum(b["incidents"] for b in forge["series"]["time_to_triage"]) == 1
