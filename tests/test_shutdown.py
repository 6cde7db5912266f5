"""SIGTERM: stop accepting, let the request in flight finish, close down, exit 0."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import bearer, make_key
from tests.live_service import LiveService


async def wait_for_blocked_query(conn: asyncpg.Connection, within: float = 10.0) -> None:
    """Until some other session of the service waits on a lock this test holds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND wait_event_type = 'Lock'"
        )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the request never reached the database")


async def test_sigterm_lets_the_request_in_flight_finish_and_exits_zero(
    database_url: str, pool: asyncpg.Pool, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    admin = bearer(await make_key(pool, "admin"))
    async with LiveService(database_url, tmp_path, REGISTRY_SHUTDOWN_GRACE_SECONDS="15") as svc:
        async with httpx.AsyncClient(base_url=svc.base_url, timeout=20.0) as client:
            # Hold a lock the request needs, so it is verifiably in flight at SIGTERM.
            tx = conn.transaction()
            await tx.start()
            await conn.execute("LOCK TABLE platforms IN ACCESS EXCLUSIVE MODE")
            slow = asyncio.create_task(
                client.get("/v1/platforms", headers={**admin, "X-Request-ID": "slow-1"})
            )
            try:
                await wait_for_blocked_query(conn)
                svc.terminate()
                await asyncio.sleep(0.5)
                # No new connections once shutting down...
                async with httpx.AsyncClient(base_url=svc.base_url, timeout=2.0) as fresh:
                    with pytest.raises(httpx.TransportError):
                        await fresh.get("/healthz")
                assert not slow.done()
            finally:
                await tx.rollback()
            # ...but the one in flight completes.
            response = await slow
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"] == "slow-1"
        assert await svc.wait_exit(within=15) == 0

        entries = svc.log_entries()  # every line is JSON, uvicorn's own included
        messages = [(e["logger"], e["message"]) for e in entries]
        assert ("uvicorn.error", "Shutting down") in messages, messages
        served = [
            e
            for e in entries
            if e["logger"] == "service.access" and e.get("request_id") == "slow-1"
        ]
        assert served, messages
        assert served[0]["status"] == 200
