"""Webhook signing secrets and endpoint secrets are stored sealed, under a key outside the
database: a superuser reading every table finds none of them, and they still work.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest

from service.db.migrate import upgrade
from service.domain.vault import Vault, VaultError, endpoint_context, webhook_context
from service.platforms.standard import new_secret
from tests.conftest import REPO_ROOT, TEST_VAULT, PgServer, PlatformFixture, bearer, make_key
from tests.helpers.notices import Receiver, drain
from tests.helpers.webhooks import hosted, signed
from tests.live_service import LiveService

PUBLIC_URL = "https://93.184.215.14/hooks"


async def _every_row_as_text(conn: asyncpg.Connection) -> str:
    """Every row of every table in the database, as text: what a superuser can read."""
    tables = await conn.fetch(
        "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS name "
        "FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
        "AND table_type = 'BASE TABLE'"
    )
    chunks: list[str] = []
    for table in tables:
        # Table names from the catalogue, quoted by PostgreSQL itself.
        rows = await conn.fetch(f"SELECT t::text AS row FROM {table['name']} t")  # noqa: S608
        chunks.extend(r["row"] for r in rows)
    return "\n".join(chunks)


def _forms(secret: str) -> list[str]:
    """The secret as written and the key inside it, as text and in hex (bytea's output)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    return [secret, secret.removeprefix("whsec_"), secret.encode().hex(), key.hex()]


async def test_a_superuser_reading_every_table_finds_no_secret(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    r = await client.post(f"/v1/platforms/{platform.slug}/webhook-secrets", headers=admin)
    assert r.status_code == 201, r.text
    webhook_secret = r.json()["secret"]
    r = await client.post(
        f"/v1/platforms/{platform.slug}/endpoints", json={"url": PUBLIC_URL}, headers=admin
    )
    assert r.status_code == 201, r.text
    endpoint_secret = r.json()["secret"]
    endpoint_id = r.json()["endpoint"]["id"]

    dump = await _every_row_as_text(conn)
    for secret in (webhook_secret, endpoint_secret):
        for form in _forms(secret):
            assert form not in dump
    # The hint an operator tells secrets apart by is all that is left in the clear.
    assert webhook_secret[:10] in dump

    # Sealed, the secret still verifies the platform's deliveries.
    body = hosted(f"sealed-{uniq}/model")
    r = await client.post(
        f"/v1/webhooks/{platform.slug}", content=body, headers=signed(webhook_secret, body)
    )
    assert r.status_code == 202, r.text
    await client.patch(f"/v1/endpoints/{endpoint_id}", json={"disabled": True}, headers=admin)


async def test_a_platforms_own_secrets_and_rotation_with_overlap_leave_no_plaintext(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    platform: PlatformFixture,
    receiver: Receiver,
    quiet_endpoints: None,
    uniq: str,
) -> None:
    """Everything a platform does with its own key: a signing secret, an endpoint, a
    rotation whose old secret keeps signing; then a superuser scan finds none of them."""
    me = platform.headers
    r = await client.post(f"/v1/platforms/{platform.slug}/webhook-secrets", headers=me)
    assert r.status_code == 201, r.text
    webhook_secret = r.json()["secret"]
    path = f"/sealed/{platform.slug}"
    r = await client.post(
        f"/v1/platforms/{platform.slug}/endpoints", json={"url": receiver.url(path)}, headers=me
    )
    assert r.status_code == 201, r.text
    endpoint_id = r.json()["endpoint"]["id"]
    old = r.json()["secret"]
    r = await client.post(
        f"/v1/endpoints/{endpoint_id}/secret", params={"overlap_hours": 24}, headers=me
    )
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert r.json()["endpoint"]["previous_secret_until"] is not None

    stored = await conn.fetchrow(
        "SELECT secret, secret_sealed, previous_secret, previous_secret_sealed "
        "FROM notification_endpoints WHERE id = $1::uuid",
        endpoint_id,
    )
    assert stored is not None
    assert stored["secret"] is None
    assert stored["previous_secret"] is None
    context = endpoint_context(UUID(platform.id))
    assert TEST_VAULT.open(stored["secret_sealed"], context=context) == new
    assert TEST_VAULT.open(stored["previous_secret_sealed"], context=context) == old

    # Both still sign: a receiver still on the old secret, then one on the new, verifies a
    # real test notice (with standardwebhooks).
    for n, secret in enumerate((old, new), start=1):
        receiver.secrets[path] = secret
        r = await client.post(f"/v1/endpoints/{endpoint_id}/test", headers=me)
        assert r.status_code == 202, r.text
        await drain(pool, http, lambda: len(receiver.to(path)) >= n)  # noqa: B023
        hit = receiver.to(path)[-1]
        assert hit.verified, secret[:10]
        assert hit.msg_id == r.json()["id"]
    # The platform's signing secret, sealed, still verifies its deliveries.
    body = hosted(f"self-sealed-{uniq}/model")
    r = await client.post(
        f"/v1/webhooks/{platform.slug}", content=body, headers=signed(webhook_secret, body)
    )
    assert r.status_code == 202, r.text

    dump = await _every_row_as_text(conn)
    for secret in (webhook_secret, old, new):
        for form in _forms(secret):
            assert form not in dump


async def test_a_sealed_secret_moved_to_another_platform_does_not_open(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    vault = Vault.load_or_create(tmp_path / "key")
    one, two = UUID(int=1), UUID(int=2)
    sealed = vault.seal("whsec_" + "A" * 32, context=webhook_context(one))
    assert vault.open(sealed, context=webhook_context(one)) == "whsec_" + "A" * 32
    for context in (webhook_context(two), endpoint_context(one)):
        with pytest.raises(VaultError):
            vault.open(sealed, context=context)
    with pytest.raises(VaultError):
        Vault.load_or_create(tmp_path / "other-key").open(sealed, context=webhook_context(one))
    assert oct((tmp_path / "key").stat().st_mode & 0o777) == "0o600"


async def test_serve_seals_secrets_written_before_sealing_and_they_keep_working(
    database_url: str,
    conn: asyncpg.Connection,
    platform: PlatformFixture,
    tmp_path: Path,
    uniq: str,
) -> None:
    legacy = new_secret()
    # Rows as they were before secrets were sealed: plaintext only.
    await conn.execute(
        "INSERT INTO webhook_secrets (platform_id, secret, hint) VALUES ($1::uuid, $2, $3)",
        platform.id,
        legacy,
        legacy[:10],
    )
    legacy_endpoint, legacy_previous = new_secret(), new_secret()
    # An endpoint mid-rotation: its previous secret, in plaintext too, still signs.
    await conn.execute(
        "INSERT INTO notification_endpoints (platform_id, url, event_types, secret, "
        "previous_secret, previous_secret_until, disabled_at, disabled_reason) "
        "VALUES ($1::uuid, $2, '{decommission.notice}', $3, $4, now() + interval '1 day', "
        "now(), 'test')",
        platform.id,
        PUBLIC_URL,
        legacy_endpoint,
        legacy_previous,
    )
    async with (
        LiveService(database_url, tmp_path) as svc,
        httpx.AsyncClient(base_url=svc.base_url) as client,
    ):
        left = await conn.fetchval(
            "SELECT count(*) FROM webhook_secrets WHERE secret IS NOT NULL"
        ) + await conn.fetchval(
            "SELECT count(*) FROM notification_endpoints "
            "WHERE secret IS NOT NULL OR previous_secret IS NOT NULL"
        )
        assert left == 0
        previous = await conn.fetchval(
            "SELECT previous_secret_sealed FROM notification_endpoints "
            "WHERE platform_id = $1::uuid",
            platform.id,
        )
        context = endpoint_context(UUID(platform.id))
        assert TEST_VAULT.open(previous, context=context) == legacy_previous
        body = hosted(f"legacy-{uniq}/model")
        r = await client.post(
            f"/v1/webhooks/{platform.slug}", content=body, headers=signed(legacy, body)
        )
        assert r.status_code == 202, r.text
    dump = await _every_row_as_text(conn)
    for secret in (legacy, legacy_endpoint, legacy_previous):
        assert secret not in dump


@pytest.fixture
def own_database(pg_server: PgServer) -> str:
    url = pg_server.create_database("rr_rotate")
    upgrade(url)
    return url


async def _seed(url: str, vault: Vault) -> dict[tuple[str, UUID], str]:
    """A platform with a sealed webhook secret, a sealed endpoint secret and a legacy
    plaintext one; returns every secret by (table, row id)."""
    conn = await asyncpg.connect(url)
    try:
        platform_id: UUID = await conn.fetchval(
            "INSERT INTO platforms (slug, name, kind) VALUES ('rot', 'Rot', 'model_hub') "
            "RETURNING id"
        )
        secrets: dict[tuple[str, UUID], str] = {}
        for sealed in (True, False):
            secret = new_secret()
            row_id = await conn.fetchval(
                "INSERT INTO webhook_secrets (platform_id, sealed, secret, hint) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                platform_id,
                vault.seal(secret, context=webhook_context(platform_id)) if sealed else None,
                None if sealed else secret,
                secret[:10],
            )
            secrets["webhook_secrets", row_id] = secret
        secret, previous = new_secret(), new_secret()
        row_id = await conn.fetchval(
            "INSERT INTO notification_endpoints (platform_id, url, event_types, secret_sealed, "
            "previous_secret_sealed, previous_secret_until) "
            "VALUES ($1, $2, '{decommission.notice}', $3, $4, now() + interval '1 day') "
            "RETURNING id",
            platform_id,
            PUBLIC_URL,
            vault.seal(secret, context=endpoint_context(platform_id)),
            vault.seal(previous, context=endpoint_context(platform_id)),
        )
        secrets["notification_endpoints", row_id] = secret
        secrets["notification_endpoints.previous", row_id] = previous
        return secrets
    finally:
        await conn.close()


async def _stored(url: str) -> list[tuple[str, UUID, UUID, bytes | None, str | None]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT 'webhook_secrets' AS t, id, platform_id, sealed, secret FROM webhook_secrets "
            "UNION ALL SELECT 'notification_endpoints', id, platform_id, secret_sealed, secret "
            "FROM notification_endpoints "
            "UNION ALL SELECT 'notification_endpoints.previous', id, platform_id, "
            "previous_secret_sealed, previous_secret FROM notification_endpoints"
        )
        return [(r["t"], r["id"], r["platform_id"], r["sealed"], r["secret"]) for r in rows]
    finally:
        await conn.close()


def test_rotating_the_key_reseals_every_secret_and_drops_the_old_key(
    own_database: str, pg_server: PgServer, tmp_path: Path
) -> None:
    key_file = tmp_path / "secrets-key"
    old_vault = Vault.load_or_create(key_file)
    old_text = key_file.read_text()
    secrets = asyncio.run(_seed(own_database, old_vault))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "service", "secrets-key", "rotate", "--json"],
            cwd=REPO_ROOT,
            env={
                **os.environ,
                "DATABASE_URL": own_database,
                "REGISTRY_SECRETS_KEY_FILE": str(key_file),
            },
            capture_output=True,
            check=True,
            timeout=60,
        )
        report = json.loads(done.stdout)
        assert report["resealed"] == 4
        assert report["key_id"] != old_vault.current_key_id
        assert report["keys_kept"] == [report["key_id"]]
        # The old key is gone from the file; the new one opens every row, the old one none.
        assert old_text.splitlines()[-1] not in key_file.read_text()
        new_vault = Vault.load_or_create(key_file)
        assert new_vault.current_key_id == report["key_id"]
        stale = Vault([base64.b64decode(old_text.splitlines()[-1])])
        stored = asyncio.run(_stored(own_database))
        assert len(stored) == 4
        for table, row_id, platform_id, sealed, plain in stored:
            assert plain is None
            assert sealed is not None
            context = (webhook_context if table == "webhook_secrets" else endpoint_context)(
                platform_id
            )
            assert new_vault.open(sealed, context=context) == secrets[table, row_id]
            with pytest.raises(VaultError):
                stale.open(sealed, context=context)
    finally:
        pg_server.drop_database(own_database)


async def _legacy_rows(url: str) -> str:
    """Rows as the revision before 0013 wrote them: plaintext secrets, a raw connection
    error."""
    conn = await asyncpg.connect(url)
    try:
        secret = new_secret()
        platform_id = await conn.fetchval(
            "INSERT INTO platforms (slug, name, kind) VALUES ('old', 'Old', 'model_hub') "
            "RETURNING id"
        )
        await conn.execute(
            "INSERT INTO webhook_secrets (platform_id, secret) VALUES ($1, $2)", platform_id, secret
        )
        endpoint_id = await conn.fetchval(
            "INSERT INTO notification_endpoints (platform_id, url, event_types, secret, "
            "previous_secret, previous_secret_until) "
            "VALUES ($1, $2, '{decommission.notice}', $3, $4, now() + interval '1 day') "
            "RETURNING id",
            platform_id,
            PUBLIC_URL,
            new_secret(),
            new_secret(),
        )
        raw = "ConnectError: [Errno 111] Connection refused to 10.20.30.40:8443"
        message_id = await conn.fetchval(
            "INSERT INTO outbox (endpoint_id, platform_id, event_type, payload, last_error) "
            "VALUES ($1, $2, 'decommission.notice', '{}', $3) RETURNING id",
            endpoint_id,
            platform_id,
            raw,
        )
        await conn.execute(
            "INSERT INTO outbox_attempts (message_id, attempt, url, started_at, latency_ms, error) "
            "VALUES ($1, 1, $2, now(), 3.5, $3)",
            message_id,
            PUBLIC_URL,
            raw,
        )
        return secret
    finally:
        await conn.close()


async def _after(url: str) -> dict[str, object]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("SELECT secret, sealed, hint FROM webhook_secrets")
        assert row is not None
        previous = await conn.fetchrow(
            "SELECT previous_secret, previous_secret_sealed, previous_secret_until "
            "FROM notification_endpoints"
        )
        assert previous is not None
        return {
            "previous": (
                previous["previous_secret"] is not None,
                previous["previous_secret_sealed"],
                previous["previous_secret_until"] is not None,
            ),
            "secret": row["secret"],
            "sealed": row["sealed"],
            "hint": row["hint"],
            "errors": await conn.fetchval("SELECT array_agg(error) FROM outbox_attempts")
            + await conn.fetchval("SELECT array_agg(last_error) FROM outbox"),
        }
    finally:
        await conn.close()


def test_the_migration_keeps_legacy_secrets_until_sealed_and_rewords_raw_errors(
    own_database: str, pg_server: PgServer
) -> None:
    from service.db.migrate import downgrade

    try:
        downgrade(own_database, "0012_console_sessions")
        secret = asyncio.run(_legacy_rows(own_database))
        upgrade(own_database)
        after = asyncio.run(_after(own_database))
        # The key is not SQL's to use: the plaintext stays until serve or rotate seals it.
        assert after["secret"] == secret
        assert after["sealed"] is None
        assert after["hint"] == secret[:10]
        assert after["previous"] == (True, None, True)
        assert after["errors"] == ["the connection failed", "the connection failed"]
    finally:
        pg_server.drop_database(own_database)


async def test_the_key_may_come_from_the_environment_instead_of_a_file(
    database_url: str,
    conn: asyncpg.Connection,
    pool: asyncpg.Pool,
    platform: PlatformFixture,
    tmp_path: Path,
    uniq: str,
) -> None:
    key = os.urandom(32)
    unused = tmp_path / "no-such-key-file"
    admin = bearer(await make_key(pool, "admin"))
    async with (
        LiveService(
            database_url,
            tmp_path,
            REGISTRY_SECRETS_KEY=base64.b64encode(key).decode(),
            REGISTRY_SECRETS_KEY_FILE=str(unused),
        ) as svc,
        httpx.AsyncClient(base_url=svc.base_url) as client,
    ):
        r = await client.post(f"/v1/platforms/{platform.slug}/webhook-secrets", headers=admin)
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        sealed = await conn.fetchval(
            "SELECT sealed FROM webhook_secrets WHERE id = $1::uuid",
            r.json()["webhook_secret"]["id"],
        )
        vault = Vault([key])
        assert vault.open(sealed, context=webhook_context(UUID(platform.id))) == secret
        body = hosted(f"env-{uniq}/model")
        r = await client.post(
            f"/v1/webhooks/{platform.slug}", content=body, headers=signed(secret, body)
        )
        assert r.status_code == 202, r.text
    assert not unused.exists()
