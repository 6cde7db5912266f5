"""The connection pool hands out connections in the order they were asked for, and its
acquire timeout covers the whole wait."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from service.db.pool import create_pool, init_connection
from service.settings import Settings, load_settings


@pytest.fixture
def one_connection(database_url: str) -> Settings:
    return load_settings({}, database_url=database_url, pool_min_size=1, pool_max_size=1)


async def _race(pool: asyncpg.Pool) -> list[str]:
    """One caller waits for the only connection; as it is released, a newcomer asks too.

    The newcomer's request runs after the connection is back in the pool but before the
    waiter has been woken: exactly the moment at which a queue that lets newcomers barge
    in hands the connection to the wrong caller.
    """
    order: list[str] = []
    held = await pool.acquire()

    async def take(name: str, limit: float | None) -> None:
        async with pool.acquire(timeout=limit) as conn:
            order.append(name)
            await conn.fetchval("SELECT 1")

    waiter = asyncio.create_task(take("waiter", 5))
    await asyncio.sleep(0.05)  # the waiter is now queued for the connection
    releasing = asyncio.create_task(pool.release(held))
    await asyncio.sleep(0)  # the release has started; its last step is still to run
    newcomer = asyncio.create_task(take("newcomer", None))
    await asyncio.gather(waiter, newcomer, releasing)
    return order


async def _acquire(pool: asyncpg.Pool) -> Any:
    return await pool.acquire()


async def test_connections_go_to_callers_in_the_order_they_asked(
    one_connection: Settings, database_url: str
) -> None:
    pool = await create_pool(one_connection, database_url)
    try:
        assert await _race(pool) == ["waiter", "newcomer"]
    finally:
        pool.terminate()  # a failed test may leave a connection out: close() would wait


async def test_the_race_does_hand_a_plain_pool_to_the_newcomer(database_url: str) -> None:
    """The scenario above is a real one: asyncpg's own pool loses it."""

    async def keep_session(conn: asyncpg.Connection) -> None:
        """The service's pool resets nothing on release either (no round trip)."""

    plain = await asyncpg.create_pool(
        database_url, min_size=1, max_size=1, init=init_connection, reset=keep_session
    )
    assert plain is not None
    try:
        assert await _race(plain) == ["newcomer", "waiter"]
    finally:
        plain.terminate()


async def test_the_acquire_timeout_covers_the_wait_for_a_turn(
    one_connection: Settings, database_url: str
) -> None:
    pool = await create_pool(one_connection, database_url)
    try:
        held = await pool.acquire()
        # Someone is ahead in line with no deadline; the next caller's deadline still holds.
        ahead: asyncio.Task[Any] = asyncio.create_task(_acquire(pool))
        await asyncio.sleep(0.05)
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await pool.acquire(timeout=0.2)
        assert asyncio.get_running_loop().time() - started < 1.0
        await pool.release(held)
        await pool.release(await ahead)
        # A timed-out caller left nothing behind: the pool serves the next one at once.
        async with pool.acquire(timeout=1) as conn:
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        pool.terminate()  # a failed test may leave a connection out: close() would wait
