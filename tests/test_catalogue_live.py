"""The ``catalogue push`` command against a running service, and a crash in the middle of a
sync: a catalogue is applied in parts, each one transaction, so a service killed while
applying it leaves whole parts or nothing of each, and the same delivery sent again applies
the rest, nothing twice."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import msgspec

from tests.conftest import REPO_ROOT, SECRETS_KEY_FILE, bearer, make_key
from tests.live_service import LiveService

LINES = 40_000


class _Live(LiveService):
    """A service given longer to start: the suite shares two cores with other suites."""

    async def wait_ready(self, within: float = 180.0) -> None:
        await super().wait_ready(within)


def _push(base: str, slug: str, secret: str, path: Path, delivery: str) -> list[str]:
    return [
        sys.executable, "-m", "service", "catalogue", "push", slug, str(path),
        "--url", base, "--secret", secret, "--delivery-id", delivery,
    ]  # fmt: skip


async def _count(pool: asyncpg.Pool, slug: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM hostings h JOIN platforms p ON p.id = h.platform_id "
            "WHERE p.slug = $1",
            slug,
        )
    )


async def test_push_and_a_crash_mid_sync(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path, uniq: str
) -> None:
    admin = bearer(await make_key(pool, "admin"))
    env = {"REGISTRY_SECRETS_KEY_FILE": str(SECRETS_KEY_FILE)}
    slug = f"crash-{uniq}"
    path = tmp_path / "catalogue.ndjson"
    enc = msgspec.json.Encoder()
    with path.open("wb") as f:
        for n in range(LINES):
            model = f"crash{uniq}/m-{n}"
            f.write(enc.encode({"model": model, "url": f"https://hub.example/{model}"}) + b"\n")
    delivery = f"crash-{uniq}"
    first = _Live(database_url, tmp_path, **env)
    await first.__aenter__()
    try:
        async with httpx.AsyncClient(base_url=first.base_url, headers=admin) as c:
            r = await c.post("/v1/platforms", json={"slug": slug, "name": "C", "kind": "model_hub"})
            assert r.status_code == 201, r.text
            r = await c.post(f"/v1/platforms/{slug}/webhook-secrets")
            secret = r.json()["secret"]
        pusher = subprocess.Popen(  # noqa: ASYNC220, S603 - our own CLI, watched below
            _push(first.base_url, slug, secret, path, delivery),
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Wait until the service has checked the catalogue and is applying its parts, then
        # kill it: a crash.
        state = None
        for _ in range(1200):
            state = await pool.fetchval(
                "SELECT state FROM catalogue_syncs WHERE delivery_id = $1", delivery
            )
            if state is not None:
                break
            await asyncio.sleep(0.05)
        assert state == "applying", "the sync never reached its parts"
        assert first.process is not None
        first.process.kill()
        await asyncio.to_thread(first.process.wait, 10)
        await asyncio.to_thread(pusher.wait, 30)
        assert pusher.returncode != 0
    finally:
        await first.__aexit__(None, None, None)
    # The killed service's transaction is rolled back once its backend notices.
    for _ in range(1200):
        if not await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%catalogue_%' "
            "AND query NOT LIKE '%pg_stat_activity%' AND state <> 'idle'"
        ):
            break
        await asyncio.sleep(0.1)
    midway = await _count(pool, slug)
    assert midway < LINES
    assert (
        await pool.fetchval("SELECT state FROM catalogue_syncs WHERE delivery_id = $1", delivery)
        == "applying"
    )

    async with _Live(database_url, tmp_path, **env) as second:
        done = await asyncio.to_thread(
            subprocess.run,
            _push(second.base_url, slug, secret, path, delivery),
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            capture_output=True,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    summary = msgspec.json.decode(done.stdout)
    assert (summary["added"], summary["rejected"]) == (LINES, [])
    assert await _count(pool, slug) == LINES
    recorded = await pool.fetchrow(
        "SELECT count(*) AS events, count(DISTINCT e.subject_id) AS hostings FROM events e "
        "JOIN platforms p ON p.id = e.platform_id "
        "WHERE p.slug = $1 AND e.kind = 'hosting.recorded'",
        slug,
    )
    assert recorded is not None
    assert (recorded["events"], recorded["hostings"]) == (LINES, LINES)
