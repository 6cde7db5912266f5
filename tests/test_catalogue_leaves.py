"""The ledger events a catalogue sync writes in SQL are byte for byte those the service's own
encoder gives: the sealer's RFC 8785 leaf entry of each stored event equals the entry of the
same event with its payload built in Python from the record as the service reads it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import httpx
import msgspec
import pytest

from service.db.queries import hostings as hostings_q
from service.db.queries import ledger_tree
from service.db.queries import models as models_q
from service.domain.ledger import LEAF_FORMAT_JCS, canonical_entry, to_state
from service.domain.models import model_state
from service.schemas.hostings import Hosting
from service.schemas.models import Model
from tests.conftest import PlatformFixture
from tests.helpers.catalogue import line, ndjson, push
from tests.helpers.webhooks import new_secret


@pytest.fixture
async def secret(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture
) -> str:
    return await new_secret(client, admin, platform.slug)


async def _expected_payload(conn: asyncpg.Connection, event: dict[str, Any]) -> dict[str, Any]:
    """The event's payload as the Python path builds it: ``to_state`` of the record read back
    (a record a sync registers or adds is not changed after its event), beside the link."""
    subject = event["subject_id"]
    if event["kind"] == "model.registered":
        row = await models_q.select_model(conn, model_id=subject)
        assert row is not None
        return {"state": model_state(msgspec.convert(dict(row), Model))}
    assert event["kind"] == "hosting.recorded", event["kind"]
    row = await hostings_q.select_hosting(conn, hosting_id=subject, platform_id=None)
    assert row is not None
    return {
        "catalogue": event["payload"]["catalogue"],
        "state": to_state(msgspec.convert(dict(row), Hosting)),
    }


async def test_sql_built_events_have_the_service_encoders_leaf_bytes(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    secret: str,
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    first_seq = int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM events"))
    base = f"acme/leaf-base-{uniq}"
    body = ndjson(
        [
            # Every field given, a base model registered with it, and a download count:
            # downloads_at is the catalogue's time (whole seconds), created_at the
            # transaction's (with microseconds), so both timestamp forms are written.
            line(
                f"acme/leaf-a-{uniq}",
                external_id=f"leaf-{uniq}",
                revision="r1",
                licence="apache-2.0",
                gated=True,
                downloads=2**53 - 1,
                base_model=base,
                relation="quantisation",
                documentation={
                    "model_card": {"present": True, "url": "https://hub.example/card"},
                    "risk_analysis": {"present": True},
                },
            ),
            # Nothing optional, and a name in mixed case.
            line(f"Acme/Leaf-B-{uniq}"),
        ]
    )
    r = await push(client, platform.slug, secret, body, msg_id=f"leaf-{uniq}")
    assert r.status_code == 200, r.text
    summary = r.json()
    assert (summary["added"], summary["registered"], summary["events"]) == (2, 3, 5), summary

    rows = await ledger_tree.select_events_after(conn, after_seq=first_seq, limit=1000)
    events = [dict(row) for row in rows if row["platform_id"] == UUID(platform.id)]
    assert sorted(e["kind"] for e in events) == sorted(
        ["model.registered"] * 3 + ["hosting.recorded"] * 2
    )
    for event in events:
        if event["kind"] == "hosting.recorded":
            assert event["payload"]["catalogue"] == {
                "id": summary["sync_id"],
                "delivery_id": f"leaf-{uniq}",
            }
        expected = {**event, "payload": await _expected_payload(conn, event)}
        assert event["payload"] == expected["payload"], event["kind"]
        assert canonical_entry(event, LEAF_FORMAT_JCS) == canonical_entry(
            expected, LEAF_FORMAT_JCS
        ), event["kind"]


async def test_events_follow_registration_then_line_order(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    secret: str,
    conn: asyncpg.Connection,
    uniq: str,
) -> None:
    """The transaction that checks a catalogue registers the new models a line takes as
    its base, a round at a time (a base before the models derived from it; a cycle of new
    bases, last, without them), each round in name order. Then each part (the lines whose
    number modulo the sync's parts is its own) registers the other new models its lines
    name, in name order, and records their hostings in line order; parts run at once, so
    only each part's own events keep that order."""
    first_seq = int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM events"))
    a, b, c, d, e, x, y = (f"acme/order-{letter}-{uniq}" for letter in "abcdexy")
    lines: list[dict[str, Any] | str] = [
        line(c),
        line(a, base_model=b, relation="fine_tune"),
        line(d),
        line(e, base_model=a, relation="adapter"),
        line(x, base_model=y, relation="merge"),
        line(y, base_model=x, relation="merge"),
    ]
    r = await push(client, platform.slug, secret, ndjson(lines))
    assert r.status_code == 200, r.text
    assert (r.json()["registered"], r.json()["added"]) == (7, 6), r.json()
    parts = await conn.fetchval(
        "SELECT parts FROM catalogue_syncs WHERE id = $1", UUID(r.json()["sync_id"])
    )
    assert parts == 2  # the default
    rows = await ledger_tree.select_events_after(conn, after_seq=first_seq, limit=1000)
    events = [
        (row["kind"], row["payload"]["state"]["name"], row["payload"]["state"].get("base_model"))
        for row in rows
        if row["platform_id"] == UUID(platform.id)
    ]
    # The checks: b (no base), then a (on b), then the cycle x, y without bases.
    assert events[:4] == [
        ("model.registered", b, None),
        ("model.registered", a, b),
        ("model.registered", x, None),
        ("model.registered", y, None),
    ]
    rest = events[4:]
    # Part 0 (lines 2, 4, 6): e registered on a; then a, e, y hosted.
    part_0: list[tuple[str, str, str | None]] = [
        ("model.registered", e, a),
        ("hosting.recorded", a, None),
        ("hosting.recorded", e, None),
        ("hosting.recorded", y, None),
    ]
    # Part 1 (lines 1, 3, 5): c and d registered; then c, d, x hosted.
    part_1: list[tuple[str, str, str | None]] = [
        ("model.registered", c, None),
        ("model.registered", d, None),
        ("hosting.recorded", c, None),
        ("hosting.recorded", d, None),
        ("hosting.recorded", x, None),
    ]
    assert sorted(rest) == sorted(part_0 + part_1)
    assert [ev for ev in rest if ev in part_0] == part_0
    assert [ev for ev in rest if ev in part_1] == part_1
