"""The asyncpg pool and the codecs every connection gets."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from service.settings import Settings

__all__ = ["Pool", "create_pool", "init_connection", "json_decode", "json_encode"]

Pool = asyncpg.Pool

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def json_encode(value: Any) -> str:
    return _encoder.encode(value).decode()


def json_decode(value: str | bytes) -> Any:
    return _decoder.decode(value)


async def init_connection(conn: asyncpg.Connection) -> None:
    """Give a connection the msgspec JSON codecs for json and jsonb."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=json_encode, decoder=json_decode, schema="pg_catalog"
        )


async def _reset_connection(conn: asyncpg.Connection) -> None:
    # The service keeps no session state on connections, so asyncpg's default reset
    # (RESET ALL; CLOSE ALL; UNLISTEN *; ...) would be a wasted round trip per request.
    # A transaction left open by a failure is still rolled back.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(settings: Settings, dsn: str) -> asyncpg.Pool:
    """Open the pool; statement_timeout bounds every query on the request path."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        init=init_connection,
        reset=_reset_connection,
        server_settings={
            "statement_timeout": str(int(settings.statement_timeout * 1000)),
            "application_name": "risk-registry",
        },
        command_timeout=settings.statement_timeout + 1,
    )
    if pool is None:  # asyncpg types the result as optional
        raise RuntimeError("asyncpg returned no pool")
    return pool
