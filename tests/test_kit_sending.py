"""The platform kit (``kit/``) sending events, used as a platform would use it.

Its signatures are checked against the ``standardwebhooks`` and ``svix`` libraries; events
go from its senders to the registry over HTTP and must land, once each; retries are checked
against live receivers answering 429 and 503, and against a live, rate-limited registry.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import svix.webhooks
from registry_kit import (
    AsyncSender,
    RetryPolicy,
    Sender,
    SendError,
    VerificationError,
    encode_event,
    sign,
    signed_headers,
    verify,
)
from standardwebhooks import Webhook

from tests.conftest import PlatformFixture
from tests.helpers.kit import OTHER, SECRET, Answer, serve
from tests.helpers.notices import admin_headers, decide
from tests.live_service import LiveService

# -- signatures ---------------------------------------------------------------------------


def test_signatures_interoperate_with_standardwebhooks_and_svix() -> None:
    body = encode_event("model.hosted", {"model": "acme/x", "url": "https://h.example/acme/x"})
    headers = signed_headers(SECRET, msg_id="msg_1", body=body)
    # The kit's signature verifies with both libraries ...
    assert Webhook(SECRET).verify(body, headers)["type"] == "model.hosted"
    svix.webhooks.Webhook(SECRET).verify(body, headers)  # raises if it does not verify
    with pytest.raises(svix.webhooks.WebhookVerificationError):
        svix.webhooks.Webhook(SECRET).verify(body + b" ", headers)
    # ... and theirs with the kit.
    now = datetime.now(UTC)
    for signature in (
        Webhook(SECRET).sign("msg_2", now, body.decode()),
        svix.webhooks.Webhook(SECRET).sign("msg_2", now, body.decode()),
    ):
        theirs = {
            "Webhook-Id": "msg_2",
            "Webhook-Timestamp": str(int(now.timestamp())),
            "Webhook-Signature": signature,
        }
        assert verify(SECRET, theirs, body) == "msg_2"
        assert verify([OTHER, SECRET], theirs, body) == "msg_2"
        with pytest.raises(VerificationError):
            verify(OTHER, theirs, body)
        with pytest.raises(VerificationError):
            verify(SECRET, theirs, body + b" ")


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-signature": "v1"},
        {"webhook-signature": "v1,\u00e9\u00e9"},
        {"webhook-signature": "v2," + sign(SECRET, msg_id="m", timestamp=1, body=b"{}")[3:]},
        {"webhook-timestamp": "12x"},
        {"webhook-id": ""},
    ],
)
def test_verify_refuses_bad_headers_with_one_error(change: dict[str, str]) -> None:
    headers = {**signed_headers(SECRET, msg_id="m", body=b"{}"), **change}
    with pytest.raises(VerificationError):
        verify(SECRET, headers, b"{}")


@pytest.mark.parametrize("offset", [-301, 301])
def test_verify_refuses_a_correct_signature_made_too_long_ago_or_ahead(offset: int) -> None:
    stamp = int(time.time()) + offset
    headers = signed_headers(SECRET, msg_id="m", body=b"{}", timestamp=stamp)
    with pytest.raises(VerificationError, match="webhook-timestamp"):
        verify(SECRET, headers, b"{}")
    assert verify(SECRET, headers, b"{}", tolerance=400) == "m"


# -- sending ------------------------------------------------------------------------------


async def test_the_kit_sends_every_hosting_event_type_and_each_lands(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    r = await client.post(
        f"/v1/platforms/{platform.slug}/webhook-secrets", headers=platform.headers
    )
    secret = r.json()["secret"]
    a, b = f"org-{uniq}/alpha", f"org-{uniq}/beta"
    site = f"https://{platform.slug}.example"
    sender = AsyncSender("http://registry.test", platform.slug, secret, client=client)
    sent = [
        await sender.send(
            "model.hosted", {"model": a, "url": f"{site}/{a}", "licence": "apache-2.0"}
        ),
        await sender.send("model.hosted", {"model": b, "url": f"{site}/{b}", "base_model": a}),
        await sender.send("model.updated", {"model": a, "licence": "mit", "revision": "r2"}),
        await sender.send(
            "model.downloads",
            {"counts": [{"model": a, "downloads": 10}, {"model": b, "downloads": 5}]},
        ),
        await sender.send("model.restricted", {"model": b, "reason": "gated for review"}),
        await sender.send(
            "incident.reported",
            {
                "title": "Leaks keys",
                "category": "harmful_content",
                "severity": "low",
                "models": [a],
            },
        ),
        await sender.send("model.removed", {"model": b, "reason": "taken down"}),
    ]
    decision = await decide(client, admin, await admin_headers(pool), a)
    sent.append(
        await sender.send(
            "decommission.executed",
            {"decision_id": decision["id"], "model": a, "outcome": "removed"},
        )
    )
    assert all(d.status_code == 202 and not d.duplicate and d.attempts == 1 for d in sent)

    r = await client.get(f"/v1/webhooks/{platform.slug}/deliveries", headers=platform.headers)
    log = {e["delivery_id"]: e for e in r.json()["items"]}
    assert {d.msg_id for d in sent} <= set(log)
    assert {log[d.msg_id]["outcome"] for d in sent} == {"accepted"}
    assert [log[d.msg_id]["event_type"] for d in sent] == [
        "model.hosted",
        "model.hosted",
        "model.updated",
        "model.downloads",
        "model.restricted",
        "incident.reported",
        "model.removed",
        "decommission.executed",
    ]
    r = await client.get("/v1/hostings", params={"platform": platform.slug}, headers=admin)
    hostings = {h["model"]: h for h in r.json()["items"]}
    assert (hostings[a]["status"], hostings[a]["licence"], hostings[a]["downloads"]) == (
        "removed",
        "mit",
        10,
    )
    assert hostings[b]["status"] == "removed"
    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
    assert r.json()["status"] == "executed"

    # Another body under a used id, and an event the registry refuses, are not retried.
    with pytest.raises(SendError) as clash:
        await sender.send_body(
            encode_event("model.updated", {"model": a, "gated": True}), msg_id=sent[0].msg_id
        )
    assert (clash.value.status_code, clash.value.attempts) == (409, 1)
    with pytest.raises(SendError) as refused:
        await sender.send("model.removed", {"model": f"org-{uniq}/never-hosted"})
    assert refused.value.attempts == 1
    assert refused.value.status_code is not None
    assert 400 <= refused.value.status_code < 500
    assert refused.value.problem["status"] == refused.value.status_code
    body = encode_event("model.updated", {"model": a, "revision": "r3"})
    first = await sender.send_body(body, msg_id="msg_again_" + uniq)
    second = await sender.send_body(body, msg_id="msg_again_" + uniq)
    assert (first.duplicate, second.duplicate) == (False, True)
    assert second.body["delivery_id"] == first.body["delivery_id"]


class Script:
    """Answers from a list, then 202; keeps every request."""

    def __init__(self, *answers: tuple[int, dict[str, str]]) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[float, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def __call__(self, headers: dict[str, str], body: bytes) -> Answer:
        with self.lock:
            self.seen.append((time.monotonic(), headers, body))
            status, extra = self.answers.pop(0) if self.answers else (202, {})
        content = b'{"duplicate": false}' if status == 202 else b'{"status": %d}' % status
        return status, extra, content


def _check_retried(script: Script, *, waits: list[float]) -> None:
    ids = {h["webhook-id"] for _, h, _ in script.seen}
    bodies = {b for _, _, b in script.seen}
    assert len(ids) == 1
    assert len(bodies) == 1
    for _, headers, body in script.seen:
        verify(SECRET, headers, body)
    gaps = [b[0] - a[0] for a, b in zip(script.seen, script.seen[1:], strict=False)]
    for gap, wait in zip(gaps, waits, strict=True):
        assert gap >= wait - 0.05, (gaps, waits)


FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_retry_after=5)
PATIENT = RetryPolicy(max_attempts=10, base_delay=0.01, max_delay=0.05, max_retry_after=5)


async def test_async_sender_retries_after_retry_after_with_the_same_webhook_id() -> None:
    script = Script((429, {"Retry-After": "1"}), (503, {"Retry-After": "1"}), (502, {}))
    with serve(script) as url:
        base = url.removesuffix("/notices")
        async with AsyncSender(base, "hub", SECRET, retry=FAST) as sender:
            delivery = await sender.send("model.hosted", {"model": "a/b", "url": "https://x/a/b"})
    assert (delivery.status_code, delivery.attempts) == (202, 4)
    assert len(script.seen) == 4
    _check_retried(script, waits=[1.0, 1.0, 0.0])


def test_sender_retries_an_http_date_retry_after_and_stops_at_a_final_answer() -> None:
    when = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    script = Script((503, {"Retry-After": when}), (400, {}))
    with (
        serve(script) as url,
        Sender(url.removesuffix("/notices"), "hub", SECRET) as sender,
        pytest.raises(SendError) as refused,
    ):
        sender.send("model.hosted", {"model": "a/b", "url": "https://x/a/b"})
    assert (refused.value.status_code, refused.value.attempts) == (400, 2)
    assert len(script.seen) == 2
    _check_retried(script, waits=[0.9])


def test_sender_gives_up_when_told_to_wait_too_long_or_after_max_attempts() -> None:
    script = Script((429, {"Retry-After": "60"}))
    with (
        serve(script) as url,
        Sender(url.removesuffix("/notices"), "hub", SECRET, retry=FAST) as s,
        pytest.raises(SendError, match="wait 60 s"),
    ):
        s.send("model.hosted", {"model": "a/b", "url": "https://x/a/b"})
    assert len(script.seen) == 1
    script = Script(*[(503, {})] * 10)
    with (
        serve(script) as url,
        Sender(url.removesuffix("/notices"), "hub", SECRET, retry=FAST) as s,
        pytest.raises(SendError, match="gave up after 4 attempts"),
    ):
        s.send("model.hosted", {"model": "a/b", "url": "https://x/a/b"})
    assert len(script.seen) == 4
    _check_retried(script, waits=[0.0, 0.0, 0.0])


async def test_a_rate_limited_registry_gets_each_event_once_after_its_retry_after(
    client: httpx.AsyncClient, database_url: str, platform: PlatformFixture, tmp_path: Path
) -> None:
    """Against a live registry that allows one delivery a second: every 429 is waited out."""
    r = await client.post(
        f"/v1/platforms/{platform.slug}/webhook-secrets", headers=platform.headers
    )
    secret = r.json()["secret"]
    limits = {"REGISTRY_WEBHOOK_RATE_PER_SECOND": "1", "REGISTRY_WEBHOOK_BURST": "1"}
    async with (
        LiveService(database_url, tmp_path, REGISTRY_OUTBOX_WORKER="false", **limits) as svc,
        AsyncSender(svc.base_url, platform.slug, secret, retry=PATIENT) as sender,
    ):
        started = time.monotonic()
        sent = await asyncio.gather(
            *(
                sender.send(
                    "model.hosted",
                    {"model": f"org/{platform.slug}-{n}", "url": f"https://x.example/{n}"},
                )
                for n in range(3)
            )
        )
        took = time.monotonic() - started
    assert sorted(d.attempts for d in sent)[-1] >= 2
    assert took >= 1.5
    r = await client.get(f"/v1/webhooks/{platform.slug}/deliveries", headers=platform.headers)
    accepted = [e["delivery_id"] for e in r.json()["items"] if e["outcome"] == "accepted"]
    assert sorted(accepted) == sorted(d.msg_id for d in sent)
    r = await client.get(
        "/v1/hostings", params={"platform": platform.slug}, headers=platform.headers
    )
    assert len(r.json()["items"]) == 3
