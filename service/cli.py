"""Helpers shared by every CLI command module: output and one-transaction database work."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import msgspec

from service.database import Database
from service.db.pool import init_connection

__all__ = ["emit", "run_in_transaction"]

T = TypeVar("T")

_json = msgspec.json.Encoder()


def emit(value: Any, *, as_json: bool, text: str) -> None:
    """Print ``value`` as JSON with ``--json``, else the human-readable ``text``."""
    if as_json:
        sys.stdout.write(_json.encode(value).decode() + "\n")
    else:
        sys.stdout.write(text + "\n")


def run_in_transaction(db: Database, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on a fresh connection inside one transaction."""

    async def go() -> T:
        conn = await asyncpg.connect(db.url)
        try:
            await init_connection(conn)
            async with conn.transaction():
                return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())
