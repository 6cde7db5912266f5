"""Frozen compliance reports: stored, signed as a note by the checkpoint key, bound to the
checkpoint covering their inputs, and checked offline by ``risk-registry verify-report``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Litestar

from service.api import snapshots as api
from service.domain.checkpoints import Signer
from service.domain.snapshots import canonical_json
from tests.conftest import REPO_ROOT, PlatformFixture, register_model
from tests.helpers.ledger import ORIGIN, seal_all

SNAPSHOTS = "/v1/reports/compliance/snapshots"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, offline: no database, no registry."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "service", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _period_with_a_hosting(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> dict[str, str]:
    model = await register_model(client, admin, f"org-{uniq}/frozen")
    r = await client.post(
        "/v1/hostings",
        json={"model": model["name"], "url": f"https://hub.example/{uniq}", "downloads": 7},
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    await asyncio.sleep(0.01)
    until = datetime.now(UTC)
    return {
        "from": (until - timedelta(hours=1)).isoformat(),
        "to": until.isoformat(),
        "platform": platform.slug,
    }


async def test_a_snapshot_is_signed_bound_and_verifies_offline(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    signer: Signer,
    admin: dict[str, str],
    regulator: dict[str, str],
    auditor: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
    tmp_path: Path,
) -> None:
    period = await _period_with_a_hosting(client, admin, platform, uniq)
    size = await seal_all(pool, signer)
    r = await client.post(SNAPSHOTS, json=period, headers=regulator)
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["location"] == f"{SNAPSHOTS}/{created['id']}"
    assert created["checkpoint"]["origin"] == ORIGIN
    # The newest checkpoint, which covers the events recorded before `to`.
    assert created["checkpoint"]["tree_size"] == size
    assert created["report"]["overall"]["prevent"]["hostings"] == 1
    # The note signs the report's RFC 8785 bytes themselves.
    text = created["note"].split("\n\n")[0].split("\n")
    assert text[:4] == [
        "risk-registry/compliance-report-snapshot/v1",
        ORIGIN,
        str(size),
        created["checkpoint"]["root_hash"],
    ]
    assert text[4].encode() == canonical_json(created["report"])

    # Auditors read it too; it is the same, and the same figures as the live report.
    r = await client.get(f"{SNAPSHOTS}/{created['id']}", headers=auditor)
    assert r.status_code == 200, r.text
    assert r.json() == created
    live = await client.get("/v1/reports/compliance", params=period, headers=regulator)
    assert {**live.json(), "generated_at": None} == {**created["report"], "generated_at": None}

    document = tmp_path / "snapshot.json"
    document.write_bytes(r.content)
    key_file = tmp_path / "registry.vkey"
    key_file.write_text(signer.verifier_key + "\n")
    for given in (signer.verifier_key, str(key_file), f"@{key_file}"):
        ok = _cli("verify-report", str(document), "--key", given)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "signed by this key" in ok.stdout

    # One figure changed after signing.
    tampered: dict[str, Any] = json.loads(r.content)
    tampered["report"]["overall"]["prevent"]["hostings"] = 2
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    result = _cli("verify-report", str(bad), "--key", signer.verifier_key)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "figures differ from the signed ones" in result.stdout

    # Another key of the same name.
    other = Signer(ORIGIN, Ed25519PrivateKey.generate())
    result = _cli("verify-report", str(document), "--key", other.verifier_key)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "no valid signature by this key" in result.stdout

    # A checkpoint other than the one the note names (an earlier one, also signed).
    earlier = await client.get("/v1/ledger/checkpoints/1")
    if earlier.status_code == 200 and earlier.json()["note"].startswith(ORIGIN + "\n"):
        swapped = json.loads(r.content)
        swapped["checkpoint"]["note"] = earlier.json()["note"]
        bad.write_text(json.dumps(swapped))
        result = _cli("verify-report", str(bad), "--key", signer.verifier_key)
        assert result.returncode == 3
        assert "not the one the signed note names" in result.stdout


async def test_snapshot_refusals_write_nothing(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    signer: Signer,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A checkpoint exists, but the hosting is recorded after it: not sealed up to `to`.
    await register_model(client, admin, f"org-{uniq}/sealed")
    await seal_all(pool, signer)
    period = await _period_with_a_hosting(client, admin, platform, uniq)
    before = await pool.fetchval("SELECT count(*) FROM report_snapshots")

    # Not sealed up to `to` yet: the request waits for the sealer, then a 503.
    monkeypatch.setattr(api, "WAIT_FOR_SEALER_SECONDS", 0.5)
    r = await client.post(SNAPSHOTS, json=period, headers=regulator)
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"]

    await seal_all(pool, signer)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    cases: list[tuple[dict[str, Any], dict[str, str], int]] = [
        ({**period, "to": later}, regulator, 422),  # the period has not ended
        ({**period, "from": period["to"]}, regulator, 422),
        ({**period, "from": "0001-06-01T00:00:00Z"}, regulator, 422),
        ({**period, "platform": f"nowhere-{uniq}"}, regulator, 404),
        ({**period, "extra": 1}, regulator, 400),
        ({"from": period["from"]}, regulator, 400),
        (period, platform.headers, 403),
        (period, {}, 401),
    ]
    for body, headers, status in cases:
        r = await client.post(SNAPSHOTS, json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert await pool.fetchval("SELECT count(*) FROM report_snapshots") == before

    r = await client.get(f"{SNAPSHOTS}/00000000-0000-7000-8000-000000000000", headers=regulator)
    assert r.status_code == 404
    r = await client.get(
        f"{SNAPSHOTS}/00000000-0000-7000-8000-000000000000", headers=platform.headers
    )
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        # RFC 8785 appendix B: numbers as ECMAScript writes them.
        (0.0, "0"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (123456789012345680000.0, "123456789012345680000"),
        (9007199254740992.0, "9007199254740992"),
        (0.000001, "0.000001"),
        (4.5, "4.5"),
        (2e-3, "0.002"),
        (10800.0, "10800"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (333333333.3333333, "333333333.3333333"),
    ],
)
def test_canonical_numbers_follow_rfc_8785(value: float, encoded: str) -> None:
    assert canonical_json(value).decode() == encoded


def test_canonical_objects_sort_keys_by_utf16_and_escape_minimally() -> None:
    # RFC 8785 section 3.2.3's sorting example, and its string escaping.
    data = {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u0080": 6, "\u00f6": 7}
    assert canonical_json(data).decode() == (
        '{"\\r":2,"1":4,"\u0080":6,"\u00f6":7,"\u20ac":1,"\U0001f600":5,"\ufb33":3}'
    )
    assert canonical_json(["\u2028", "\x1f", '"', None, True]).decode() == (
        '["\u2028","\\u001f","\\"",null,true]'
    )
