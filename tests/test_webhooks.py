"""Standard Webhooks intake, driven by the real ``standardwebhooks`` library as the sender."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from service.app import create_app
from service.settings import Settings, load_settings
from tests.conftest import PlatformFixture, bearer, make_key, register_model
from tests.helpers.webhooks import deliver, event, hosted, new_secret, signed


async def test_hosted_registers_the_model_and_its_base_and_links_the_delivery(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    model, base = f"org-{uniq}/tuned", f"org-{uniq}/base"
    body = hosted(
        model,
        base_model=base,
        revision="abc123",
        licence="apache-2.0",
        downloads=123,
        documentation={"model_card": {"present": True, "url": "https://hub.example/card"}},
    )
    r = await deliver(client, platform.slug, secret, body, msg_id=f"msg-{uniq}")
    assert r.status_code == 202, r.text
    ack = r.json()
    assert ack["delivery_id"] == f"msg-{uniq}"
    assert ack["duplicate"] is False
    assert len(ack["events"]) == 3  # base registered, model registered, hosting recorded

    r = await client.get("/v1/models", params={"name": model}, headers=admin)
    assert r.json()["items"][0]["base_model"] == base
    r = await client.get("/v1/hostings", params={"platform": platform.slug}, headers=admin)
    [hosting] = r.json()["items"]
    assert hosting["model"] == model
    assert hosting["revision"] == "abc123"
    assert hosting["downloads"] == 123
    assert hosting["documentation"]["model_card"]["present"] is True

    rows = await conn.fetch(
        "SELECT kind, payload FROM events WHERE seq = ANY($1::bigint[]) ORDER BY seq",
        ack["events"],
    )
    assert [row["kind"] for row in rows] == [
        "model.registered",
        "model.registered",
        "hosting.recorded",
    ]
    assert rows[2]["payload"]["delivery"]["delivery_id"] == f"msg-{uniq}"

    # The raw body and the signature headers are kept with the events they produced.
    r = await client.get(f"/v1/webhooks/{platform.slug}/deliveries/msg-{uniq}", headers=admin)
    assert r.status_code == 200, r.text
    stored = r.json()
    assert stored["body"].encode() == body
    assert stored["headers"]["webhook-id"] == f"msg-{uniq}"
    assert stored["headers"]["webhook-signature"].startswith("v1,")
    assert stored["events"] == ack["events"]


async def test_redelivery_is_a_duplicate_and_writes_nothing(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    body = hosted(f"org-{uniq}/m")
    first = await deliver(client, platform.slug, secret, body, msg_id="msg-1")
    assert first.status_code == 202
    head = await conn.fetchval("SELECT max(seq) FROM events")
    # A retry is signed afresh (new timestamp), as senders do.
    again = await deliver(client, platform.slug, secret, body, msg_id="msg-1")
    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "duplicate": True}
    assert await conn.fetchval("SELECT max(seq) FROM events") == head


async def test_same_id_with_another_body_is_409(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    r = await deliver(client, platform.slug, secret, hosted(f"org-{uniq}/a"), msg_id="msg-x")
    assert r.status_code == 202
    r = await deliver(client, platform.slug, secret, hosted(f"org-{uniq}/b"), msg_id="msg-x")
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_fifty_concurrent_copies_make_one_record(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    body = hosted(f"org-{uniq}/popular")
    headers = signed(secret, body, msg_id=f"race-{uniq}")
    responses = await asyncio.gather(
        *(
            client.post(f"/v1/webhooks/{platform.slug}", content=body, headers=headers)
            for _ in range(50)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 49 + [202], [r.text for r in responses if r.status_code >= 400]
    events = {tuple(r.json()["events"]) for r in responses}
    assert len(events) == 1
    count = await conn.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1", f"race-{uniq}"
    )
    assert count == 1
    hostings = await conn.fetchval(
        "SELECT count(*) FROM hostings h JOIN models m ON m.id = h.model_id WHERE m.name = $1",
        f"org-{uniq}/popular",
    )
    assert hostings == 1


def _tamper(headers: dict[str, str], **changes: str | None) -> dict[str, str]:
    out = dict(headers)
    for key, value in changes.items():
        name = key.replace("_", "-")
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


async def test_every_verification_failure_is_a_401_problem(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    body = hosted(f"org-{uniq}/m")
    good = signed(secret, body)
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    old = datetime.now(UTC) - timedelta(minutes=6)
    future = datetime.now(UTC) + timedelta(minutes=6)
    cases: list[tuple[dict[str, str], bytes]] = [
        (signed(other, body), body),
        (_tamper(good, webhook_signature=None), body),
        (_tamper(good, webhook_id=None), body),
        (_tamper(good, webhook_timestamp=None), body),
        (_tamper(good, webhook_signature="v1" + good["webhook-signature"][3:]), body),
        (_tamper(good, webhook_signature="v1,not base64!!"), body),
        (_tamper(good, webhook_signature="v2," + good["webhook-signature"][3:]), body),
        (_tamper(good, webhook_timestamp="soon"), body),
        (_tamper(good, webhook_timestamp="1e9"), body),
        (signed(secret, body, at=old), body),
        (signed(secret, body, at=future), body),
        (good, body + b" "),
        (good, b"\xff\xfe" + body),
        (_tamper(good, webhook_id="x" * 201), body),
    ]
    # A body that is not UTF-8 but carries a valid signature over its bytes.
    raw = b'{"type": "model.hosted", "x": "\xff"}'
    import hashlib
    import hmac

    key = base64.b64decode(secret.removeprefix("whsec_"))
    stamp = str(int(time.time()))
    mac = hmac.new(key, b"raw-1." + stamp.encode() + b"." + raw, hashlib.sha256).digest()
    cases.append(
        (
            {
                "webhook-id": "raw-1",
                "webhook-timestamp": stamp,
                "webhook-signature": "v1," + base64.b64encode(mac).decode(),
                "content-type": "application/json",
            },
            raw,
        )
    )
    for headers, content in cases:
        r = await client.post(f"/v1/webhooks/{platform.slug}", content=content, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 401
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE platform_id = $1", uuid_of(platform)
        )
        == 0
    )


def uuid_of(platform: PlatformFixture) -> Any:
    from uuid import UUID

    return UUID(platform.id)


async def test_a_platform_without_secrets_is_refused(
    client: httpx.AsyncClient, platform: PlatformFixture, uniq: str
) -> None:
    unknown = "whsec_" + base64.b64encode(b"y" * 32).decode()
    r = await deliver(client, platform.slug, unknown, hosted(f"org-{uniq}/m"))
    assert r.status_code == 401


async def test_unknown_platform_is_404(client: httpx.AsyncClient, uniq: str) -> None:
    secret = "whsec_" + base64.b64encode(b"z" * 32).decode()
    r = await deliver(client, f"nobody-{uniq}", secret, hosted(f"org-{uniq}/m"))
    assert r.status_code == 404


async def test_rotation_both_secrets_verify_until_one_is_retired(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    newer = await new_secret(client, admin, platform.slug)
    for i, key in enumerate((secret, newer)):
        r = await deliver(client, platform.slug, key, hosted(f"org-{uniq}/m{i}"))
        assert r.status_code == 202, r.text
    r = await client.get(f"/v1/platforms/{platform.slug}/webhook-secrets", headers=admin)
    listed = r.json()["items"]
    assert len(listed) == 2
    assert all("secret" not in item for item in listed)
    oldest = min(listed, key=lambda s: s["created_at"])
    r = await client.delete(
        f"/v1/platforms/{platform.slug}/webhook-secrets/{oldest['id']}", headers=admin
    )
    assert r.status_code == 200
    assert r.json()["retired_at"] is not None
    r = await deliver(client, platform.slug, secret, hosted(f"org-{uniq}/m2"))
    assert r.status_code == 401
    r = await deliver(client, platform.slug, newer, hosted(f"org-{uniq}/m3"))
    assert r.status_code == 202


async def test_secret_endpoints_take_the_platforms_own_key_or_an_admins(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    auditor: dict[str, str],
) -> None:
    url = f"/v1/platforms/{platform.slug}/webhook-secrets"
    assert (await client.post(url, headers=auditor)).status_code == 403
    assert (await client.post(url, headers=other_platform.headers)).status_code == 404
    assert (await client.post(url)).status_code == 401
    assert (await client.post(url, headers=platform.headers)).status_code == 201


async def test_oversize_body_is_413_before_any_signature_work(
    client: httpx.AsyncClient, platform: PlatformFixture, settings: Settings
) -> None:
    body = b"{" + b" " * settings.max_body_bytes + b"}"
    r = await client.post(
        f"/v1/webhooks/{platform.slug}",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_wrong_content_type_is_415(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    body = hosted(f"org-{uniq}/m")
    headers = {**signed(secret, body), "content-type": "text/plain"}
    r = await client.post(f"/v1/webhooks/{platform.slug}", content=body, headers=headers)
    assert r.status_code == 415


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"type": "model.exploded", "timestamp": "2026-01-01T00:00:00Z", "data": {}}',
        b'{"type": "model.hosted", "timestamp": "2026-01-01T00:00:00Z", '
        b'"data": {"model": "a/b", "url": "https://x", "surprise": 1}}',
        b'{"type": "model.hosted", "timestamp": "2026-01-01T00:00:00", '
        b'"data": {"model": "a/b", "url": "https://x"}}',
        b'{"type": "model.hosted", "timestamp": "2026-01-01T00:00:00Z", "data": {"model": "a/b"}}',
    ],
)
async def test_signed_but_invalid_events_are_400(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, body: bytes
) -> None:
    r = await deliver(client, platform.slug, secret, body)
    assert r.status_code == 400, r.text


async def test_naming_another_platform_is_403_and_writes_nothing(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    secret: str,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    body = hosted(f"org-{uniq}/m", platform=other_platform.slug)
    r = await deliver(client, platform.slug, secret, body)
    assert r.status_code == 403
    assert await conn.fetchval("SELECT count(*) FROM models WHERE name = $1", f"org-{uniq}/m") == 0


async def test_updated_removed_restricted_and_reinstated(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    model = f"org-{uniq}/m"
    assert (await deliver(client, platform.slug, secret, hosted(model))).status_code == 202
    update = event(
        "model.updated",
        {
            "model": model,
            "revision": "def456",
            "licence": "mit",
            "gated": True,
            "documentation": {"safety_testing": {"present": True, "url": "https://x.example/s"}},
        },
    )
    r = await deliver(client, platform.slug, secret, update)
    assert r.status_code == 202, r.text
    assert len(r.json()["events"]) == 1

    async def hosting() -> dict[str, Any]:
        r = await client.get("/v1/hostings", params={"platform": platform.slug}, headers=admin)
        item: dict[str, Any] = r.json()["items"][0]
        return item

    h = await hosting()
    assert (h["revision"], h["licence"], h["gated"]) == ("def456", "mit", True)
    assert h["documentation"]["safety_testing"]["present"] is True
    r = await deliver(client, platform.slug, secret, event("model.restricted", {"model": model}))
    assert r.status_code == 202
    assert (await hosting())["status"] == "restricted"
    r = await deliver(
        client, platform.slug, secret, event("model.removed", {"model": model, "reason": "DMCA"})
    )
    assert r.status_code == 202
    assert (await hosting())["status"] == "removed"
    r = await deliver(client, platform.slug, secret, hosted(model, revision="v2"))
    assert r.status_code == 202
    h = await hosting()
    assert (h["status"], h["revision"]) == ("hosted", "v2")
    r = await client.get(f"/v1/hostings/{h['id']}/events", headers=admin)
    kinds = [e["kind"] for e in r.json()["items"]]
    assert kinds == [
        "hosting.recorded",
        "hosting.updated",
        "hosting.restricted",
        "hosting.removed",
        "hosting.reinstated",
    ]


async def test_events_about_unknown_hostings_are_422(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    for kind in ("model.updated", "model.removed", "model.restricted"):
        r = await deliver(client, platform.slug, secret, event(kind, {"model": f"org-{uniq}/x"}))
        assert r.status_code == 422, (kind, r.text)


async def test_updated_with_a_url_makes_the_hosting(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    body = event("model.updated", {"model": f"org-{uniq}/x", "url": "https://hub.example/x"})
    r = await deliver(client, platform.slug, secret, body)
    assert r.status_code == 202, r.text
    assert len(r.json()["events"]) == 2


async def test_download_counts_in_a_batch(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    names = [f"org-{uniq}/m{i}" for i in range(5)]
    for name in names:
        assert (await deliver(client, platform.slug, secret, hosted(name))).status_code == 202
    counts = [{"model": name, "downloads": 1000 + i} for i, name in enumerate(names)]
    r = await deliver(client, platform.slug, secret, event("model.downloads", {"counts": counts}))
    assert r.status_code == 202, r.text
    assert len(r.json()["events"]) == 5
    r = await client.get(
        "/v1/hostings", params={"platform": platform.slug, "min_downloads": 1003}, headers=admin
    )
    assert sorted(h["downloads"] for h in r.json()["items"]) == [1003, 1004]
    too_many = [{"model": names[0], "downloads": 1}] * 1001
    r = await deliver(client, platform.slug, secret, event("model.downloads", {"counts": too_many}))
    assert r.status_code == 400


async def _hosting_events(conn: asyncpg.Connection, seqs: list[int]) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT seq, kind, payload FROM events WHERE seq = ANY($1) ORDER BY seq", seqs
    )
    return [{"seq": r["seq"], "kind": r["kind"], **r["payload"]} for r in rows]


async def test_a_download_batch_writes_each_change_once_in_name_order(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    names = [f"org-{uniq}/b{i:03}" for i in range(60)]
    for name in reversed(names):  # created out of name order
        body = hosted(name, downloads=5)
        assert (await deliver(client, platform.slug, secret, body)).status_code == 202
    # Every third count is the one already recorded: no change, no event.
    counts = {name: 5 if i % 3 == 0 else 1000 + i for i, name in enumerate(names)}
    shuffled = list(counts.items())
    random.Random(3).shuffle(shuffled)
    r = await deliver(
        client,
        platform.slug,
        secret,
        event("model.downloads", {"counts": [{"model": n, "downloads": d} for n, d in shuffled]}),
        msg_id=f"dl-{uniq}",
    )
    assert r.status_code == 202, r.text
    seqs = r.json()["events"]
    changed = [name for name in names if counts[name] != 5]
    assert len(seqs) == len(changed) == 40
    assert seqs == sorted(seqs)
    events = await _hosting_events(conn, seqs)
    assert [e["state"]["model"] for e in events] == changed
    for e in events:
        name = e["state"]["model"]
        assert e["kind"] == "hosting.updated"
        assert e["state"]["downloads"] == counts[name]
        assert e["changes"]["downloads"] == {"from": 5, "to": counts[name]}
        assert e["delivery"]["delivery_id"] == f"dl-{uniq}"
    kept = await conn.fetch(
        "SELECT m.name, h.downloads FROM hostings h JOIN models m ON m.id = h.model_id "
        "WHERE h.platform_id = $1",
        platform.id,
    )
    assert {row["name"]: row["downloads"] for row in kept} == counts
    stored = await conn.fetchval(
        "SELECT events FROM webhook_deliveries WHERE platform_id = $1 AND delivery_id = $2",
        platform.id,
        f"dl-{uniq}",
    )
    assert list(stored) == seqs


async def test_a_model_counted_twice_in_one_batch_takes_its_counts_in_order(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    a, b = f"org-{uniq}/a", f"org-{uniq}/b"
    for name in (a, b):
        assert (await deliver(client, platform.slug, secret, hosted(name))).status_code == 202
    counts = [
        {"model": b, "downloads": 7},
        {"model": a, "downloads": 8},
        {"model": b, "downloads": 9},
        {"model": b, "downloads": 9},
    ]
    r = await deliver(client, platform.slug, secret, event("model.downloads", {"counts": counts}))
    assert r.status_code == 202, r.text
    events = await _hosting_events(conn, r.json()["events"])
    # The third count of b repeats the second: it changes nothing and writes no event.
    assert [(e["state"]["model"], e["state"]["downloads"]) for e in events] == [
        (a, 8),
        (b, 7),
        (b, 9),
    ]
    assert events[2]["changes"]["downloads"] == {"from": 7, "to": 9}


async def test_a_download_batch_naming_an_unknown_model_writes_nothing(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    names = [f"org-{uniq}/k{i}" for i in range(3)]
    for name in names:
        body = hosted(name, downloads=1)
        assert (await deliver(client, platform.slug, secret, body)).status_code == 202
    before = await conn.fetchval("SELECT max(seq) FROM events")
    counts = [{"model": name, "downloads": 50} for name in names]
    counts.insert(1, {"model": f"org-{uniq}/nowhere", "downloads": 50})
    r = await deliver(client, platform.slug, secret, event("model.downloads", {"counts": counts}))
    assert r.status_code == 422, r.text
    assert "nowhere" in r.json()["detail"]
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM events WHERE seq > $1 AND platform_id = $2", before, platform.id
        )
        == 0
    )
    assert await conn.fetchval(
        "SELECT array_agg(DISTINCT downloads) FROM hostings WHERE platform_id = $1", platform.id
    ) == [1]


async def test_svix_signer_works_unchanged(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    from svix.webhooks import Webhook as SvixWebhook

    body = hosted(f"org-{uniq}/svix")
    now = datetime.now(UTC)
    signature = SvixWebhook(secret).sign(f"msg_{uniq}", now, body.decode())
    for prefix in ("svix", "webhook"):
        headers = {
            f"{prefix}-id": f"msg_{uniq}",
            f"{prefix}-timestamp": str(int(now.timestamp())),
            f"{prefix}-signature": signature,
            "content-type": "application/json",
        }
        r = await client.post(f"/v1/webhooks/{platform.slug}", content=body, headers=headers)
        assert r.status_code in (200, 202), r.text


async def test_rate_limit_is_per_platform_with_retry_after(
    settings: Settings,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    admin: dict[str, str],
    secret: str,
    uniq: str,
) -> None:
    tight = msgspec.structs.replace(settings, webhook_rate_per_second=0.5, webhook_burst=2)
    app = create_app(tight, pool=pool)
    other_secret = await new_secret(client, admin, other_platform.slug)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as c:
        statuses = [
            (await deliver(c, platform.slug, secret, hosted(f"org-{uniq}/r{i}"))).status_code
            for i in range(3)
        ]
        assert statuses == [202, 202, 429]
        r = await deliver(c, platform.slug, secret, hosted(f"org-{uniq}/r9"))
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["content-type"].startswith("application/problem+json")
        # Another platform has an allowance of its own.
        r = await deliver(c, other_platform.slug, other_secret, hosted(f"org-{uniq}/o"))
        assert r.status_code == 202


async def test_database_down_is_a_quick_503_with_retry_after(
    settings: Settings, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    dead = await asyncpg.create_pool("postgresql://nobody@127.0.0.1:1/none", min_size=0, max_size=1)
    assert dead is not None
    app = create_app(settings, pool=dead)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as c:
        started = time.monotonic()
        r = await deliver(c, platform.slug, secret, hosted(f"org-{uniq}/m"))
        assert time.monotonic() - started < 2
    await dead.close()
    assert r.status_code == 503
    assert r.headers["retry-after"]
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_delivery_log_shows_accepted_duplicate_and_rejected(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    auditor: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    body = hosted(f"org-{uniq}/m")
    await deliver(client, platform.slug, secret, body, msg_id="log-1")
    await deliver(client, platform.slug, secret, body, msg_id="log-1")
    await client.post(
        f"/v1/webhooks/{platform.slug}",
        content=body,
        headers=_tamper(signed(secret, body, msg_id="log-2"), webhook_signature="v1,AAAA"),
    )
    await deliver(
        client, platform.slug, secret, event("model.removed", {"model": "a/b"}), msg_id="log-3"
    )
    url = f"/v1/webhooks/{platform.slug}/deliveries"
    for headers in (admin, platform.headers):
        r = await client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        entries = r.json()["items"]
        seen = [(e["delivery_id"], e["outcome"], e["status"]) for e in entries]
        assert seen == [
            ("log-3", "rejected", 422),
            ("log-2", "rejected", 401),
            ("log-1", "duplicate", 200),
            ("log-1", "accepted", 202),
        ]
        assert "signature" in entries[1]["reason"]
    r = await client.get(url, params={"outcome": "rejected", "limit": 1}, headers=admin)
    page = r.json()
    assert [e["delivery_id"] for e in page["items"]] == ["log-3"]
    r = await client.get(
        url, params={"outcome": "rejected", "cursor": page["next_cursor"]}, headers=admin
    )
    assert [e["delivery_id"] for e in r.json()["items"]] == ["log-2"]
    # Another platform cannot see this log; an auditor may not list it.
    assert (await client.get(url, headers=other_platform.headers)).status_code == 404
    assert (await client.get(url, headers=auditor)).status_code == 403
    assert (await client.get(url)).status_code == 401


async def test_receiving_routes_declare_no_bearer_security(app: Any) -> None:
    doc = app.openapi_schema.to_schema()
    for path in ("/v1/webhooks/{platform}", "/v1/webhooks/{platform}/github"):
        assert "security" not in doc["paths"][path]["post"]
    assert doc["paths"]["/v1/webhooks/{platform}/deliveries"]["get"]["security"]


async def test_keys_do_not_authenticate_deliveries(
    client: httpx.AsyncClient, platform: PlatformFixture, uniq: str, pool: asyncpg.Pool
) -> None:
    key = await make_key(pool, "admin")
    body = hosted(f"org-{uniq}/m")
    r = await client.post(
        f"/v1/webhooks/{platform.slug}",
        content=body,
        headers={**bearer(key), "content-type": "application/json"},
    )
    assert r.status_code == 401


async def test_register_model_fixture_models_can_be_hosted(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    await register_model(client, admin, f"org-{uniq}/known")
    r = await deliver(client, platform.slug, secret, hosted(f"org-{uniq}/known"))
    assert r.status_code == 202
    assert len(r.json()["events"]) == 1


def test_settings_knobs_come_from_the_environment() -> None:
    s = load_settings({"REGISTRY_WEBHOOK_RATE_PER_SECOND": "5", "REGISTRY_WEBHOOK_BURST": "7"})
    assert (s.webhook_rate_per_second, s.webhook_burst) == (5.0, 7)


async def test_deliveries_are_counted_by_outcome_and_reason(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    from service.metrics import REGISTRY

    def count(outcome: str, reason: str) -> float:
        value = REGISTRY.get_sample_value(
            "registry_webhook_deliveries_total", {"outcome": outcome, "reason": reason}
        )
        return value or 0.0

    before = (
        count("accepted", ""),
        count("duplicate", ""),
        count("rejected", "bad_signature"),
        count("rejected", "stale_timestamp"),
    )
    body = hosted(f"org-{uniq}/counted")
    await deliver(client, platform.slug, secret, body, msg_id=f"m-{uniq}")
    await deliver(client, platform.slug, secret, body, msg_id=f"m-{uniq}")
    await deliver(client, platform.slug, "whsec_" + "A" * 43 + "=", body)
    await deliver(client, platform.slug, secret, body, at=datetime.now(UTC) - timedelta(hours=1))
    after = (
        count("accepted", ""),
        count("duplicate", ""),
        count("rejected", "bad_signature"),
        count("rejected", "stale_timestamp"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1, 1]


async def test_concurrent_download_batches_over_the_same_models_all_succeed(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    names = [f"org-{uniq}/d{i:02}" for i in range(20)]
    for name in names:
        assert (await deliver(client, platform.slug, secret, hosted(name))).status_code == 202
    batches = []
    for round_ in range(6):
        order = names if round_ % 2 else list(reversed(names))
        counts = [{"model": n, "downloads": round_ * 100 + i} for i, n in enumerate(order)]
        batches.append(event("model.downloads", {"counts": counts}))
    responses = await asyncio.gather(
        *(deliver(client, platform.slug, secret, body) for body in batches)
    )
    assert [r.status_code for r in responses] == [202] * 6, [r.text for r in responses]
