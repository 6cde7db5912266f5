"""Verifiers a person can use: bundles complete against their checkpoint, the checkpoint
list, one key loader for every verifier, and an unreachable registry said in one line."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import cast

import asyncpg
import httpx
import msgspec

from service.domain.bundles import (
    MANIFEST,
    SIGNATURE,
    Manifest,
    build_bundle,
    local_directory,
    sign_manifest,
    verify_bundle,
)
from service.domain.checkpoints import Signer
from service.domain.exports import ExportFilters
from tests.conftest import register_model
from tests.helpers.cli import cli
from tests.helpers.ledger import seal_all


async def _bundle(
    pool: asyncpg.Pool, signer: Signer, out: Path, model_id: str, *, seal_wait: float = 0.0
) -> Manifest:
    async with pool.acquire() as c:
        return await build_bundle(
            cast("asyncpg.Connection", c),
            datasets=["events", "models"],
            fmt="jsonl",
            filters=ExportFilters(model_id=model_id),  # type: ignore[arg-type]
            platform=None,
            signer=signer,
            open_file=local_directory(out),
            seal_wait=seal_wait,
        )


def _events(directory: Path) -> list[dict[str, object]]:
    lines = (directory / "events.jsonl").read_bytes().splitlines()
    return [msgspec.json.decode(line) for line in lines if line.strip()]


async def test_a_bundle_started_with_unsealed_events_is_cut_at_its_checkpoint_and_verifies(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    signer: Signer,
    tmp_path: Path,
    uniq: str,
) -> None:
    model = await register_model(client, admin, f"cut{uniq}/m", provider="One")
    await seal_all(pool, signer)
    r = await client.patch(f"/v1/models/{model['id']}", json={"provider": "Two"}, headers=admin)
    assert r.status_code == 200, r.text  # an event the sealer has not covered yet

    manifest = await _bundle(pool, signer, tmp_path / "b", str(model["id"]))
    assert manifest.checkpoint is not None
    assert manifest.events_left_out >= 1
    assert str(model["id"]) in manifest.changed_after_checkpoint
    seqs = [int(e["seq"]) for e in _events(tmp_path / "b")]  # type: ignore[call-overload]
    assert seqs
    assert max(seqs) <= (manifest.checkpoint.last_seq or 0)
    # The model's row says "Two", its newest bundled event "One": passed over, as declared.
    assert verify_bundle(tmp_path / "b", signer.verifier_key) == []


async def test_a_bundle_waits_for_the_sealer_and_then_holds_every_event(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    signer: Signer,
    tmp_path: Path,
    uniq: str,
) -> None:
    model = await register_model(client, admin, f"wait{uniq}/m")
    newest = await pool.fetchval("SELECT max(seq) FROM events")

    async def seal_later() -> None:
        await asyncio.sleep(0.5)
        await seal_all(pool, signer)

    sealing = asyncio.create_task(seal_later())
    manifest = await _bundle(pool, signer, tmp_path / "b", str(model["id"]), seal_wait=20)
    await sealing
    assert manifest.checkpoint is not None
    assert (manifest.checkpoint.last_seq or 0) >= newest
    assert manifest.events_left_out == 0
    assert newest in [e["seq"] for e in _events(tmp_path / "b")]
    assert verify_bundle(tmp_path / "b", signer.verifier_key) == []


async def test_a_bundle_whose_events_go_beyond_its_checkpoint_fails(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    signer: Signer,
    tmp_path: Path,
    uniq: str,
) -> None:
    model = await register_model(client, admin, f"beyond{uniq}/m")
    await seal_all(pool, signer)
    out = tmp_path / "b"
    manifest = await _bundle(pool, signer, out, str(model["id"]))
    assert verify_bundle(out, signer.verifier_key) == []
    assert manifest.checkpoint is not None
    # A registry that signs a bundle holding an event its checkpoint does not cover.
    events = _events(out)
    extra = {**events[-1], "seq": (manifest.checkpoint.last_seq or 0) + 1}
    data = (out / "events.jsonl").read_bytes() + json.dumps(extra).encode() + b"\n"
    (out / "events.jsonl").write_bytes(data)
    files = [
        msgspec.structs.replace(
            f, rows=f.rows + 1, bytes=len(data), sha256=hashlib.sha256(data).hexdigest()
        )
        if f.name == "events.jsonl"
        else f
        for f in manifest.files
    ]
    forged = msgspec.json.format(
        msgspec.json.Encoder(order="sorted").encode(msgspec.structs.replace(manifest, files=files)),
        indent=2,
    )
    (out / MANIFEST).write_bytes(forged + b"\n")
    (out / SIGNATURE).write_bytes(sign_manifest(signer, forged + b"\n"))
    problems = verify_bundle(out, signer.verifier_key)
    assert any("beyond the checkpoint" in p for p in problems), problems


async def test_the_checkpoints_are_listed_newest_first_page_by_page_without_a_key(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    signer: Signer,
    uniq: str,
) -> None:
    await register_model(client, admin, f"cps{uniq}/one")
    first = await seal_all(pool, signer)
    await register_model(client, admin, f"cps{uniq}/two")
    second = await seal_all(pool, signer)
    assert second > first

    r = await client.get("/v1/ledger/checkpoints", params={"limit": 1})
    assert r.status_code == 200, r.text
    page = r.json()
    assert [c["tree_size"] for c in page["items"]] == [second]
    assert set(page["items"][0]) == {"tree_size", "root_hash", "last_seq", "created_at"}
    r = await client.get(
        "/v1/ledger/checkpoints", params={"limit": 200, "cursor": page["next_cursor"]}
    )
    sizes = [c["tree_size"] for c in r.json()["items"]]
    assert first in sizes
    assert sizes == sorted(sizes, reverse=True)
    assert all(s < second for s in sizes)
    one = await client.get(f"/v1/ledger/checkpoints/{first}")
    assert one.status_code == 200
    assert one.json()["tree_size"] == first
    assert (await client.get("/v1/ledger/checkpoints", params={"cursor": "!"})).status_code == 400


def test_every_verifier_reads_the_key_alike_and_an_unreachable_registry_is_one_line(
    tmp_path: Path,
) -> None:
    key = cli(None, "checkpoint-key", "--data-dir", str(tmp_path / "reg")).stdout.strip()
    key_file = tmp_path / "verifier.pub"
    key_file.write_text(key + "\n")
    records = tmp_path / "records"
    records.mkdir()
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing listens there
    state = str(tmp_path / "seen.json")
    for given in (key, str(key_file), f"@{key_file}"):
        for extra in ([], ["--records", str(records)]):
            result = cli(
                None,
                "verify",
                "--url",
                nowhere,
                "--key",
                given,
                "--state",
                state,
                *extra,
                check=False,
            )
            assert result.returncode == 1, (given, result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert lines[0].startswith("risk-registry: cannot reach the registry"), lines
