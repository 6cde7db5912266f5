"""Shared fixtures: a real PostgreSQL, migrated once per session, and the app over real HTTP.

With ``DATABASE_URL`` set, the suite creates a uniquely named database on that server and
drops it afterwards, so concurrent runs never see each other's data. Without it, the suite
starts a private embedded server in a temporary directory and deletes it at the end.

Tests use the service's own pool and transactions (those are what is under test, including
their concurrency), so instead of rolling back an outer transaction each test isolates
itself by naming its own platforms and models with a random suffix (see ``uniq``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from litestar import Litestar

from service.app import create_app
from service.db.embedded import start_embedded, stop_if_abandoned
from service.db.migrate import upgrade
from service.db.pool import create_pool, init_connection
from service.domain.destinations import parse_networks
from service.domain.keys import create_key
from service.domain.vault import Vault
from service.schemas.keys import ApiKeyIn, Role
from service.settings import Settings, load_settings

# Fixtures that several modules share live in helper modules, loaded as plugins.
pytest_plugins = [
    "tests.helpers.compliance",
    "tests.helpers.hostings",
    "tests.helpers.ledger",
    "tests.helpers.notices",
    "tests.helpers.own_postgres",
]


def with_database(url: str, name: str) -> str:
    """The same server URL with another database name."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def _admin_execute(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass(frozen=True)
class PgServer:
    """A PostgreSQL server the suite may create databases on."""

    admin_url: str

    def create_database(self, prefix: str = "rr_test") -> str:
        name = f"{prefix}_{secrets.token_hex(6)}"
        asyncio.run(_admin_execute(self.admin_url, f'CREATE DATABASE "{name}"'))
        return with_database(self.admin_url, name)

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        asyncio.run(
            _admin_execute(self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )


#: Where the suite's embedded servers keep their files, under the temporary directory: its
#: shared server, the outage tests' own, and ``serve --data-dir`` in the embedded tests.
SERVER_DIRS = ("rr-test-pg-*/data", "rr-outage-*/data", "pytest-of-*/pytest-*/*/registry/pg")


def reap_abandoned_servers(root: Path) -> list[Path]:
    """Stop the embedded servers a suite killed from outside left running (every process
    attached to them is gone), and delete the suite's own data directories among them.
    Servers of suites still running, here or in another checkout, have live processes
    attached and are left alone."""
    reaped = []
    for pattern in SERVER_DIRS:
        for data_dir in root.glob(pattern):
            if stop_if_abandoned(data_dir):
                reaped.append(data_dir)
                if data_dir.parent.name.startswith(("rr-test-pg-", "rr-outage-")):
                    shutil.rmtree(data_dir.parent, ignore_errors=True)
    return reaped


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    reap_abandoned_servers(Path(tempfile.gettempdir()))
    url = os.environ.get("DATABASE_URL")
    if url:
        yield PgServer(admin_url=url)
        return
    # Not under pytest's own temporary root: pytest prunes old runs' directories there,
    # which would pull the data directory from under a suite still running beside this one.
    root = Path(tempfile.mkdtemp(prefix="rr-test-pg-"))
    root.chmod(0o755)  # run as root, the server runs as a system user of its own
    embedded = start_embedded(root / "data", delete_on_close=True)
    try:
        yield PgServer(admin_url=embedded.url("postgres"))
    finally:
        embedded.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh database for this run, with every migration applied."""
    url = pg_server.create_database()
    try:
        upgrade(url)
        yield url
    finally:
        pg_server.drop_database(url)


#: One key for secrets at rest in every process the suite runs: the in-process app, the
#: delivery workers tests drive, and each ``serve`` or CLI process (they inherit the variable).
SECRETS_KEY_FILE = Path(
    os.environ.setdefault(
        "REGISTRY_SECRETS_KEY_FILE",
        str(Path(tempfile.mkdtemp(prefix="rr-test-keys-")) / "secrets-key"),
    )
)
TEST_VAULT = Vault.load_or_create(SECRETS_KEY_FILE)

#: Where the tests' notice receivers listen; notices may go there only because it is allowed.
LOOPBACK = parse_networks("127.0.0.0/8")


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return load_settings(
        {},
        database_url=database_url,
        max_body_bytes=64 * 1024,
        secrets_key_file=str(SECRETS_KEY_FILE),
        # The tests' notice receivers listen on loopback: on-premise receivers, allowed.
        notice_allowed_networks=",".join(str(n) for n in LOOPBACK),
    )


@pytest.fixture(scope="session")
async def pool(settings: Settings, database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings, database_url)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def app(settings: Settings, pool: asyncpg.Pool) -> Litestar:
    return create_app(settings, pool=pool)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=cast("Any", app))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as c:
        yield c


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, outside the service, for checking what it wrote."""
    connection = await asyncpg.connect(database_url)
    await init_connection(connection)
    yield connection
    await connection.close()


@pytest.fixture
def uniq() -> str:
    """A random suffix that keeps this test's records apart from every other test's."""
    return secrets.token_hex(4)


async def make_key(
    pool: asyncpg.Pool, role: Role, *, platform: str | None = None, name: str = "test"
) -> str:
    async with pool.acquire() as c, c.transaction():
        created = await create_key(
            cast("asyncpg.Connection", c),
            data=ApiKeyIn(role=role, name=name, platform=platform),
            actor_id=None,
        )
    return created.key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def admin(pool: asyncpg.Pool) -> dict[str, str]:
    """Headers carrying a fresh admin key."""
    return bearer(await make_key(pool, "admin"))


@pytest.fixture
async def auditor(pool: asyncpg.Pool) -> dict[str, str]:
    return bearer(await make_key(pool, "auditor"))


@pytest.fixture
async def regulator(pool: asyncpg.Pool) -> dict[str, str]:
    return bearer(await make_key(pool, "regulator"))


@dataclass(frozen=True)
class PlatformFixture:
    slug: str
    id: str
    headers: dict[str, str]


async def make_platform(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str], slug: str
) -> PlatformFixture:
    """Register a platform through the API and issue it a platform key."""
    r = await client.post(
        "/v1/platforms",
        json={"slug": slug, "name": slug.title(), "kind": "model_hub"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    key = await make_key(pool, "platform", platform=slug)
    return PlatformFixture(slug=slug, id=r.json()["id"], headers=bearer(key))


@pytest.fixture
async def platform(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str], uniq: str
) -> PlatformFixture:
    return await make_platform(client, pool, admin, f"hub-{uniq}")


@pytest.fixture
async def other_platform(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str], uniq: str
) -> PlatformFixture:
    return await make_platform(client, pool, admin, f"forge-{uniq}")


async def register_model(
    client: httpx.AsyncClient, admin: dict[str, str], name: str, **fields: object
) -> dict[str, object]:
    r = await client.post("/v1/models", json={"name": name, **fields}, headers=admin)
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


REPO_ROOT = Path(__file__).resolve().parents[1]
