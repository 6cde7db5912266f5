"""Records against the ledger: a row changed behind the registry's back is named, with its
field, by ``verify --records``, by the bundle verifier and by the background pass."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import asyncpg
import httpx
import msgspec
import pytest

from service.cli import main
from service.domain.bundles import build_bundle, local_directory
from service.domain.checkpoints import Signer
from service.domain.exports import ExportFilters
from service.domain.models import update_model
from service.domain.reconciler import reconcile_all
from service.schemas.models import ModelPatch
from tests.conftest import PlatformFixture, bearer, make_key, register_model
from tests.helpers.audits import audit_body, grant, new_auditor
from tests.helpers.divergences import divergences
from tests.helpers.ledger import seal_all
from tests.helpers.notices import decide, host


@dataclass(frozen=True)
class World:
    model: str
    ids: dict[str, str]  # dataset -> record id
    auditor: dict[str, str]


#: dataset -> (table, column changed, its export column, the new value)
TAMPER = {
    "models": ("models", "provider", "provider", "Forged Inc"),
    "hostings": ("hostings", "url", "url", "https://forged.example/x"),
    "incidents": ("incidents", "title", "title", "nothing to see here"),
    "audits": ("audits", "summary", "summary", "all clear"),
    "decisions": ("decommissions", "reason", "reason", "forged reason"),
}


@pytest.fixture
async def world(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> World:
    name = f"rec{uniq}/model"
    model = await register_model(client, admin, name, provider="Honest")
    hosting_id = await host(client, admin, name, platform)
    r = await client.post(
        "/v1/incidents",
        json={
            "title": "harmful output",
            "category": "harmful_content",
            "severity": "high",
            "models": [name],
            "hostings": [hosting_id],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    incident_id = r.json()["id"]
    auditor = await new_auditor(pool)
    await grant(client, admin, auditor, name, ["weights"])
    body = audit_body(name, summary="first look")
    body["findings"] = [{"title": "leaks", "severity": "high"}]
    r = await client.post("/v1/audits", json=body, headers=auditor.headers)
    assert r.status_code == 201, r.text
    audit_id = r.json()["id"]
    approver = bearer(await make_key(pool, "admin"))
    decision = await decide(client, admin, approver, name, notify=False)
    return World(
        model=str(model["id"]),
        ids={
            "models": str(model["id"]),
            "hostings": hosting_id,
            "incidents": incident_id,
            "audits": audit_id,
            "decisions": decision["id"],
        },
        auditor=auditor.headers,
    )


async def _tamper(conn: asyncpg.Connection, world: World) -> dict[str, Any]:
    """Change one field of each record as a superuser would; returns the old values."""
    old = {}
    for dataset, (table, column, _, value) in TAMPER.items():
        record_id = world.ids[dataset]
        old[dataset] = await conn.fetchval(
            f"SELECT {column} FROM {table} WHERE id = $1",  # noqa: S608 - constants above
            record_id,
        )
        await conn.execute(
            f"UPDATE {table} SET {column} = $2 WHERE id = $1",  # noqa: S608 - constants above
            record_id,
            value,
        )
    return old


async def _restore(conn: asyncpg.Connection, world: World, old: dict[str, Any]) -> None:
    for dataset, (table, column, _, _) in TAMPER.items():
        await conn.execute(
            f"UPDATE {table} SET {column} = $2 WHERE id = $1",  # noqa: S608 - constants above
            world.ids[dataset],
            old[dataset],
        )


def _expected(world: World) -> set[tuple[str, ...]]:
    return {(d, world.ids[d], TAMPER[d][2]) for d in TAMPER}


def _ours(found: set[tuple[str, ...]], world: World) -> set[tuple[str, ...]]:
    return {f for f in found if f[1] in world.ids.values()}


async def test_the_background_pass_names_each_changed_record_and_field(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    world: World,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await reconcile_all(pool, batch_size=500)
    assert _ours(await divergences(client, admin), world) == set()

    old = await _tamper(conn, world)
    try:
        with caplog.at_level(logging.WARNING, logger="service.domain.reconciler"):
            await reconcile_all(pool, batch_size=500)
        assert _ours(await divergences(client, admin), world) == _expected(world)
        logged = {
            (r.__dict__.get("dataset"), r.__dict__.get("record_id"))
            for r in caplog.records
            if r.getMessage() == "record differs from its ledger state"
        }
        assert {(d, world.ids[d]) for d in TAMPER} <= logged
        metrics = (await client.get("/metrics")).text
        line = next(x for x in metrics.splitlines() if x.startswith("registry_records_divergent "))
        assert float(line.split()[1]) >= len(TAMPER)
        # Admin only.
        r = await client.get("/v1/admin/divergences", headers=platform.headers)
        assert r.status_code == 403
        r = await client.get("/v1/admin/divergences")
        assert r.status_code == 401
    finally:
        await _restore(conn, world, old)
    await reconcile_all(pool, batch_size=500)
    assert _ours(await divergences(client, admin), world) == set()


async def _export_dir(
    client: httpx.AsyncClient, headers: dict[str, str], world: World, out: Path, fmt: str
) -> None:
    out.mkdir()
    for dataset in TAMPER:
        r = await client.get(
            f"/v1/exports/{dataset}",
            params={"format": fmt, "model_id": world.model},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        (out / f"{dataset}.{fmt}").write_bytes(r.content)


async def test_verify_records_names_each_changed_row_and_field(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    database_url: str,
    regulator: dict[str, str],
    auditor: dict[str, str],
    world: World,
    signer: Signer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.helpers.ledger import ORIGIN, write_test_key
    from tests.live_service import LiveService

    await seal_all(pool, signer)
    key_file = write_test_key(tmp_path / "key.pem")
    (tmp_path / "vkey").write_text(signer.verifier_key + "\n")
    formats = ("jsonl", "csv")
    for fmt in formats:
        await _export_dir(client, regulator, world, tmp_path / f"clean-{fmt}", fmt)
    old = await _tamper(conn, world)
    try:
        for fmt in formats:
            await _export_dir(client, regulator, world, tmp_path / f"tampered-{fmt}", fmt)
    finally:
        await _restore(conn, world, old)
    reports = {}
    async with LiveService(
        database_url,
        tmp_path,
        REGISTRY_SIGNING_KEY_FILE=str(key_file),
        REGISTRY_CHECKPOINT_ORIGIN=ORIGIN,
        REGISTRY_RECONCILER="false",
    ) as live:
        events = tmp_path / "events.jsonl"
        token = auditor["Authorization"].removeprefix("Bearer ")
        args = ["ledger-export", "--url", live.base_url, "--api-key", token]
        assert await asyncio.to_thread(main, [*args, "--output", str(events)]) == 0
        verify = ["verify", "--url", live.base_url, "--key", f"@{tmp_path / 'vkey'}"]
        verify += ["--state", str(tmp_path / "seen.json"), "--events", str(events)]
        for fmt in formats:
            capsys.readouterr()
            clean = ["--records", str(tmp_path / f"clean-{fmt}")]
            assert await asyncio.to_thread(main, [*verify, *clean]) == 0
            out = capsys.readouterr().out
            assert "DIVERGENT" not in out, out
            tampered = ["--records", str(tmp_path / f"tampered-{fmt}"), "--json"]
            assert await asyncio.to_thread(main, [*verify, *tampered]) == 3
            reports[fmt] = msgspec.json.decode(capsys.readouterr().out)
    for fmt, report in reports.items():
        assert report["ok"] is False
        for dataset, (_, _, column, _) in TAMPER.items():
            named = [d for d in report["divergences"] if world.ids[dataset] in d]
            assert named, (fmt, dataset, report["divergences"])
            assert any(f"{column} is" in d for d in named), (fmt, named)
        assert all(any(i in d for i in world.ids.values()) for d in report["divergences"])


async def test_the_bundle_verifier_names_each_changed_row_and_field(
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    world: World,
    signer: Signer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await seal_all(pool, signer)
    (tmp_path / "vkey").write_text(signer.verifier_key + "\n")
    datasets = ["events", *TAMPER]

    async def bundle(out: Path) -> None:
        async with pool.acquire() as c:
            await build_bundle(
                cast("asyncpg.Connection", c),
                datasets=datasets,
                fmt="jsonl",
                filters=ExportFilters(),
                platform=None,
                signer=signer,
                open_file=local_directory(out),
            )

    old = await _tamper(conn, world)
    try:
        await bundle(tmp_path / "bundle")
    finally:
        await _restore(conn, world, old)
    verify = ["verify-export", str(tmp_path / "bundle"), "--key", str(tmp_path / "vkey")]
    capsys.readouterr()
    assert await asyncio.to_thread(main, [*verify, "--json"]) == 1
    problems = msgspec.json.decode(capsys.readouterr().out)["problems"]
    for dataset, (_, _, column, _) in TAMPER.items():
        assert any(
            d.startswith(f"{dataset} {world.ids[dataset]}: {column} is") for d in problems
        ), (dataset, problems)


async def test_records_written_on_every_path_agree_with_their_ledger_state(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    world: World,
    uniq: str,
) -> None:
    """No false alarm: webhooks (each message kind that writes a record), REST updates,
    triage, audit completion and findings, a decision notified and confirmed."""
    from tests.helpers.notices import confirm_target
    from tests.helpers.webhooks import deliver, event, new_secret

    secret = await new_secret(client, admin, platform.slug)
    name, hooked = f"rec{uniq}/model", f"rec{uniq}/hooked"
    touched = set(world.ids.values())

    async def send(kind: str, data: dict[str, Any]) -> None:
        r = await deliver(client, platform.slug, secret, event(kind, data))
        assert r.status_code == 202, (kind, r.text)

    await send("model.hosted", {"model": hooked, "url": f"https://hub.example/{hooked}"})
    await send(
        "model.updated",
        {
            "model": hooked,
            "revision": "r2",
            "licence": "mit",
            "downloads": 12,
            "documentation": {"model_card": {"present": True, "url": "https://hub.example/c"}},
        },
    )
    await send("model.downloads", {"counts": [{"model": hooked, "downloads": 40}]})
    await send("model.restricted", {"model": hooked, "reason": "gated for review"})
    await send(
        "model.renamed",
        {"model": hooked, "name": f"{hooked}-v2", "url": f"https://hub.example/{hooked}-v2"},
    )
    await send(
        "incident.reported",
        {"title": "leaks data", "category": "privacy", "severity": "medium", "models": [name]},
    )
    rows = await pool.fetch(
        "SELECT h.id FROM hostings h JOIN models m ON m.id = h.model_id WHERE m.name = $1",
        hooked,
    )
    touched |= {str(r["id"]) for r in rows}
    touched |= {
        str(r["subject_id"])
        for r in await pool.fetch(
            "SELECT subject_id FROM events WHERE kind = 'incident.reported' AND model_id = $1",
            world.model,
        )
    }
    r = await client.patch(
        f"/v1/models/{world.model}",
        json={"tasks": ["chat"], "provider": "Honest Labs"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    r = await client.patch(
        f"/v1/hostings/{world.ids['hostings']}",
        json={"licence": "apache-2.0", "gated": True},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    incident = world.ids["incidents"]
    for step in ("triaged", "investigating", "mitigated"):
        r = await client.post(
            f"/v1/incidents/{incident}/transitions", json={"to": step}, headers=admin
        )
        assert r.status_code == 200, (step, r.text)
    audit = world.ids["audits"]
    r = await client.post(
        f"/v1/audits/{audit}/complete", json={"outcome": "conditional"}, headers=world.auditor
    )
    assert r.status_code == 200, r.text
    finding = r.json()["findings"][0]["id"]
    r = await client.post(
        f"/v1/audits/{audit}/findings/{finding}/status",
        json={"status": "remediated"},
        headers=world.auditor,
    )
    assert r.status_code == 200, r.text
    decision_id = world.ids["decisions"]
    r = await client.post(f"/v1/decommissions/{decision_id}/notify", headers=admin)
    assert r.status_code == 200, r.text
    decision = r.json()
    for target in decision["targets"]:
        await confirm_target(pool, decision, target)

    await reconcile_all(pool, batch_size=500)
    found = await divergences(client, admin)
    assert {f for f in found if f[1] in touched} == set()


async def test_a_record_written_during_a_pass_is_not_reported(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    uniq: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An operator watching the divergence log while platforms keep writing: a model
    changed the registry's way (row and event in one transaction) between the pass's read
    of the row and its read of the ledger is not reported as differing."""
    model = await register_model(client, admin, f"race{uniq}/model", provider="Before")
    model_id = UUID(str(model["id"]))
    await reconcile_all(pool, batch_size=100_000)
    async with pool.acquire() as held:
        writer = cast("asyncpg.Connection", held)
        tx = writer.transaction()
        await tx.start()
        # The pass reads the models' rows, then waits for the ledger, which this holds.
        await writer.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        with caplog.at_level(logging.WARNING, logger="service.domain.reconciler"):
            passing = asyncio.create_task(reconcile_all(pool, batch_size=100_000))
            await _until_waiting_for(writer, "events")
            await update_model(
                writer, model_id=model_id, patch=ModelPatch(provider="After"), actor_id=None
            )
            await tx.commit()
            await passing
    reported = {
        r.__dict__.get("record_id")
        for r in caplog.records
        if r.getMessage() == "record differs from its ledger state"
    }
    assert str(model_id) not in reported
    await reconcile_all(pool, batch_size=100_000)
    assert str(model_id) not in {d[1] for d in await divergences(client, admin)}


async def _until_waiting_for(conn: asyncpg.Connection, table: str) -> None:
    """Until another backend waits for a lock on ``table``."""
    for _ in range(2400):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = $1::regclass",
            table,
        )
        if waiting:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"nothing waited for {table}")
