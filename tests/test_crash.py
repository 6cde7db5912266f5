"""Crashes under load: no acknowledged delivery is lost, none is recorded twice.

A stream of signed, unique deliveries runs against a real ``serve`` process on a
PostgreSQL of the test's own. First the service is killed with SIGKILL and started again;
then PostgreSQL's postmaster is. Afterwards every delivery the client saw acknowledged
(2xx) is in the database exactly once, and the database holds nothing the client did not
send (a delivery committed just before a crash, whose answer was lost, may be there
unacknowledged: the platform would retry it and get ``duplicate``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from tests.helpers.own_postgres import OwnPostgres
from tests.helpers.webhooks import signed_delivery
from tests.live_service import LiveService

WRITERS = 8


@dataclass
class Stream:
    """Signed deliveries sent by several concurrent clients to whatever ``base`` is now."""

    secret: str
    base: Callable[[], str]
    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    failed: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def writer(self, n: int) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                body, headers = signed_delivery(self.secret, f"crash-{n}/model-{i}")
                self.sent.add(headers["webhook-id"])
                try:
                    r = await client.post(
                        self.base() + "/v1/webhooks/hub", content=body, headers=headers
                    )
                except httpx.TransportError:
                    self.failed += 1
                    await asyncio.sleep(0.05)
                    continue
                if 200 <= r.status_code < 300:
                    self.acked.add(headers["webhook-id"])
                else:
                    self.failed += 1
                    await asyncio.sleep(0.05)

    async def run_until(self, done: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self.writer(n)) for n in range(WRITERS)]
        await done.wait()
        self.stop.set()
        await asyncio.gather(*tasks)


async def _setup(base: str, admin: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.post(
            "/v1/platforms",
            json={"slug": "hub", "name": "Hub", "kind": "model_hub"},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        r = await client.post("/v1/platforms/hub/webhook-secrets", json={}, headers=admin)
        assert r.status_code == 201, r.text
        secret: str = r.json()["secret"]
        return secret


async def _stored(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT d.delivery_id FROM webhook_deliveries d JOIN platforms p "
            "ON p.id = d.platform_id WHERE p.slug = 'hub'"
        )
    finally:
        await conn.close()
    return [r["delivery_id"] for r in rows]


def _check(stream: Stream, stored: list[str]) -> None:
    print(
        f"sent {len(stream.sent)}, acknowledged {len(stream.acked)}, refused or cut "
        f"{stream.failed}, stored {len(stored)}"
    )
    assert len(stored) == len(set(stored)), "a delivery was recorded twice"
    assert stream.acked, "nothing was acknowledged: the stream did not run"
    lost = stream.acked - set(stored)
    assert not lost, f"{len(lost)} acknowledged deliveries are missing"
    unexpected = set(stored) - stream.sent
    assert not unexpected, f"{len(unexpected)} deliveries nobody sent"


async def _ready(base: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
        while True:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not become ready"
            await asyncio.sleep(0.1)


async def test_killing_the_service_loses_no_acknowledged_delivery(
    own_postgres: OwnPostgres, own_admin: dict[str, str], tmp_path: Path
) -> None:
    first = LiveService(own_postgres.url, tmp_path)
    await first.__aenter__()
    current = {"base": first.base_url}
    secret = await _setup(first.base_url, own_admin)
    stream = Stream(secret=secret, base=lambda: current["base"])
    done = asyncio.Event()
    runner = asyncio.create_task(stream.run_until(done))
    second: LiveService | None = None
    try:
        await asyncio.sleep(1.5)
        acked_before = len(stream.acked)
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)  # no shutdown, no flush: a crash
        await asyncio.to_thread(first.process.wait, 10)
        second = LiveService(own_postgres.url, tmp_path)
        await second.__aenter__()
        current["base"] = second.base_url
        await _ready(second.base_url)
        await asyncio.sleep(1.5)
        assert len(stream.acked) > acked_before, "no delivery was acknowledged after restart"
    finally:
        done.set()
        await runner
        await first.__aexit__(None, None, None)
        if second is not None:
            await second.__aexit__(None, None, None)
    assert stream.failed > 0, "the crash went unnoticed: the test proved nothing"
    _check(stream, await _stored(own_postgres.url))


def _postmaster_pid(own: OwnPostgres) -> int:
    return int((own.server.data_dir / "postmaster.pid").read_text().splitlines()[0])


async def _restart_postgres(own: OwnPostgres, within: float = 30.0) -> None:
    """Start the server again once the killed one's backends have gone."""
    deadline = time.monotonic() + within
    while True:
        try:
            await asyncio.to_thread(own.start)
            return
        except Exception:
            assert time.monotonic() < deadline, "PostgreSQL did not restart"
            await asyncio.sleep(0.5)


async def test_killing_postgres_loses_no_acknowledged_delivery(
    own_postgres: OwnPostgres, own_admin: dict[str, str], tmp_path: Path
) -> None:
    async with LiveService(own_postgres.url, tmp_path) as svc:
        secret = await _setup(svc.base_url, own_admin)
        stream = Stream(secret=secret, base=lambda: svc.base_url)
        done = asyncio.Event()
        runner = asyncio.create_task(stream.run_until(done))
        try:
            await asyncio.sleep(1.5)
            acked_before = len(stream.acked)
            os.kill(_postmaster_pid(own_postgres), signal.SIGKILL)
            await asyncio.sleep(1.0)
            await _restart_postgres(own_postgres)
            # The same service process recovers once the database is back.
            await _ready(svc.base_url)
            await asyncio.sleep(1.5)
            assert len(stream.acked) > acked_before, "no delivery was acknowledged after recovery"
            assert svc.process is not None
            assert svc.process.poll() is None
        finally:
            done.set()
            await runner
    assert stream.failed > 0, "the crash went unnoticed: the test proved nothing"
    _check(stream, await _stored(own_postgres.url))
