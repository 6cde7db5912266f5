"""The compliance report's own database: seeded with figures computed by hand, January 2026
as the period and December 2025 as the previous one, served to a regulator; and the report
read back as JSON or, printed as PDF, as text.

A pytest plugin (see ``conftest.py``): ``seeded_url`` (one database per test module) and
``seeded`` are available to every test module.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest
from litestar import Litestar

from service.app import create_app
from service.db.migrate import upgrade
from service.db.pool import create_pool
from service.domain.keys import create_key
from service.schemas.keys import ApiKeyIn
from service.settings import Settings
from tests.conftest import PgServer, bearer

#: The app's client over the seeded database, and a regulator's headers.
Seeded = tuple[httpx.AsyncClient, dict[str, str]]

PERIOD = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}

SEED_TEMPLATE = """
INSERT INTO platforms (id, slug, name, kind) VALUES
  ('{hub}', 'hub', 'Hub', 'model_hub'),
  ('{forge}', 'forge', 'Forge', 'code_forge');
INSERT INTO models (id, name) VALUES
  ('{m1}', 'acme/m1'),
  ('{m2}', 'acme/m2'),
  ('{m3}', 'acme/m3'),
  ('{m4}', 'acme/m4'),
  ('{m5}', 'acme/m5');
INSERT INTO hostings (id, model_id, platform_id, url, status, downloads, model_card_present,
                      safety_testing_present, risk_analysis_present, use_guidance_present,
                      created_at) VALUES
  ('{hub_m1}', '{m1}',
   '{hub}', 'https://hub/m1', 'hosted', 900, true, true, false, false, '2025-06-01'),
  ('{hub_m2}', '{m2}',
   '{hub}', 'https://hub/m2', 'hosted', 60, true, false, false, false, '2025-06-01'),
  ('{hub_m3}', '{m3}',
   '{hub}', 'https://hub/m3', 'hosted', 30, false, false, false, false, '2025-06-01'),
  ('{hub_m4}', '{m4}',
   '{hub}', 'https://hub/m4', 'hosted', 10, true, true, true, true, '2025-06-01'),
  ('{forge_m1}', '{m1}',
   '{forge}', 'https://forge/m1', 'hosted', NULL, true, false, false, false, '2025-06-01'),
  ('{forge_m5}', '{m5}',
   '{forge}', 'https://forge/m5', 'removed', 100, true, true, true, true, '2025-06-01');

INSERT INTO incidents (id, ref, title, category, severity, serious, serious_kind, death, status,
                       duplicate_of, channel, reporter_platform_id, aware_at, reported_at,
                       triaged_at, mitigated_at, closed_at, report_due_at,
                       authority_initial_report_at) VALUES
  ('{i1}', 'R-1', 'i1', 'harmful_content', 'critical', true,
   'critical_infrastructure', false, 'closed', NULL, 'webhook', '{hub}',
   '2026-01-05', '2026-01-05', '2026-01-05 01:00', '2026-01-05 10:00', '2026-01-09 04:00',
   '2026-01-07', '2026-01-06'),
  ('{i2}', 'R-2', 'i2', 'security_vulnerability', 'high', true,
   'fundamental_rights', false, 'mitigated', NULL, 'webhook', '{hub}',
   '2026-01-10', '2026-01-10', '2026-01-10 03:00', '2026-01-10 20:00', NULL,
   '2026-01-25', '2026-01-27'),
  ('{i3}', 'R-3', 'i3', 'bias_discrimination', 'low', false,
   NULL, false, 'triaged', NULL, 'webhook', '{forge}',
   '2026-01-12', '2026-01-12', '2026-01-12 05:00', NULL, NULL, NULL, NULL),
  ('{i4}', 'R-4', 'i4', 'harmful_content', 'critical', false,
   NULL, false, 'duplicate', '{i1}', 'webhook',
   '{hub}', '2026-01-06', '2026-01-06', NULL, NULL, NULL, NULL, NULL),
  ('{i5}', 'R-5', 'i5', 'malfunction', 'medium', false,
   NULL, false, 'received', NULL, 'webhook', '{hub}',
   '2025-12-15', '2025-12-15', NULL, NULL, NULL, NULL, NULL),
  ('{i6}', 'R-6', 'i6', 'misuse', 'high', true,
   'death_or_serious_harm', true, 'received', NULL, 'webhook', '{hub}',
   '2026-01-30', '2026-01-30', NULL, NULL, NULL, '2026-02-09', NULL);

INSERT INTO principals (id, name, role) VALUES
  ('{auditor}', 'Auditor', 'auditor');
INSERT INTO audits (id, auditor_id, method, started_at) VALUES
  ('{a1}', '{auditor}', 'red_team', '2026-01-02'),
  ('{a2}', '{auditor}', 'benchmark_evaluation', '2026-01-03'),
  ('{a3}', '{auditor}', 'documentation_review', '2025-12-01');
INSERT INTO audit_models (audit_id, model_id) VALUES
  ('{a1}', '{m1}'),
  ('{a2}', '{m5}'),
  ('{a3}', '{m2}');
INSERT INTO audit_findings (audit_id, title, severity, status) VALUES
  ('{a1}', 'f1', 'high', 'open'),
  ('{a1}', 'f2', 'low', 'remediated'),
  ('{a3}', 'f3', 'critical', 'open');
UPDATE audits SET completed_at = '2026-01-10', outcome = 'fail'
  WHERE id = '{a1}';
UPDATE audits SET completed_at = '2026-01-20', outcome = 'pass'
  WHERE id = '{a2}';
UPDATE audits SET completed_at = '2025-12-20', outcome = 'conditional'
  WHERE id = '{a3}';

INSERT INTO decommissions (id, model_id, action, reason, effective_at, status, proposed_at,
                           executed_at, confirm_by, new_licence) VALUES
  ('{d1}', '{m1}', 'recall', 'r',
   '2026-01-08', 'executed', '2026-01-08', '2026-01-10', '2026-01-15', NULL),
  ('{d2}', '{m2}', 'restrict', 'r',
   '2026-01-15', 'notified', '2026-01-15', NULL, '2026-01-20', NULL),
  ('{d3}', '{m3}', 'licence_change',
   'r', '2025-12-28', 'proposed', '2025-12-28', NULL, NULL, 'research-only');
INSERT INTO decommission_targets (decommission_id, hosting_id, platform_id, model_id, inherited,
                                  confirmed_at) VALUES
  ('{d1}', '{hub_m1}',
   '{hub}', '{m1}', false, '2026-01-09'),
  ('{d1}', '{forge_m1}',
   '{forge}', '{m1}', false, '2026-01-10'),
  ('{d2}', '{hub_m2}',
   '{hub}', '{m2}', false, NULL);
"""

#: Short names for the seed's ids, which the figures below refer to.
IDS = {
    "hub": "00000000-0000-7000-8000-00000000000a",
    "forge": "00000000-0000-7000-8000-00000000000b",
    "m1": "00000000-0000-7000-8000-000000000001",
    "m2": "00000000-0000-7000-8000-000000000002",
    "m3": "00000000-0000-7000-8000-000000000003",
    "m4": "00000000-0000-7000-8000-000000000004",
    "m5": "00000000-0000-7000-8000-000000000005",
    "hub_m1": "00000000-0000-7000-8000-0000000000a1",
    "hub_m2": "00000000-0000-7000-8000-0000000000a2",
    "hub_m3": "00000000-0000-7000-8000-0000000000a3",
    "hub_m4": "00000000-0000-7000-8000-0000000000a4",
    "forge_m1": "00000000-0000-7000-8000-0000000000b1",
    "forge_m5": "00000000-0000-7000-8000-0000000000b5",
    "i1": "00000000-0000-7000-8000-0000000000c1",
    "i2": "00000000-0000-7000-8000-0000000000c2",
    "i3": "00000000-0000-7000-8000-0000000000c3",
    "i4": "00000000-0000-7000-8000-0000000000c4",
    "i5": "00000000-0000-7000-8000-0000000000c5",
    "i6": "00000000-0000-7000-8000-0000000000c6",
    "auditor": "00000000-0000-7000-8000-0000000000e1",
    "a1": "00000000-0000-7000-8000-0000000000d1",
    "a2": "00000000-0000-7000-8000-0000000000d2",
    "a3": "00000000-0000-7000-8000-0000000000d3",
    "d1": "00000000-0000-7000-8000-0000000000f1",
    "d2": "00000000-0000-7000-8000-0000000000f2",
    "d3": "00000000-0000-7000-8000-0000000000f3",
}
SEED = SEED_TEMPLATE.format(**IDS)


@pytest.fixture(scope="module")
def seeded_url(pg_server: PgServer) -> Any:
    """A database of its own, migrated and (by ``seeded``) seeded, for the test module."""
    url = pg_server.create_database("rr_compliance")
    try:
        upgrade(url)
        yield url
    finally:
        pg_server.drop_database(url)


@pytest.fixture
async def seeded(seeded_url: str) -> AsyncIterator[Seeded]:
    """The app over the seeded database, and a regulator's headers."""
    settings = Settings(database_url=seeded_url)
    pool = await create_pool(settings, seeded_url)
    try:
        async with pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT count(*) FROM platforms"):
                await conn.execute(SEED)
            created = await create_key(
                cast("asyncpg.Connection", conn),
                data=ApiKeyIn(role="regulator", name="regulator"),
                actor_id=None,
            )
        app: Litestar = create_app(settings, pool=pool)
        transport = httpx.ASGITransport(app=cast("Any", app))
        async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as c:
            yield c, bearer(created.key)
    finally:
        await pool.close()


async def compliance_report(seeded: Seeded, **params: str) -> Any:
    """The compliance report for ``PERIOD`` as JSON, as the regulator reads it."""
    client, headers = seeded
    r = await client.get("/v1/reports/compliance", params={**PERIOD, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    """The PDF's text, as poppler's ``pdftotext`` reads it (layout kept)."""
    tool = shutil.which("pdftotext")
    if tool is None:
        pytest.fail("reading the PDF needs pdftotext (Debian: `apt-get install poppler-utils`)")
    assert pdf.startswith(b"%PDF-"), pdf[:20]
    source = tmp_path / "report.pdf"
    source.write_bytes(pdf)
    done = subprocess.run(  # noqa: S603 - a fixed tool on our own file
        [tool, "-layout", str(source), "-"], capture_output=True, check=True, timeout=60
    )
    return done.stdout.decode()
