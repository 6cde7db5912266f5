"""Signed checkpoints and the batch sealer, checked against ``pymerkle`` and the C2SP format."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from litestar import Litestar
from pymerkle import InclusionProof, InmemoryTree, verify_inclusion
from pymerkle.core import _inclusion_path_layout

from service.domain.checkpoints import (
    CheckpointError,
    Signer,
    format_body,
    load_or_create_signer,
    open_checkpoint,
)
from service.domain.ledger import canonical_entry, record_event
from service.domain.sealer import GapTracker, seal_once
from tests.conftest import register_model
from tests.helpers.ledger import _SEED, ORIGIN, seal_all, write_test_key


async def sealed_entries(conn: asyncpg.Connection, size: int) -> list[bytes]:
    rows = await conn.fetch(
        """
        SELECT e.seq, e.stage, e.kind, e.subject_type, e.subject_id, e.model_id, e.platform_id,
               e.actor_id, e.occurred_at, e.recorded_at, e.payload
        FROM ledger_leaves l JOIN events e USING (seq)
        WHERE l.leaf_index < $1 ORDER BY l.leaf_index
        """,
        size,
    )
    return [canonical_entry(dict(r)) for r in rows]


def test_note_format_and_key_id_follow_c2sp(signer: Signer) -> None:
    root = hashlib.sha256(b"root").digest()
    note = signer.sign(format_body(origin=ORIGIN, tree_size=42, root_hash=root))
    body, sig_line = note.split("\n\n")
    assert body == f"{ORIGIN}\n42\n{base64.b64encode(root).decode()}"
    dash, name, blob = sig_line.rstrip("\n").split(" ")
    assert (dash, name) == ("\u2014", ORIGIN)
    raw = base64.b64decode(blob)
    public = (
        Ed25519PrivateKey.from_private_bytes(_SEED)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    assert raw[:4] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()[:4]
    Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], (body + "\n").encode())
    name, key_id, key = signer.verifier_key.split("+")
    assert (name, key_id) == (ORIGIN, raw[:4].hex())
    assert base64.b64decode(key) == b"\x01" + public

    cp = open_checkpoint(note, signer.verifier_key, origin=ORIGIN)
    assert (cp.tree_size, cp.root_hash) == (42, root)


def test_forged_or_foreign_checkpoints_are_refused(signer: Signer, tmp_path: Path) -> None:
    root = hashlib.sha256(b"root").digest()
    note = signer.sign(format_body(origin=ORIGIN, tree_size=42, root_hash=root))
    with pytest.raises(CheckpointError):
        open_checkpoint(note.replace("\n42\n", "\n43\n"), signer.verifier_key)
    other = load_or_create_signer(tmp_path / "other.pem", name=ORIGIN)
    assert (tmp_path / "other.pem").stat().st_mode & 0o777 == 0o600
    with pytest.raises(CheckpointError):
        open_checkpoint(note, other.verifier_key)
    with pytest.raises(CheckpointError):
        open_checkpoint(note, signer.verifier_key, origin="elsewhere/ledger")
    # Loading again gives the same key.
    again = load_or_create_signer(tmp_path / "other.pem", name=ORIGIN)
    assert again.verifier_key == other.verifier_key


async def test_sealed_tree_matches_pymerkle_and_proofs_verify(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    signer: Signer,
    uniq: str,
) -> None:
    await register_model(client, admin, f"org-{uniq}/first")
    first_size = await seal_all(pool, signer)
    model = await register_model(client, admin, f"org-{uniq}/sealed")
    size = await seal_all(pool, signer)
    assert size > first_size

    key = (await client.get("/.well-known/risk-registry/checkpoint-key")).text.strip()
    assert key == signer.verifier_key
    r = await client.get("/v1/ledger/checkpoint")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    cp = open_checkpoint(r.text, key, origin=ORIGIN)
    assert cp.tree_size == size

    # An independent implementation over the same canonical entries gives the same root.
    reference = InmemoryTree(algorithm="sha256")
    for entry in await sealed_entries(conn, size):
        reference.append_entry(entry)
    assert reference.get_root() == cp.root_hash

    seq = await conn.fetchval(
        "SELECT seq FROM events WHERE subject_id = $1 AND kind = 'model.registered'",
        model["id"],
    )
    r = await client.get("/v1/ledger/proofs/inclusion", params={"seq": seq, "tree_size": size})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    index, leaf = body["leaf_index"], base64.b64decode(body["leaf_hash"])
    path = [base64.b64decode(h) for h in body["hashes"]]
    rule, _ = _inclusion_path_layout(index + 1, size)
    proof = InclusionProof("sha256", True, size, index + 1, rule, [leaf, *path])
    verify_inclusion(leaf, cp.root_hash, proof, index=index + 1, size=size)

    r = await client.get(
        "/v1/ledger/proofs/consistency", params={"first": first_size, "second": size}
    )
    assert r.status_code == 200, r.text
    hashes = [base64.b64decode(h) for h in r.json()["hashes"]]
    from tests.helpers.merkle import rfc_verify_consistency

    earlier = await client.get(f"/v1/ledger/checkpoints/{first_size}")
    assert earlier.status_code == 200
    first_root = open_checkpoint(earlier.json()["note"], key).root_hash
    assert first_root == reference.get_root(first_size)
    assert rfc_verify_consistency(first_size, size, first_root, cp.root_hash, hashes)

    r = await client.get("/v1/ledger/leaves", params={"start": index, "limit": 1})
    assert r.json()["items"] == [
        {"leaf_index": index, "seq": seq, "leaf_hash": body["leaf_hash"], "format": 2}
    ]
    assert body["leaf_format"] == 2


async def test_proofs_beyond_the_sealed_tree_are_404(
    client: httpx.AsyncClient, signed_app: Litestar, pool: asyncpg.Pool, signer: Signer
) -> None:
    size = await seal_all(pool, signer)
    r = await client.get("/v1/ledger/proofs/inclusion", params={"seq": 1, "tree_size": size + 5})
    assert r.status_code == 404
    r = await client.get("/v1/ledger/proofs/consistency", params={"first": 3, "second": 2})
    assert r.status_code == 422
    r = await client.get(f"/v1/ledger/checkpoints/{size + 1000}")
    assert r.status_code == 404


async def test_sealer_waits_for_a_transaction_still_in_flight(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    database_url: str,
    admin: dict[str, str],
    signer: Signer,
    uniq: str,
) -> None:
    model = await register_model(client, admin, f"org-{uniq}/gaps")
    await seal_all(pool, signer)
    slow = await asyncpg.connect(database_url)
    try:
        tx = slow.transaction()
        await tx.start()
        held = await slow.fetchval(
            "INSERT INTO events (stage, kind, subject_type, subject_id, occurred_at) "
            "VALUES ('prevent', 'test.slow', 'test', $1, now()) RETURNING seq",
            model["id"],
        )
        r = await client.patch(
            f"/v1/models/{model['id']}", json={"provider": "Later"}, headers=admin
        )
        assert r.status_code == 200
        gaps = GapTracker(grace_seconds=0)
        for _ in range(3):
            async with pool.acquire() as c, c.transaction(isolation="repeatable_read"):
                await seal_once(
                    cast("asyncpg.Connection", c), signer=signer, batch_size=100, gaps=gaps
                )
        last = await pool.fetchval("SELECT max(seq) FROM ledger_leaves")
        assert last == held - 1  # nothing past the open transaction's seq
        await tx.commit()
    finally:
        await slow.close()
    await seal_all(pool, signer)
    sealed = await pool.fetchval("SELECT count(*) FROM ledger_leaves WHERE seq >= $1", held)
    assert sealed >= 2


async def test_rolled_back_seqs_are_passed_over(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str], signer: Signer, uniq: str
) -> None:
    model = await register_model(client, admin, f"org-{uniq}/rolled")
    async with pool.acquire() as c:
        tx = c.transaction()
        await tx.start()
        lost = await c.fetchval(
            "INSERT INTO events (stage, kind, subject_type, subject_id, occurred_at) "
            "VALUES ('prevent', 'test.lost', 'test', $1, now()) RETURNING seq",
            model["id"],
        )
        await tx.rollback()
    await client.patch(f"/v1/models/{model['id']}", json={"provider": "After"}, headers=admin)
    await seal_all(pool, signer)
    assert await pool.fetchval("SELECT count(*) FROM ledger_leaves WHERE seq = $1", lost) == 0
    assert await pool.fetchval("SELECT count(*) FROM ledger_leaves WHERE seq > $1", lost) >= 1


async def test_only_one_sealer_at_a_time(pool: asyncpg.Pool, signer: Signer) -> None:
    async with (
        pool.acquire() as a,
        pool.acquire() as b,
        a.transaction(isolation="repeatable_read"),
        b.transaction(isolation="repeatable_read"),
    ):
        first = await seal_once(
            cast("asyncpg.Connection", a), signer=signer, batch_size=10, gaps=GapTracker(0)
        )
        second = await seal_once(
            cast("asyncpg.Connection", b), signer=signer, batch_size=10, gaps=GapTracker(0)
        )
    assert first is not None
    assert second is None


def test_gap_tracker_needs_both_time_and_a_finished_snapshot() -> None:
    gaps = GapTracker(grace_seconds=0)
    assert not gaps.settled(10, xmin=100, xmax=105)  # transactions below 105 may run on
    assert not gaps.settled(10, xmin=104, xmax=110)
    assert gaps.settled(10, xmin=105, xmax=110)
    slow = GapTracker(grace_seconds=3600)
    assert not slow.settled(10, xmin=100, xmax=100)
    assert not slow.settled(10, xmin=200, xmax=200)


async def test_the_app_lifespan_runs_the_sealer_when_enabled(
    settings: Any, pool: asyncpg.Pool, tmp_path: Path, signer: Signer, uniq: str
) -> None:
    from service.app import create_app

    key_file = write_test_key(tmp_path / "app-key.pem")
    app = create_app(
        msgspec.structs.replace(
            settings,
            sealer=True,
            signing_key_file=str(key_file),
            checkpoint_origin=ORIGIN,
            seal_interval_seconds=0.05,
            seal_gap_grace_seconds=0.0,
        ),
        pool=pool,
    )
    async with app.lifespan():
        assert app.state.signer.verifier_key == signer.verifier_key
        async with pool.acquire() as c, c.transaction():
            seq = await record_event(
                cast("asyncpg.Connection", c),
                stage="prevent",
                kind="test.lifespan",
                subject_type="test",
                subject_id=uuid.uuid4(),
                actor_id=None,
            )
        for _ in range(200):
            if await pool.fetchval("SELECT 1 FROM ledger_leaves WHERE seq = $1", seq):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the background sealer did not seal the event")


async def test_without_the_setting_no_key_is_created(
    settings: Any, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    from service.app import create_app

    key_file = tmp_path / "absent.pem"
    app = create_app(msgspec.structs.replace(settings, signing_key_file=str(key_file)), pool=pool)
    async with app.lifespan():
        assert app.state.signer is None
    assert not key_file.exists()


async def test_a_round_reads_the_events_again_only_once_a_transaction_has_ended(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str], signer: Signer, uniq: str
) -> None:
    """After a round found nothing to seal, a round in the same snapshot (no transaction has
    ended since) does not read the events: during a catalogue sync's million uncommitted
    events each read would walk past them all. Once an event commits it is read, and sealed."""
    await seal_all(pool, signer)
    gaps = GapTracker(grace_seconds=0)

    async def round_() -> tuple[int, int, str]:
        """A round: what it sealed, the scans of ``events`` it made, and its snapshot."""
        # Scans of the table or of any of its indexes (the plan may take either).
        scans = (
            "SELECT sum(pg_stat_get_xact_numscans(oid)) FROM ("
            "SELECT 'events'::regclass::oid UNION ALL "
            "SELECT indexrelid FROM pg_index WHERE indrelid = 'events'::regclass) r(oid)"
        )
        async with pool.acquire() as c, c.transaction(isolation="repeatable_read"):
            before = await c.fetchval(scans)  # (the transaction's snapshot is taken here)
            result = await seal_once(
                cast("asyncpg.Connection", c), signer=signer, batch_size=100, gaps=gaps
            )
            assert result is not None
            made = await c.fetchval(scans) - before
            snapshot = await c.fetchval("SELECT pg_current_snapshot()::text")
        return result.sealed, int(made), str(snapshot)

    sealed, scans, before = await round_()
    assert sealed == 0
    assert scans > 0
    skipped = 0
    for _ in range(20):  # a background transaction (autovacuum's ANALYZE) may end meanwhile
        sealed, scans, now = await round_()
        assert sealed == 0
        if now == before:
            assert scans == 0
            skipped += 1
        before = now
    assert skipped >= 5
    model = await register_model(client, admin, f"org-{uniq}/after-idle")
    sealed, scans, _ = await round_()
    assert scans > 0
    assert sealed >= 1
    leaf = await pool.fetchval(
        "SELECT count(*) FROM ledger_leaves l JOIN events e ON e.seq = l.seq "
        "WHERE e.subject_id = $1",
        model["id"],
    )
    assert leaf == 1
