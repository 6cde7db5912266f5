"""A finished export bundle downloads as one tar archive that verifies offline."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import asyncpg
import httpx
import pytest

from service.domain.bundles import verify_bundle
from service.domain.checkpoints import Signer, load_or_create_signer
from service.domain.export_jobs import run_next_job
from tests.conftest import PlatformFixture, bearer, make_key, register_model
from tests.helpers.ledger import ORIGIN, seal_all, write_test_key


@pytest.fixture
def bundle_signer(tmp_path: Path) -> Signer:
    """The run's fixed test key: the one the console's live service signs with, so a job
    its export worker claims first verifies alike."""
    return load_or_create_signer(write_test_key(tmp_path / "signing.pem"), name=ORIGIN)


async def _queue(client: httpx.AsyncClient, headers: dict[str, str], platform: str) -> str:
    r = await client.post(
        "/v1/exports",
        json={
            "datasets": ["models", "hostings", "events"],
            "format": "jsonl",
            "platform": platform,
        },
        headers=headers,
    )
    assert r.status_code == 202, r.text
    job_id: str = r.json()["id"]
    return job_id


async def test_the_archive_holds_the_bundle_byte_for_byte_and_verifies(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
    bundle_signer: Signer,
    tmp_path: Path,
) -> None:
    await register_model(client, admin, f"ar{uniq}/one")
    r = await client.post(
        "/v1/hostings",
        json={"model": f"ar{uniq}/one", "url": "https://hub.example/one"},
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    # The bundle names the newest checkpoint: one signed by the key it is checked with.
    await seal_all(pool, bundle_signer)
    job_id = await _queue(client, regulator, platform.slug)

    # Before the job is done there is no archive: 409, as for single files.
    r = await client.get(f"/v1/exports/jobs/{job_id}/archive", headers=regulator)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")

    for _ in range(50):
        await run_next_job(pool, signer=bundle_signer)
        job = (await client.get(f"/v1/exports/jobs/{job_id}", headers=regulator)).json()
        if job["status"] == "done":
            break
    assert job["status"] == "done", job

    r = await client.get(f"/v1/exports/jobs/{job_id}/archive", headers=regulator)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-tar"
    assert f'filename="export-{job_id}.tar"' in r.headers["content-disposition"]
    assert int(r.headers["content-length"]) == len(r.content)

    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:") as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "out", filter="data")
    folder = tmp_path / "out" / f"export-{job_id}"
    expected = {f["name"] for f in job["files"]}
    assert expected == {"models.jsonl", "hostings.jsonl", "events.jsonl"} | {
        "manifest.json",
        "manifest.sig",
    }
    assert set(names) == {f"export-{job_id}"} | {f"export-{job_id}/{n}" for n in expected}
    for f in job["files"]:
        single = await client.get(f["href"], headers=regulator)
        assert (folder / f["name"]).read_bytes() == single.content
    assert verify_bundle(folder, bundle_signer.verifier_key) == []
    # The data is the registry's: the model registered above is in its file.
    assert f"ar{uniq}/one" in (folder / "models.jsonl").read_text()


async def test_the_archive_is_for_whoever_may_read_the_job(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    regulator: dict[str, str],
    platform: PlatformFixture,
) -> None:
    job_id = await _queue(client, regulator, platform.slug)
    other = bearer(await make_key(pool, "regulator"))
    r = await client.get(f"/v1/exports/jobs/{job_id}/archive", headers=other)
    assert r.status_code == 404, r.text
    for role in ("auditor",):
        r = await client.get(
            f"/v1/exports/jobs/{job_id}/archive", headers=bearer(await make_key(pool, role))
        )
        assert r.status_code == 403, r.text
    r = await client.get(f"/v1/exports/jobs/{job_id}/archive", headers=platform.headers)
    assert r.status_code == 403, r.text
    r = await client.get(f"/v1/exports/jobs/{job_id}/archive")
    assert r.status_code == 401, r.text
    r = await client.get("/v1/exports/jobs/not-a-uuid/archive", headers=regulator)
    assert r.status_code in (400, 404), r.text
