"""Sealing the ledger in tests: a fixed checkpoint signing key and a sealer run to the end.

A pytest plugin (see ``conftest.py``): its fixtures are available to every test module.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import cast

import asyncpg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
)
from litestar import Litestar

from service.domain.checkpoints import (
    Signer,
    load_or_create_signer,
)
from service.domain.sealer import GapTracker, seal_once

ORIGIN = "registry.test/ledger"


#: One key for every test in the run: checkpoints from any test verify with it.
_SEED = hashlib.sha256(b"risk-registry test checkpoint key").digest()


def write_test_key(path: Path) -> Path:
    """Write the run's fixed test signing key (PEM) to ``path``."""
    path.write_bytes(
        Ed25519PrivateKey.from_private_bytes(_SEED).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture(scope="session")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    path = write_test_key(tmp_path_factory.mktemp("keys") / "checkpoint.pem")
    return load_or_create_signer(path, name=ORIGIN)


@pytest.fixture
def signed_app(app: Litestar, signer: Signer) -> Litestar:
    app.state.signer = signer
    return app


async def seal_all(pool: asyncpg.Pool, signer: Signer) -> int:
    """Seal every committed event; returns the tree size."""
    gaps = GapTracker(grace_seconds=0)
    target = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM events")
    for _ in range(200):
        async with pool.acquire() as c, c.transaction(isolation="repeatable_read"):
            result = await seal_once(
                cast("asyncpg.Connection", c), signer=signer, batch_size=1000, gaps=gaps
            )
        last = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM ledger_leaves")
        if last >= target and result is not None and result.sealed < 1000:
            return int(await pool.fetchval("SELECT count(*) FROM ledger_leaves"))
        await asyncio.sleep(0.01)
    raise AssertionError("the sealer did not catch up")
