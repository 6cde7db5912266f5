"""Witnesses cosign each new checkpoint; the checkpoint endpoint serves the cosignatures and
``verify --witness-key`` requires one. The witness is the suite's own, over real HTTP."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Litestar

from service.domain.checkpoints import Signer
from service.domain.verification import Seen, verify_registry
from service.domain.witnesses import (
    CosignatureError,
    Witness,
    parse_witness_key,
    parse_witnesses,
    run_witnesses,
    submit_checkpoint,
    verify_cosignature,
)
from tests.conftest import register_model
from tests.helpers.ledger import ORIGIN, seal_all
from tests.helpers.witness import SuiteWitness, serving


@pytest.fixture
def witness(signer: Signer, uniq: str) -> Iterator[SuiteWitness]:
    with serving(
        SuiteWitness(f"witness-{uniq}.test/w1", log_origin=ORIGIN, log_vkey=signer.verifier_key)
    ) as w:
        yield w


def _configured(w: SuiteWitness) -> Witness:
    [configured] = parse_witnesses(f"{w.vkey} {w.url}")
    return configured


async def _new_checkpoint(
    client: httpx.AsyncClient, pool: asyncpg.Pool, signer: Signer, admin: dict[str, str], name: str
) -> int:
    await register_model(client, admin, name)
    return await seal_all(pool, signer)


async def test_each_new_checkpoint_is_cosigned_and_verify_requires_it(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    signer: Signer,
    admin: dict[str, str],
    witness: SuiteWitness,
    uniq: str,
) -> None:
    configured = _configured(witness)
    first = await _new_checkpoint(client, pool, signer, admin, f"org-{uniq}/w1")
    async with httpx.AsyncClient() as http:
        assert await submit_checkpoint(pool, http, configured) == first
    # The witness checked and kept it; the registry serves its cosignature after its own.
    assert witness.latest[ORIGIN][0] == first
    note = (await client.get("/v1/ledger/checkpoint")).text
    assert note.splitlines()[-1].startswith(f"\u2014 {witness.name} ")
    assert verify_cosignature(note, configured.key) > 0
    r = await client.get(f"/v1/ledger/checkpoints/{first}")
    assert r.json()["note"] == note

    report = await verify_registry(
        client, verifier_key=signer.verifier_key, state=Seen(), witness_keys=[witness.vkey]
    )
    assert report.ok, report.problems
    assert report.witnessed_by == [witness.name]

    # The next checkpoint goes with a consistency proof from the first, which the witness
    # verifies against the root it kept.
    second = await _new_checkpoint(client, pool, signer, admin, f"org-{uniq}/w2")
    assert second > first
    async with httpx.AsyncClient() as http:
        assert await submit_checkpoint(pool, http, configured) == second
    assert witness.latest[ORIGIN][0] == second
    assert witness.statuses == [200, 200]

    # A checkpoint the witness has not seen: verify fails without its cosignature.
    await _new_checkpoint(client, pool, signer, admin, f"org-{uniq}/w3")
    report = await verify_registry(
        client, verifier_key=signer.verifier_key, state=Seen(), witness_keys=[witness.vkey]
    )
    assert not report.ok
    assert any(f"no valid cosignature by the witness {witness.name}" in p for p in report.problems)


async def test_a_wrong_key_or_a_tampered_cosignature_does_not_verify(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    signer: Signer,
    admin: dict[str, str],
    witness: SuiteWitness,
    uniq: str,
) -> None:
    await _new_checkpoint(client, pool, signer, admin, f"org-{uniq}/t1")
    async with httpx.AsyncClient() as http:
        assert await submit_checkpoint(pool, http, _configured(witness)) is not None
    note = (await client.get("/v1/ledger/checkpoint")).text
    key = parse_witness_key(witness.vkey)
    assert verify_cosignature(note, key)

    # Another witness key under the same name.
    impostor = SuiteWitness(witness.name, log_origin=ORIGIN, log_vkey=signer.verifier_key)
    with pytest.raises(CosignatureError):
        verify_cosignature(note, parse_witness_key(impostor.vkey))

    # One bit of the signature, then of the timestamp, flipped.
    body, _, sigs = note.partition("\n\n")
    line = sigs.splitlines()[-1]
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    for position in (len(blob) - 1, 4 + 7):
        tampered = bytearray(blob)
        tampered[position] ^= 1
        bad = f"{body}\n\n{sigs.splitlines()[0]}\n\u2014 {witness.name} "
        bad += base64.b64encode(bytes(tampered)).decode() + "\n"
        with pytest.raises(CosignatureError):
            verify_cosignature(bad, key)

    # The same cosignature on another checkpoint text.
    other = note.replace(f"\n{note.splitlines()[1]}\n", f"\n{int(note.splitlines()[1]) + 1}\n", 1)
    with pytest.raises(CosignatureError):
        verify_cosignature(other, key)


async def test_a_witness_ahead_of_us_answers_409_and_the_registry_resyncs(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    signer: Signer,
    admin: dict[str, str],
    witness: SuiteWitness,
    uniq: str,
) -> None:
    first = await _new_checkpoint(client, pool, signer, admin, f"org-{uniq}/r1")
    root = await pool.fetchval(
        "SELECT root_hash FROM ledger_checkpoints WHERE tree_size = $1", first
    )
    # The witness cosigned `first` for someone else (another replica, or before a restore
    # of our progress): our record says it has seen nothing.
    witness.latest[ORIGIN] = (first, bytes(root))
    second = await _new_checkpoint(client, pool, signer, admin, f"org-{uniq}/r2")
    async with httpx.AsyncClient() as http:
        assert await submit_checkpoint(pool, http, _configured(witness)) == second
    # Refused from size 0 with the size it has, then accepted with a proof from there.
    assert witness.statuses == [409, 200]
    assert witness.latest[ORIGIN][0] == second
    assert (
        await pool.fetchval(
            "SELECT tree_size FROM witness_progress WHERE witness = $1", witness.name
        )
        == second
    )


async def test_a_witness_that_does_not_trust_our_key_cosigns_nothing(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    signer: Signer,
    admin: dict[str, str],
    uniq: str,
) -> None:
    stranger = Signer(ORIGIN, Ed25519PrivateKey.generate())
    size = await _new_checkpoint(client, pool, signer, admin, f"org-{uniq}/s1")
    with serving(
        SuiteWitness(f"strict-{uniq}.test/w", log_origin=ORIGIN, log_vkey=stranger.verifier_key)
    ) as w:
        async with httpx.AsyncClient() as http:
            assert await submit_checkpoint(pool, http, _configured(w)) is None
        assert w.statuses == [403]
    assert not await pool.fetchval(
        "SELECT count(*) FROM witness_cosignatures WHERE tree_size = $1 AND witness = $2",
        size,
        w.name,
    )


async def test_the_background_worker_submits_each_new_checkpoint(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    signer: Signer,
    admin: dict[str, str],
    witness: SuiteWitness,
    uniq: str,
) -> None:
    stop = asyncio.Event()
    async with httpx.AsyncClient() as http:
        task = asyncio.create_task(
            run_witnesses(pool, http, [_configured(witness)], interval=0.05, stop=stop)
        )
        try:
            for n in range(2):
                size = await _new_checkpoint(client, pool, signer, admin, f"org-{uniq}/b{n}")
                for _ in range(200):
                    if witness.latest.get(ORIGIN, (0, b""))[0] == size:
                        break
                    await asyncio.sleep(0.05)
                assert witness.latest[ORIGIN][0] == size
        finally:
            stop.set()
            await task
    note = (await client.get("/v1/ledger/checkpoint")).text
    assert verify_cosignature(note, parse_witness_key(witness.vkey))


def test_witness_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="witness key"):
        parse_witnesses("not-a-key http://127.0.0.1:1")
    with pytest.raises(ValueError, match="URL"):
        parse_witnesses("a+b+c")


async def test_a_live_registry_gets_cosigned_and_verify_witness_key_checks_it(
    database_url: str,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    signer: Signer,
    admin: dict[str, str],
    witness: SuiteWitness,
    uniq: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``serve`` with a witness configured: its sealer signs, its witness worker submits,
    and ``risk-registry verify --witness-key`` passes with the witness's key only."""
    from service.cli.root import main
    from tests.helpers.ledger import write_test_key
    from tests.live_service import LiveService

    class Live(LiveService):
        async def wait_ready(self, within: float = 120.0) -> None:
            # It seals the shared database as it starts, on a busy machine.
            await super().wait_ready(within)

    key_file = write_test_key(tmp_path / "key.pem")
    await register_model(client, admin, f"org-{uniq}/live-witnessed")
    async with Live(
        database_url,
        tmp_path,
        REGISTRY_SIGNING_KEY_FILE=str(key_file),
        REGISTRY_CHECKPOINT_ORIGIN=ORIGIN,
        REGISTRY_SEALER="true",
        REGISTRY_SEAL_INTERVAL_SECONDS="0.2",
        REGISTRY_WITNESSES=f"{witness.vkey} {witness.url}",
        REGISTRY_WITNESS_INTERVAL_SECONDS="0.2",
    ) as live:
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            for _ in range(300):
                note = (await http.get("/v1/ledger/checkpoint")).text
                if f"\u2014 {witness.name} " in note:
                    break
                await asyncio.sleep(0.1)
        assert verify_cosignature(note, parse_witness_key(witness.vkey))
        (tmp_path / "w.vkey").write_text(witness.vkey + "\n")
        verify = ["verify", "--url", live.base_url, "--key", signer.verifier_key]
        verify += ["--state", str(tmp_path / "seen.json")]
        passed = [*verify, "--witness-key", f"@{tmp_path / 'w.vkey'}"]
        assert await asyncio.to_thread(main, passed) == 0
        assert f"cosigned by: {witness.name}" in capsys.readouterr().out
        impostor = SuiteWitness(witness.name, log_origin=ORIGIN, log_vkey=signer.verifier_key)
        assert await asyncio.to_thread(main, [*verify, "--witness-key", impostor.vkey]) == 3
        assert f"no valid cosignature by the witness {witness.name}" in capsys.readouterr().out
