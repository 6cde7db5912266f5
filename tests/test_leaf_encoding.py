"""Leaf format 2 is RFC 8785 (JCS): the published vectors and every real event recompute
with an independent implementation (the ``rfc8785`` package), and leaves sealed in format 1
before keep verifying."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import struct
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import rfc8785
from litestar import Litestar

from service.domain import sealer
from service.domain.checkpoints import Signer
from service.domain.jcs import MAX_SAFE_INTEGER, NotCanonical, canonicalize
from service.domain.ledger import canonical_entry
from service.domain.verification import Seen, export_events, verify_registry
from tests.conftest import PlatformFixture, register_model
from tests.helpers.audits import audit_body, grant, new_auditor
from tests.helpers.jcs import jcs_leaf, read_event, read_number
from tests.helpers.ledger import seal_all

VECTORS = Path(__file__).parent / "vectors" / "leaves.json"


def test_vectors_recompute_with_an_independent_implementation() -> None:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"), parse_int=read_number)
    assert {v["name"] for v in vectors} >= {"floats", "integers", "strings", "key-order"}
    text = VECTORS.read_text(encoding="utf-8")
    for needle in ("1e-07", "1e+21", "-0.0", "1000000000000000000000", "\u2028", "\U0001f600"):
        assert needle in text  # the cases the vectors promise are there
    for vector in vectors:
        entry = vector["entry"].encode()
        assert rfc8785.dumps(vector["event"]) == entry, vector["name"]
        assert hashlib.sha256(b"\x00" + entry).hexdigest() == vector["leaf_hash"]
        assert canonical_entry(vector["event"]) == entry, vector["name"]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(8 if depth < 3 else 5)
    if choice == 0:
        while True:
            x = struct.unpack("<d", rng.randbytes(8))[0]
            if x == x and abs(x) != float("inf"):
                return x
    if choice == 1:
        return rng.randint(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    if choice == 2:
        alphabet = 'aZ\u00e9\u2028\u2029\x00\x1f\x7f"\\/\ufb01\U0001f600\ue000\u4e2d'
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(6)))
    if choice == 3:
        return rng.choice([True, False, None])
    if choice == 4:
        return rng.choice([1e-7, 1e21, -0.0, 0.1, 5.0, 1e-6, 1e20, 2.0**53, 5e-324])
    if choice == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["a", "b", "\u00e9", "\ufb01", "\U0001f600", "\ue000", "aa", "A", ""]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def test_the_encoder_equals_rfc8785_on_random_values() -> None:
    rng = random.Random(8785)
    for _ in range(20_000):
        value = _random_value(rng)
        assert canonicalize(value) == rfc8785.dumps(value), value


def test_values_jcs_cannot_carry_are_refused() -> None:
    assert canonicalize(2**60) == b"1152921504606847000"  # a double, as ECMAScript writes it
    assert canonicalize(2**53 + 1) == b"9007199254740992"  # the double its text denotes
    for bad in (10**400, float("nan"), float("inf"), {1: "a"}):
        with pytest.raises(NotCanonical):
            canonicalize(bad)


async def _served_events(client: httpx.AsyncClient, headers: dict[str, str]) -> list[bytes]:
    """Every event, each as its own JSON text exactly as served."""
    texts: list[bytes] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"order": "oldest", "limit": 200}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/v1/events", params=params, headers=headers)
        assert r.status_code == 200, r.text
        page = json.loads(r.content, parse_int=read_number)
        texts.extend(json.dumps(item).encode() for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return texts


async def _leaves(client: httpx.AsyncClient, size: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while len(items) < size:
        r = await client.get("/v1/ledger/leaves", params={"start": len(items), "limit": 10_000})
        assert r.status_code == 200, r.text
        items.extend(r.json()["items"])
    return items[:size]


async def test_real_events_recompute_with_an_independent_implementation(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    signer: Signer,
    uniq: str,
) -> None:
    name = f"org-{uniq}/jcs"
    model = await register_model(client, admin, name, provider="Caf\u00e9 \u2028 Labs \U0001f600")
    model_id = str(model["id"])
    r = await client.post(
        "/v1/hostings",
        json={"model": name, "url": f"https://hub.test/{uniq}", "downloads": MAX_SAFE_INTEGER},
        headers=platform.headers,
    )
    assert r.status_code == 201, r.text
    auditor = await new_auditor(pool)
    await grant(client, admin, auditor, name, ["weights"])
    values = [1e-7, 1e21, -0.0, 0.1, 5.0, 1.5e300, 5e-324, 123456.789]
    evaluations = [{"metric": f"m{i}", "value": v} for i, v in enumerate(values)]
    r = await client.post(
        "/v1/audits",
        content=json.dumps(audit_body(name, evaluations=evaluations)),
        headers={**auditor.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text
    size = await seal_all(pool, signer)

    served = await _served_events(client, admin)
    leaves = await _leaves(client, size)
    by_seq = {read_event(text)["seq"]: text for text in served}
    checked = 0
    for leaf in leaves:
        if leaf["format"] != 2:
            assert model_id not in by_seq[leaf["seq"]].decode()
            continue
        event = read_event(by_seq[leaf["seq"]])
        assert jcs_leaf(event) == base64.b64decode(leaf["leaf_hash"]), event
        checked += 1
    ours = [read_event(t) for t in served if model_id in t.decode()]
    audit = next(e for e in ours if e["kind"] == "audit.created")
    stored = {e["metric"]: e["value"] for e in audit["payload"]["state"]["evaluations"]}
    assert stored == {f"m{i}": v for i, v in enumerate(values)}  # doubles survive the store
    assert checked >= len(ours) >= 4
    formats = (await client.get("/v1/ledger/leaf-formats")).json()["ranges"]
    assert formats[-1]["format"] == 2
    assert formats[-1]["last_leaf"] == size - 1


async def test_intake_refuses_counts_beyond_what_a_leaf_holds_exactly(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    name = f"org-{uniq}/big"
    model = await register_model(client, admin, name)
    r = await client.post(
        "/v1/hostings",
        json={"model": name, "url": f"https://hub.test/{uniq}", "downloads": MAX_SAFE_INTEGER + 1},
        headers=platform.headers,
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/v1/hostings", params={"model_id": str(model["id"])}, headers=admin)
    assert r.json()["items"] == []


async def test_leaves_sealed_in_format_1_keep_verifying(
    client: httpx.AsyncClient,
    signed_app: Litestar,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    auditor: dict[str, str],
    signer: Signer,
    tmp_path: Path,
    uniq: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A registry that sealed before format 2 existed: every leaf so far in format 1.
    await register_model(client, admin, f"org-{uniq}/before")
    with monkeypatch.context() as m:
        m.setattr(sealer, "_entry", lambda e: (1, canonical_entry(e, 1)))
        old_size = await seal_all(pool, signer)
    await register_model(client, admin, f"org-{uniq}/after")
    size = await seal_all(pool, signer)
    assert size > old_size
    ranges = (await client.get("/v1/ledger/leaf-formats")).json()["ranges"]
    assert {"format": 1, "last_leaf": old_size - 1} in [
        {"format": x["format"], "last_leaf": x["last_leaf"]} for x in ranges
    ]
    assert ranges[-1] == {"format": 2, "first_leaf": old_size, "last_leaf": size - 1}

    export = tmp_path / "events.jsonl"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=signed_app),  # type: ignore[arg-type]
        base_url="http://registry.test",
        headers=auditor,
    ) as http:
        await export_events(http, export)
    report = await verify_registry(
        client, verifier_key=signer.verifier_key, state=Seen(), export=export
    )
    assert report.ok, (report.problems, report.mismatches)
    assert report.events_checked == size
