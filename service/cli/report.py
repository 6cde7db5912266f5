"""``report --pdf``: the compliance dashboard for a period, printed to a PDF file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import click

from service.cli.common import State, open_registry, pass_state, shared_options
from service.console.dashboard import dashboard_pdf, period
from service.db.pool import init_connection

__all__ = ["report"]


@click.command()
@click.option(
    "--pdf",
    "out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the PDF here.",
    envvar="REGISTRY_REPORT_PDF",
    show_envvar=True,
)
@click.option(
    "--from",
    "since",
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day (UTC, inclusive).",
    envvar="REGISTRY_REPORT_FROM",
    show_envvar=True,
)
@click.option(
    "--to",
    "through",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Last day (UTC, inclusive).",
    envvar="REGISTRY_REPORT_TO",
    show_envvar=True,
)
@shared_options
@pass_state
def report(state: State, out: Path, since: datetime | None, through: datetime | None) -> int:
    """Print the compliance dashboard for a period (default: the last 30 days) as PDF.

    The same page as /console/compliance, rendered by headless Chromium
    (REGISTRY_CHROMIUM_PATH, else `chromium` on PATH).
    """
    settings = state.settings()
    start, end = period(
        since.date() if since else None,
        through.date() if through else None,
        today=datetime.now(UTC).date(),
    )

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[asyncpg.Connection]:
        conn = await asyncpg.connect(url)
        try:
            await init_connection(conn)
            yield conn
        finally:
            await conn.close()

    async def go(url: str) -> bytes:
        # The connection is closed once the figures are read, before Chromium prints.
        return await dashboard_pdf(
            lambda: connect(url),
            start=start,
            end=end,
            chromium_path=settings.chromium_path,
            seconds=settings.pdf_timeout_seconds,
        )

    with open_registry(settings) as db:
        body = asyncio.run(go(db.url))
    out.write_bytes(body)
    state.emit(
        {"file": str(out), "bytes": len(body), "from": str(start), "to": str(end)},
        text=f"compliance report {start.date()} to {end.date()} (end excluded) written to {out}",
    )
    return 0
