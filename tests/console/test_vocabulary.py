"""The console's choices are the API's: the report form and the triage filters offer every
category, severity, kind of serious incident and status the API's own document declares,
in the same order, and nothing else."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import httpx

from service.domain.console_sessions import open_session
from tests.conftest import make_key
from tests.console.test_signin import IDLE


def _options(html: str, select: str) -> list[str]:
    """The non-empty option values of the ``<select>`` named ``select``."""
    found = re.search(rf'<select[^>]*name="{select}"[^>]*>(.*?)</select>', html, re.DOTALL)
    assert found is not None, f"no select named {select}"
    return [v for v in re.findall(r'<option value="([^"]*)"', found.group(1)) if v]


def _enum(document: dict[str, Any], schema: str, field: str) -> list[str]:
    values = document["components"]["schemas"][schema]["properties"][field]["enum"]
    return [v for v in values if v is not None]


async def test_the_forms_offer_the_values_the_api_declares(
    client: httpx.AsyncClient, conn: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    document = r.json()

    r = await client.get("/report")
    assert r.status_code == 200
    for select in ("category", "severity", "serious_kind"):
        assert _options(r.text, select) == _enum(document, "ReportIn", select), select

    key = await make_key(pool, "admin")
    async with conn.transaction():
        opened = await open_session(conn, api_key=key, idle=IDLE)
    assert opened is not None
    client.cookies.set("rr_console", opened.cookie)
    r = await client.get("/console/incidents", headers={"accept": "text/html"})
    assert r.status_code == 200, r.text
    for select, field in (("category", "category"), ("severity", "severity")):
        assert _options(r.text, select) == _enum(document, "IncidentIn", field), select
    assert _options(r.text, "status") == _enum(document, "IncidentView", "status")
