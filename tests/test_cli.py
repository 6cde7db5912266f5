"""The command line, run as a separate process against the suite's database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import REPO_ROOT, bearer


def cli(database_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "service", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


async def test_platforms_and_keys_round_trip(
    database_url: str, client: httpx.AsyncClient, uniq: str
) -> None:
    slug = f"cli-{uniq}"
    added = json.loads(
        cli(
            database_url,
            "platforms",
            "add",
            slug,
            "--name",
            "CLI Hub",
            "--kind",
            "model_hub",
            "--json",
        ).stdout
    )
    assert added["slug"] == slug
    assert added["kind"] == "model_hub"
    listed = json.loads(cli(database_url, "platforms", "list", "--json").stdout)
    assert slug in [p["slug"] for p in listed]

    created = json.loads(
        cli(
            database_url, "keys", "create", "--role", "platform", "--platform", slug, "--json"
        ).stdout
    )
    key = created["key"]
    assert created["api_key"]["platform"] == slug
    r = await client.get("/v1/platforms", headers=bearer(key))
    assert r.status_code == 200
    assert [p["slug"] for p in r.json()["items"]] == [slug]

    keys = json.loads(cli(database_url, "keys", "list", "--json").stdout)
    assert created["api_key"]["id"] in [k["id"] for k in keys]
    assert key not in json.dumps(keys)

    revoked = json.loads(
        cli(database_url, "keys", "revoke", created["api_key"]["id"], "--json").stdout
    )
    assert revoked["revoked_at"] is not None
    assert (await client.get("/v1/platforms", headers=bearer(key))).status_code == 401


def test_plain_key_output_is_just_the_key(database_url: str) -> None:
    out = cli(database_url, "keys", "create", "--role", "auditor", "--name", "A. Uditor").stdout
    assert out.startswith("rr_")
    assert len(out.strip().splitlines()) == 1


def test_errors_exit_non_zero_with_a_message(database_url: str, uniq: str) -> None:
    slug = f"dup-{uniq}"
    cli(database_url, "platforms", "add", slug, "--name", "Dup", "--kind", "code_forge")
    again = cli(
        database_url, "platforms", "add", slug, "--name", "Dup", "--kind", "code_forge", check=False
    )
    assert again.returncode == 1
    assert "exists already" in again.stderr
    bad = cli(database_url, "platforms", "add", slug, "--name", "X", "--kind", "nope", check=False)
    assert bad.returncode == 2
    orphan = cli(
        database_url,
        "keys",
        "create",
        "--role",
        "platform",
        "--platform",
        f"none-{uniq}",
        check=False,
    )
    assert orphan.returncode == 1
    assert "no platform" in orphan.stderr


def test_migrate_is_idempotent(database_url: str) -> None:
    assert json.loads(cli(database_url, "migrate", "--json").stdout) == {"migrated": True}


def test_openapi_command_writes_the_document(database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    cli(database_url, "openapi", "--output", str(out))
    assert out.read_bytes() == (REPO_ROOT / "openapi" / "openapi.json").read_bytes()
