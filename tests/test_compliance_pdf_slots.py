"""Printing the compliance PDF shares the process fairly: at most
``REGISTRY_PDF_CONCURRENCY`` prints at once, a print that waits longer than the PDF timeout
for its turn is answered 503 with ``Retry-After``, and no pooled database connection is held
while Chromium prints.

The browser is the system's Chromium behind a gate: a small script that notes each launch
and starts Chromium only once the test opens the gate, so the tests see exactly which
prints have started and hold one in the middle of printing as long as they need.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar

from service.app import create_app
from service.db.pool import create_pool
from service.settings import Settings, load_settings
from tests.helpers.compliance import PERIOD, Seeded, pdf_text

PDF = {**PERIOD, "format": "pdf"}


@dataclass
class GatedChromium:
    """A Chromium that notes each launch in ``launches`` and waits for ``open()``."""

    path: Path
    launches: Path
    gate: Path

    def started(self) -> int:
        return len(self.launches.read_text().splitlines()) if self.launches.exists() else 0

    async def started_within(self, count: int, seconds: float) -> bool:
        """Whether ``count`` prints have launched a browser within ``seconds``."""
        deadline = time.monotonic() + seconds
        while self.started() < count:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def until_started(self, count: int, within: float = 20.0) -> None:
        assert await self.started_within(count, within), f"{self.started()} of {count} started"

    def open(self) -> None:
        self.gate.touch()


@pytest.fixture
def gated(tmp_path: Path) -> GatedChromium:
    real = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(real).is_file():
        pytest.fail("printing needs Chromium (Debian: `apt-get install chromium`)")
    chromium = GatedChromium(tmp_path / "chromium", tmp_path / "launches", tmp_path / "gate")
    chromium.path.write_text(
        "#!/bin/sh\n"
        f"echo launched >> '{chromium.launches}'\n"
        f"while [ ! -e '{chromium.gate}' ]; do sleep 0.02; done\n"
        f"exec '{real}' \"$@\"\n"
    )
    chromium.path.chmod(0o755)
    return chromium


@asynccontextmanager
async def serving(
    seeded_url: str, gated: GatedChromium, **fields: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over the seeded database, printing with the gated Chromium, with ``fields``
    for the rest of its settings (the cap, the timeout, the pool)."""
    settings = msgspec.structs.replace(
        Settings(database_url=seeded_url), chromium_path=str(gated.path), **fields
    )
    pool = await create_pool(settings, seeded_url)
    try:
        app: Litestar = create_app(settings, pool=pool)
        transport = httpx.ASGITransport(app=cast("Any", app))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://registry.test", timeout=120
        ) as client:
            yield client
    finally:
        gated.open()  # a test that failed half-way leaves no print waiting
        await pool.close()


def pdf(client: httpx.AsyncClient, headers: dict[str, str]) -> asyncio.Task[httpx.Response]:
    """A request for the PDF, under way in the background."""
    return asyncio.create_task(client.get("/v1/reports/compliance", params=PDF, headers=headers))


async def test_with_one_slot_a_second_pdf_waits_its_turn_then_prints(
    seeded: Seeded, seeded_url: str, gated: GatedChromium, tmp_path: Path
) -> None:
    _, headers = seeded
    async with serving(seeded_url, gated, pdf_concurrency=1) as client:
        first = pdf(client, headers)
        await gated.until_started(1)
        second = pdf(client, headers)
        # Were it not waiting, the second would launch a browser of its own within seconds.
        assert not await gated.started_within(2, 8.0)
        assert not second.done()
        gated.open()
        for r in (await first, await second):
            assert r.status_code == 200, r.text
            assert "Compliance dashboard" in pdf_text(r.content, tmp_path)
        assert gated.started() == 2


async def test_two_slots_print_two_at_once(
    seeded: Seeded, seeded_url: str, gated: GatedChromium
) -> None:
    """The cap is the setting: with two slots, two prints start together."""
    _, headers = seeded
    async with serving(seeded_url, gated, pdf_concurrency=2) as client:
        prints = [pdf(client, headers), pdf(client, headers)]
        await gated.until_started(2)
        gated.open()
        for r in await asyncio.gather(*prints):
            assert r.status_code == 200, r.text


async def _waiting_on_a_lock(conn: asyncpg.Connection, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> $1",
        conn.get_server_pid(),
    ):
        assert time.monotonic() < deadline, "the first print never reached the database"
        await asyncio.sleep(0.02)


async def test_a_pdf_that_waits_past_the_timeout_is_answered_503_with_retry_after(
    seeded: Seeded, seeded_url: str, gated: GatedChromium
) -> None:
    """The first print holds the one slot while it reads its figures (an operator's
    maintenance holds the table); the second waits its turn no longer than the timeout."""
    _, headers = seeded
    maintenance = await asyncpg.connect(seeded_url)
    try:
        async with serving(
            seeded_url,
            gated,
            pdf_concurrency=1,
            pdf_timeout_seconds=0.5,
            retry_after_seconds=7,
            database_answer_seconds=20.0,
            statement_timeout=20.0,
        ) as client:
            tx = maintenance.transaction()
            await tx.start()
            await maintenance.execute("LOCK TABLE hostings IN ACCESS EXCLUSIVE MODE")
            first = pdf(client, headers)
            await _waiting_on_a_lock(maintenance)
            began = time.monotonic()
            r = await client.get("/v1/reports/compliance", params=PDF, headers=headers)
            waited = time.monotonic() - began
            await tx.rollback()
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["retry-after"] == "7"
            problem = r.json()
            assert problem["status"] == 503
            assert "printing as many PDFs as it may at once (1)" in problem["detail"]
            assert 0.5 <= waited < 10, waited
            gated.open()
            # The first, its print given 0.5 s, may be refused too: never a 500.
            assert (await first).status_code in (200, 503)
            assert gated.started() <= 1  # the refused request never launched a browser
    finally:
        await maintenance.close()


async def test_a_print_holds_no_database_connection(
    seeded: Seeded, seeded_url: str, gated: GatedChromium
) -> None:
    """With a pool of one connection, the API still answers while a PDF prints."""
    _, headers = seeded
    async with serving(
        seeded_url, gated, pdf_concurrency=1, pool_min_size=1, pool_max_size=1
    ) as client:
        printing = pdf(client, headers)
        await gated.until_started(1)
        r = await client.get("/v1/reports/compliance", params=PERIOD, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["overall"]["prevent"]["hostings"] == 5
        assert not printing.done()  # the print was still under way
        gated.open()
        r = await printing
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(("value", "taken"), [("1", 1), ("16", 16), ("0", None), ("17", None)])
def test_the_cap_is_a_bounded_setting(value: str, taken: int | None) -> None:
    environ = {"REGISTRY_PDF_CONCURRENCY": value}
    if taken is None:
        with pytest.raises(msgspec.ValidationError, match="pdf_concurrency"):
            load_settings(environ)
    else:
        assert load_settings(environ).pdf_concurrency == taken
    assert load_settings({}).pdf_concurrency == 2
