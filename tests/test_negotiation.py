"""Content negotiation weighs the quality values in ``Accept`` on every route that offers
more than one format: the bulk export and the compliance report."""

from __future__ import annotations

import httpx
import pytest

# (Accept header, media type answered): the header order alone would pick the other one.
EXPORT_CASES = [
    ("text/csv;q=0.5, application/x-ndjson", "application/x-ndjson"),
    ("application/x-ndjson;q=0.1, text/csv", "text/csv"),
    ("text/csv;q=0.2, application/*;q=0.9", "application/x-ndjson"),
    ("application/jsonl;q=0.3, */*;q=0.8", "text/csv"),
]
REPORT_CASES = [
    ("text/csv;q=0.5, application/json", "application/json"),
    ("application/json;q=0.1, text/csv;q=0.9", "text/csv"),
    ("text/html;q=0.4, application/json", "application/json"),
]


@pytest.mark.parametrize(("accept", "media"), EXPORT_CASES)
async def test_an_export_is_served_in_the_format_accepted_most(
    client: httpx.AsyncClient, regulator: dict[str, str], accept: str, media: str
) -> None:
    r = await client.get("/v1/exports/models", headers={**regulator, "Accept": accept})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == media


@pytest.mark.parametrize(("accept", "media"), REPORT_CASES)
async def test_the_compliance_report_is_served_in_the_format_accepted_most(
    client: httpx.AsyncClient, regulator: dict[str, str], accept: str, media: str
) -> None:
    r = await client.get("/v1/reports/compliance", headers={**regulator, "Accept": accept})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == media


async def test_format_parameter_wins_and_an_unoffered_type_is_406_for_exports(
    client: httpx.AsyncClient, regulator: dict[str, str]
) -> None:
    r = await client.get(
        "/v1/exports/models",
        params={"format": "csv"},
        headers={**regulator, "Accept": "application/x-ndjson"},
    )
    assert r.headers["content-type"].startswith("text/csv")
    r = await client.get(
        "/v1/exports/models", headers={**regulator, "Accept": "application/xml;q=0.9"}
    )
    assert r.status_code == 406
    assert r.headers["content-type"].startswith("application/problem+json")
    # No Accept header, or an empty one: the default.
    r = await client.get("/v1/exports/models", headers={**regulator, "Accept": ""})
    assert r.headers["content-type"].startswith("text/csv")
