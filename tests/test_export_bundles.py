"""Signed export bundles: built by the job worker or the CLI, checked offline."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from service.domain.bundles import MANIFEST, SIGNATURE, verify_bundle
from service.domain.checkpoints import Signer, load_or_create_signer
from service.domain.export_jobs import run_next_job
from tests.conftest import REPO_ROOT, PlatformFixture, bearer, make_key, register_model
from tests.helpers.ledger import seal_all


@pytest.fixture
def bundle_signer(tmp_path: Path) -> Signer:
    return load_or_create_signer(tmp_path / "signing.pem", name="registry.test/ledger")


async def _finish(
    pool: asyncpg.Pool,
    signer: Signer,
    client: httpx.AsyncClient,
    job_id: str,
    headers: dict[str, str],
) -> dict[str, object]:
    for _ in range(50):
        await run_next_job(pool, signer=signer)
        job: dict[str, object] = (
            await client.get(f"/v1/exports/jobs/{job_id}", headers=headers)
        ).json()
        if job["status"] == "done":
            return job
    raise AssertionError("the export job did not finish")


async def _download(
    client: httpx.AsyncClient, job: dict[str, object], headers: dict[str, str], out: Path
) -> None:
    out.mkdir()
    files = job["files"]
    assert isinstance(files, list)
    for f in files:
        r = await client.get(f["href"], headers=headers)
        assert r.status_code == 200, r.text
        (out / f["name"]).write_bytes(r.content)


async def test_job_builds_a_bundle_that_verifies_and_detects_a_changed_byte(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
    bundle_signer: Signer,
    tmp_path: Path,
) -> None:
    await register_model(client, admin, f"bu{uniq}/one")
    await client.post(
        "/v1/hostings",
        json={"model": f"bu{uniq}/one", "url": "https://hub.example/one"},
        headers=platform.headers,
    )
    tree_size = await seal_all(pool, bundle_signer)

    r = await client.post(
        "/v1/exports",
        json={"datasets": ["events", "hostings"], "format": "csv", "platform": platform.slug},
        headers=regulator,
    )
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    assert r.headers["location"] == f"/v1/exports/jobs/{r.json()['id']}"
    job = await _finish(pool, bundle_signer, client, r.json()["id"], regulator)
    assert job["progress"] == 1.0
    assert job["rows_done"] == job["rows_total"]
    names = sorted(f["name"] for f in job["files"])  # type: ignore[attr-defined]
    assert names == ["events.csv", "hostings.csv", MANIFEST, SIGNATURE]

    out = tmp_path / "bundle"
    await _download(client, job, regulator, out)
    assert verify_bundle(out, bundle_signer.verifier_key) == []

    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["filters"]["platform"] == platform.slug
    assert manifest["checkpoint"]["tree_size"] >= tree_size
    hostings = list(csv.DictReader(io.StringIO((out / "hostings.csv").read_text())))
    assert [h["model"] for h in hostings] == [f"bu{uniq}/one"]
    assert {f["name"]: f["rows"] for f in manifest["files"]}["hostings.csv"] == 1

    # One changed byte in a data file is caught, and named.
    data = bytearray((out / "events.csv").read_bytes())
    data[-5] ^= 0x01
    (out / "events.csv").write_bytes(bytes(data))
    problems = verify_bundle(out, bundle_signer.verifier_key)
    assert problems == ["events.csv: SHA-256 differs from the manifest"]

    # So is an edited manifest, and a key that did not sign it.
    (out / "events.csv").write_bytes(bytes(data[:-5] + bytes([data[-5] ^ 0x01]) + data[-4:]))
    assert verify_bundle(out, bundle_signer.verifier_key) == []
    other = load_or_create_signer(tmp_path / "other.pem", name="registry.test/ledger")
    assert verify_bundle(out, other.verifier_key) != []
    (out / MANIFEST).write_text((out / MANIFEST).read_text().replace('"rows": 1', '"rows": 2'))
    assert "changed after signing" in verify_bundle(out, bundle_signer.verifier_key)[0]


async def test_jobs_are_for_regulators_and_admins_and_private_to_their_requester(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    regulator: dict[str, str],
    auditor: dict[str, str],
    platform: PlatformFixture,
) -> None:
    body = {"datasets": ["models"]}
    assert (await client.post("/v1/exports", json=body, headers=auditor)).status_code == 403
    r = await client.post("/v1/exports", json=body, headers=platform.headers)
    assert r.status_code == 403
    job = (await client.post("/v1/exports", json=body, headers=regulator)).json()
    other = bearer(await make_key(pool, "regulator"))
    assert (await client.get(f"/v1/exports/jobs/{job['id']}", headers=other)).status_code == 404
    assert (await client.get(f"/v1/exports/jobs/{job['id']}", headers=admin)).status_code == 200
    # Files exist only once the job is done.
    r = await client.get(f"/v1/exports/jobs/{job['id']}/files/models.csv", headers=regulator)
    assert r.status_code in {404, 409}


@pytest.mark.parametrize(
    "body",
    [
        {"datasets": []},
        {"datasets": ["secrets"]},
        {"datasets": ["events", "events"]},
        {"datasets": ["events"], "format": "xml"},
        {"datasets": ["events"], "platform": "no-such-platform"},
        {"datasets": ["events"], "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"datasets": ["events"], "extra": 1},
    ],
)
async def test_bad_job_requests(
    client: httpx.AsyncClient, regulator: dict[str, str], body: dict[str, object]
) -> None:
    r = await client.post("/v1/exports", json=body, headers=regulator)
    assert r.status_code in {400, 422}, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def _cli(database_url: str, key_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "REGISTRY_SIGNING_KEY_FILE": str(key_file)}
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "service", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


async def test_cli_export_and_verify_export(
    database_url: str,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    uniq: str,
    tmp_path: Path,
) -> None:
    model = await register_model(client, admin, f"cli{uniq}/m")
    key_file = tmp_path / "signing.pem"
    # The newest checkpoint is this key's, as it is on a registry with one signing key.
    await seal_all(pool, load_or_create_signer(key_file, name="risk-registry.local/ledger"))
    out = tmp_path / "bundle"
    result = _cli(
        database_url,
        key_file,
        "export",
        "--dataset",
        "models",
        "--dataset",
        "events",
        "--format",
        "jsonl",
        "--model-id",
        str(model["id"]),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "rows" in result.stderr  # the progress report
    lines = (out / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["model.registered"]

    vkey = _cli(database_url, key_file, "checkpoint-key").stdout.strip()
    ok = _cli(database_url, key_file, "verify-export", str(out), "--key", vkey, "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout) == {"ok": True, "problems": []}
    # The key may also be a file holding it, or @FILE, as for `verify`.
    (tmp_path / "verifier.pub").write_text(vkey + "\n")
    for given in (str(tmp_path / "verifier.pub"), f"@{tmp_path / 'verifier.pub'}"):
        from_file = _cli(database_url, key_file, "verify-export", str(out), "--key", given)
        assert from_file.returncode == 0, from_file.stdout + from_file.stderr

    (out / "models.jsonl").write_text((out / "models.jsonl").read_text().replace("cli", "CLI"))
    bad = _cli(database_url, key_file, "verify-export", str(out), "--key", vkey)
    assert bad.returncode == 1
    assert "models.jsonl: SHA-256 differs" in bad.stdout
