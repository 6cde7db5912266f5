"""``risk-registry verify``: signatures, consistency across runs, and a tampered event found."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar

from service.cli import main
from service.domain.checkpoints import Signer
from service.domain.verification import Seen, export_events, verify_registry
from tests.conftest import register_model
from tests.helpers.ledger import seal_all


async def _export(app: Litestar, headers: dict[str, str], path: Path) -> int:
    """Export the ledger as an auditor would, through the command's own code."""
    transport = httpx.ASGITransport(app=cast("Any", app))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://registry.test", headers=headers
    ) as http:
        return await export_events(http, path)


async def test_verify_checks_signature_consistency_and_export(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    auditor: dict[str, str],
    signer: Signer,
    tmp_path: Path,
    uniq: str,
) -> None:
    await register_model(client, admin, f"org-{uniq}/audited")
    await seal_all(pool, signer)
    seen = Seen()
    export = tmp_path / "events.jsonl"
    await _export(signed_app, auditor, export)

    report = await verify_registry(
        client, verifier_key=signer.verifier_key, state=seen, export=export
    )
    assert report.ok, report.problems
    assert report.events_checked == report.tree_size
    assert len(seen.checkpoints) == 1

    await register_model(client, admin, f"org-{uniq}/later")
    await seal_all(pool, signer)
    report = await verify_registry(client, verifier_key=signer.verifier_key, state=seen)
    assert report.ok, report.problems
    assert report.consistent_with == [seen.checkpoints[0]["tree_size"]]
    assert len(seen.checkpoints) == 2


async def test_verify_names_the_event_altered_behind_the_ledgers_back(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    auditor: dict[str, str],
    signer: Signer,
    tmp_path: Path,
    uniq: str,
) -> None:
    model = await register_model(client, admin, f"org-{uniq}/victim", provider="Honest")
    await seal_all(pool, signer)
    seq = await conn.fetchval(
        "SELECT seq FROM events WHERE subject_id = $1 AND kind = 'model.registered'", model["id"]
    )
    # A superuser bypasses the append-only trigger for one transaction.
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            "UPDATE events SET payload = jsonb_set(payload, '{state,provider}', '\"Forged\"') "
            "WHERE seq = $1",
            seq,
        )
    with pytest.raises(asyncpg.PostgresError):
        await conn.execute("UPDATE events SET kind = kind WHERE seq = $1", seq)

    export = tmp_path / "events.jsonl"
    await _export(signed_app, auditor, export)
    report = await verify_registry(
        client, verifier_key=signer.verifier_key, state=Seen(), export=export
    )
    assert not report.ok
    assert [m.seq for m in report.mismatches] == [seq]
    assert "does not hash to the checkpoint's root" in report.problems[0]

    # Restore the row so later tests see an honest ledger.
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            "UPDATE events SET payload = jsonb_set(payload, '{state,provider}', '\"Honest\"') "
            "WHERE seq = $1",
            seq,
        )
    await _export(signed_app, auditor, export)
    report = await verify_registry(
        client, verifier_key=signer.verifier_key, state=Seen(), export=export
    )
    assert report.ok, report.problems


async def test_verify_refuses_a_checkpoint_signed_by_another_key(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    signer: Signer,
    tmp_path: Path,
) -> None:
    from service.domain.checkpoints import load_or_create_signer

    await seal_all(pool, signer)
    stranger = load_or_create_signer(tmp_path / "k.pem", name=signer.name)
    seen = Seen()
    report = await verify_registry(client, verifier_key=stranger.verifier_key, state=seen)
    assert not report.ok
    assert seen.checkpoints == []


async def test_verify_detects_a_fork_against_remembered_checkpoints(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    signer: Signer,
) -> None:
    size = await seal_all(pool, signer)
    seen = Seen(checkpoints=[{"tree_size": size, "root_hash": "A" * 43 + "="}])
    report = await verify_registry(client, verifier_key=signer.verifier_key, state=seen)
    assert not report.ok
    assert any("fork" in p for p in report.problems)


def test_checkpoint_key_command_prints_the_verifier_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REGISTRY_SIGNING_KEY_FILE", str(tmp_path / "key.pem"))
    monkeypatch.setenv("REGISTRY_CHECKPOINT_ORIGIN", "example.org/registry")
    assert main(["checkpoint-key"]) == 0
    first = capsys.readouterr().out.strip()
    assert first.startswith("example.org/registry+")
    assert main(["checkpoint-key", "--json"]) == 0
    assert msgspec.json.decode(capsys.readouterr().out)["verifier_key"] == first


async def test_verify_command_against_a_live_registry(
    database_url: str,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    auditor: dict[str, str],
    signer: Signer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    uniq: str,
) -> None:
    from tests.helpers.ledger import ORIGIN, write_test_key
    from tests.live_service import LiveService

    key_file = write_test_key(tmp_path / "key.pem")
    state = tmp_path / "seen.json"
    export = tmp_path / "events.jsonl"
    await register_model(client, admin, f"org-{uniq}/live")
    await seal_all(pool, signer)
    async with LiveService(
        database_url,
        tmp_path,
        REGISTRY_SIGNING_KEY_FILE=str(key_file),
        REGISTRY_CHECKPOINT_ORIGIN=ORIGIN,
    ) as live:
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            key = (await http.get("/.well-known/risk-registry/checkpoint-key")).text.strip()
        assert key == signer.verifier_key
        (tmp_path / "vkey").write_text(key + "\n")
        token = auditor["Authorization"].removeprefix("Bearer ")
        export_args = ["ledger-export", "--url", live.base_url, "--api-key", token]
        assert await asyncio.to_thread(main, [*export_args, "--output", str(export)]) == 0
        refused = ["ledger-export", "--url", live.base_url, "--api-key", "rr_0_not-a-key"]
        assert await asyncio.to_thread(main, [*refused, "--output", str(tmp_path / "x")]) == 1
        assert "answered 401" in capsys.readouterr().err
        assert not (tmp_path / "x").exists()
        verify = ["verify", "--url", live.base_url, "--key", str(tmp_path / "vkey")]
        verify += ["--state", str(state)]
        assert await asyncio.to_thread(main, [*verify, "--events", str(export)]) == 0
        assert "OK" in capsys.readouterr().out
        first = msgspec.json.decode(state.read_bytes())["checkpoints"]

        await register_model(client, admin, f"org-{uniq}/live-later")
        await seal_all(pool, signer)
        assert await asyncio.to_thread(main, [*verify, "--json"]) == 0
        report = msgspec.json.decode(capsys.readouterr().out)
        assert report["ok"] is True
        assert report["consistent_with"] == [first[0]["tree_size"]]
        assert len(msgspec.json.decode(state.read_bytes())["checkpoints"]) == 2


async def test_verify_names_where_a_deleted_event_was(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    auditor: dict[str, str],
    signer: Signer,
    tmp_path: Path,
    uniq: str,
) -> None:
    model = await register_model(client, admin, f"org-{uniq}/erased")
    await register_model(client, admin, f"org-{uniq}/after-erased")
    await seal_all(pool, signer)
    row = await conn.fetchrow(
        "SELECT seq, stage, kind, subject_type, subject_id, model_id, platform_id, actor_id, "
        "occurred_at, recorded_at, payload FROM events "
        "WHERE subject_id = $1 AND kind = 'model.registered'",
        model["id"],
    )
    assert row is not None
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("DELETE FROM events WHERE seq = $1", row["seq"])
    export = tmp_path / "events.jsonl"
    try:
        await _export(signed_app, auditor, export)
        report = await verify_registry(
            client, verifier_key=signer.verifier_key, state=Seen(), export=export
        )
    finally:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(
                "INSERT INTO events (seq, stage, kind, subject_type, subject_id, model_id, "
                "platform_id, actor_id, occurred_at, recorded_at, payload) "
                "OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                *row.values(),
            )
    assert not report.ok
    # Named once, and the events after it still line up with their leaves.
    assert [(m.seq, m.reason.split(":")[0]) for m in report.mismatches] == [
        (row["seq"], "missing from the export")
    ]


async def test_an_export_older_than_the_checkpoint_is_checked_as_a_prefix(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    auditor: dict[str, str],
    signer: Signer,
    tmp_path: Path,
    uniq: str,
) -> None:
    await seal_all(pool, signer)
    export = tmp_path / "events.jsonl"
    await _export(signed_app, auditor, export)
    await register_model(client, admin, f"org-{uniq}/newer")
    await seal_all(pool, signer)
    report = await verify_registry(
        client, verifier_key=signer.verifier_key, state=Seen(), export=export
    )
    assert report.ok, report.problems
    assert report.sealed_after_export >= 1
