"""The compliance report as a PDF: the dashboard's HTML printed by the system's Chromium,
from the command line and from the API, read back with ``pdftotext`` (Debian's
poppler-utils) so the numbers in it are checked, not only its existence."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import httpx
from litestar import Litestar

from service.app import create_app
from service.db.pool import create_pool
from service.settings import Settings
from tests.helpers.cli import cli
from tests.helpers.compliance import PERIOD, Seeded, compliance_report, pdf_text


def assert_report_numbers(text: str, report: dict[str, Any]) -> None:
    """The printed page carries the report's figures for the period."""
    overall = report["overall"]
    assert "Compliance dashboard" in text
    assert "Period 2026-01-01 00:00 UTC to 2026-02-01 00:00 UTC" in text
    prevent = overall["prevent"]
    assert f"{prevent['hostings']} hostings of {prevent['models']} models" in text
    assert f"{prevent['downloads']} downloads" in text
    for watched in prevent["watch_list"]:
        assert watched["model"] in text
    deadlines = overall["detect"]["current"]["deadlines"]
    lines = [" ".join(line.split()) for line in text.splitlines()]
    for outcome in ("met", "missed", "pending"):
        label = f"Deadline {outcome}"
        row = next(line for line in lines if line.startswith(label))
        # The first number after the label is this period's count.
        assert row.split()[2] == str(deadlines[outcome]), row
    # The navigation and the download button are not printed.
    assert "Download PDF" not in text
    assert "Sign out" not in text


async def test_the_command_line_prints_the_dashboard_as_pdf(
    seeded: Seeded, seeded_url: str, tmp_path: Path
) -> None:
    report = await compliance_report(seeded)
    out = tmp_path / "compliance.pdf"
    result = cli(
        seeded_url, "report", "--pdf", str(out), "--from", "2026-01-01", "--to", "2026-01-31"
    )
    assert str(out) in result.stdout
    assert_report_numbers(pdf_text(out.read_bytes(), tmp_path), report)


def test_the_command_line_says_when_there_is_no_chromium(seeded_url: str, tmp_path: Path) -> None:
    out = tmp_path / "compliance.pdf"
    result = cli(
        seeded_url,
        "report",
        "--pdf",
        str(out),
        check=False,
        env={"REGISTRY_CHROMIUM_PATH": str(tmp_path / "no-chromium")},
    )
    assert result.returncode == 1
    assert "needs Chromium" in result.stderr
    assert "REGISTRY_CHROMIUM_PATH" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


async def test_the_api_serves_the_same_pdf(seeded: Seeded, tmp_path: Path) -> None:
    client, headers = seeded
    report = await compliance_report(seeded)
    r = await client.get(
        "/v1/reports/compliance",
        params={"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z", "format": "pdf"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert "compliance-2026-01-01-to-2026-01-31.pdf" in r.headers["content-disposition"]
    assert_report_numbers(pdf_text(r.content, tmp_path), report)
    # By Accept too; and the PDF covers every platform, so a platform is refused.
    r2 = await client.get(
        "/v1/reports/compliance", params=PERIOD, headers={**headers, "Accept": "application/pdf"}
    )
    assert r2.headers["content-type"] == "application/pdf"
    r3 = await client.get(
        "/v1/reports/compliance",
        params={**PERIOD, "format": "pdf", "platform": "hub"},
        headers=headers,
    )
    assert r3.status_code == 422, r3.text


async def test_without_chromium_the_api_answers_503(seeded: Seeded, seeded_url: str) -> None:
    _, headers = seeded
    settings = Settings(database_url=seeded_url, chromium_path="/nonexistent/chromium")
    pool = await create_pool(settings, seeded_url)
    try:
        app: Litestar = create_app(settings, pool=pool)
        transport = httpx.ASGITransport(app=cast("Any", app))
        async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as c:
            r = await c.get(
                "/v1/reports/compliance", params={**PERIOD, "format": "pdf"}, headers=headers
            )
    finally:
        await pool.close()
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "REGISTRY_CHROMIUM_PATH" in r.json()["detail"]
