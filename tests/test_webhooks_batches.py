"""A ``model.downloads`` batch naming a model the platform does not host is refused whole,
naming each offending index, and leaves its ``webhook-id`` free for the corrected resend."""

from __future__ import annotations

import asyncpg
import httpx

from tests.conftest import PlatformFixture
from tests.helpers.webhooks import deliver, event, hosted


async def _downloads_of(conn: asyncpg.Connection, platform_id: str) -> dict[str, int | None]:
    rows = await conn.fetch(
        "SELECT m.name, h.downloads FROM hostings h JOIN models m ON m.id = h.model_id "
        "WHERE h.platform_id = $1",
        platform_id,
    )
    return {row["name"]: row["downloads"] for row in rows}


async def test_a_batch_is_refused_naming_every_unknown_index_and_its_id_stays_usable(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    known = [f"org-{uniq}/b{i}" for i in range(3)]
    for name in known:
        assert (await deliver(client, platform.slug, secret, hosted(name))).status_code == 202
    missing_a, missing_b = f"org-{uniq}/gone-a", f"org-{uniq}/gone-b"
    counts = [
        {"model": known[0], "downloads": 10},
        {"model": missing_a, "downloads": 11},
        {"model": known[1], "downloads": 12},
        {"model": known[2], "downloads": 13},
        {"model": missing_b, "downloads": 14},
    ]
    body = event("model.downloads", {"counts": counts})
    msg_id = f"msg_batch_{uniq}"
    before = await conn.fetchval("SELECT max(seq) FROM events")

    r = await deliver(client, platform.slug, secret, body, msg_id=msg_id)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [(e["key"], e["source"]) for e in problem["errors"]] == [
        ("data.counts[1].model", "body"),
        ("data.counts[4].model", "body"),
    ]
    assert missing_a in problem["errors"][0]["message"]
    assert missing_b in problem["errors"][1]["message"]
    assert "counts[1]" in problem["detail"]
    assert "counts[4]" in problem["detail"]
    # Nothing written: no count, no event, no claimed delivery id.
    assert set((await _downloads_of(conn, platform.id)).values()) == {None}
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM events WHERE seq > $1 AND platform_id = $2", before, platform.id
        )
        == 0
    )

    # The same id with the same content is refused the same way again: not taken for a
    # duplicate of something accepted, nor for a conflicting reuse of the id.
    r = await deliver(client, platform.slug, secret, body, msg_id=msg_id)
    assert r.status_code == 422, r.text
    assert [e["key"] for e in r.json()["errors"]] == [
        "data.counts[1].model",
        "data.counts[4].model",
    ]

    # The platform's log shows both refusals under the id, with the reason.
    r = await client.get(f"/v1/webhooks/{platform.slug}/deliveries", headers=platform.headers)
    assert r.status_code == 200, r.text
    logged = [e for e in r.json()["items"] if e["delivery_id"] == msg_id]
    assert [(e["outcome"], e["status"]) for e in logged] == [("rejected", 422)] * 2
    assert all("counts[1]" in e["reason"] for e in logged)

    # The corrected batch goes under the same id, and is accepted.
    corrected = event("model.downloads", {"counts": [c for c in counts if c["model"] in known]})
    r = await deliver(client, platform.slug, secret, corrected, msg_id=msg_id)
    assert r.status_code == 202, r.text
    assert len(r.json()["events"]) == 3
    assert await _downloads_of(conn, platform.id) == {known[0]: 10, known[1]: 12, known[2]: 13}
    # A retry of the accepted batch is a duplicate; the refused content under that id now
    # conflicts with what was accepted.
    again = await deliver(client, platform.slug, secret, corrected, msg_id=msg_id)
    assert again.status_code == 200, again.text
    assert again.json() == {**r.json(), "duplicate": True}
    r = await deliver(client, platform.slug, secret, body, msg_id=msg_id)
    assert r.status_code == 409, r.text


async def test_a_refused_batch_is_accepted_unchanged_once_the_hostings_exist(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    """The other way to correct it: announce the hostings, resend the very same delivery."""
    names = [f"org-{uniq}/late{i}" for i in range(2)]
    assert (await deliver(client, platform.slug, secret, hosted(names[0]))).status_code == 202
    body = event("model.downloads", {"counts": [{"model": n, "downloads": 7} for n in names]})
    msg_id = f"msg_late_{uniq}"
    r = await deliver(client, platform.slug, secret, body, msg_id=msg_id)
    assert r.status_code == 422, r.text
    assert [e["key"] for e in r.json()["errors"]] == ["data.counts[1].model"]
    assert (await deliver(client, platform.slug, secret, hosted(names[1]))).status_code == 202
    r = await deliver(client, platform.slug, secret, body, msg_id=msg_id)
    assert r.status_code == 202, r.text
    assert await _downloads_of(conn, platform.id) == {names[0]: 7, names[1]: 7}
