"""The platform kit (``kit/``), used as a platform would use it.

Events go from the kit's senders to the registry over HTTP and must land; retries are
checked against a live receiver that answers 429 and 503; notices come from the registry's
delivery worker to a live receiver built on the kit; the conformance command is run against
a good receiver and against broken ones, each of which must be named for what it breaks.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import svix.webhooks
from registry_kit import (
    CHECKS,
    AsyncSender,
    MemorySeenStore,
    Notice,
    NoticeReceiver,
    RetryPolicy,
    Sender,
    SendError,
    VerificationError,
    encode_event,
    run_conformance,
    sign,
    signed_headers,
    verify,
)
from registry_kit.__main__ import main as kit_main
from standardwebhooks import Webhook

from tests import test_notifications as shared
from tests.conftest import PlatformFixture
from tests.live_service import LiveService
from tests.test_notifications import admin_headers, decide, drain

http = shared.http

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_aGVsbG8gd29ybGQgdGhpcyBpcyBhIHNlY3JldA=="

Answer = tuple[int, dict[str, str], bytes]
Handler = Callable[[dict[str, str], bytes], Answer]


@contextmanager
def serve(handler: Handler) -> Iterator[str]:
    """A live HTTP server on 127.0.0.1 answering every POST with ``handler``; yields its URL."""

    class Http(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, content = handler(headers, body)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Http)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/notices"
    finally:
        server.shutdown()
        server.server_close()


def kit_receiver(receiver: NoticeReceiver, processed: list[Notice]) -> Handler:
    """A platform's notice receiver written with the kit."""

    def handle(headers: dict[str, str], body: bytes) -> Answer:
        return receiver.handle(headers, body, processed.append), {}, b""

    return handle


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


# -- receiving ----------------------------------------------------------------------------


async def test_notices_from_the_registry_are_verified_and_processed_once(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    processed: list[Notice] = []
    holder: dict[str, NoticeReceiver] = {}
    requests: list[str] = []

    def handle(headers: dict[str, str], body: bytes) -> Answer:
        requests.append(headers.get("webhook-id", ""))
        return kit_receiver(holder["r"], processed)(headers, body)

    with serve(handle) as url:
        r = await client.post(
            f"/v1/platforms/{platform.slug}/endpoints", json={"url": url}, headers=platform.headers
        )
        assert r.status_code == 201, r.text
        endpoint_id, secret = r.json()["endpoint"]["id"], r.json()["secret"]
        holder["r"] = NoticeReceiver(secret)
        try:
            model = f"org-{uniq}/noticed"
            await client.post("/v1/models", json={"name": model}, headers=admin)
            await client.post(
                "/v1/hostings",
                json={
                    "model": model,
                    "url": f"https://x.example/{model}",
                    "platform": platform.slug,
                },
                headers=admin,
            )
            await decide(client, admin, await admin_headers(pool), model)
            r = await client.post(f"/v1/endpoints/{endpoint_id}/test", headers=platform.headers)
            await drain(pool, http, lambda: len(processed) == 2)
            assert sorted(n.type for n in processed) == ["decommission.notice", "endpoint.test"]
            notice = next(n for n in processed if n.type == "decommission.notice")
            assert notice.data["model"] == model

            # A redelivery arrives with the same id: acknowledged, not processed again.
            r = await client.post(
                f"/v1/notifications/{notice.id}/redeliver", headers=platform.headers
            )
            assert r.status_code == 202, r.text
            await drain(pool, http, lambda: len(requests) == 3)
            assert requests.count(notice.id) == 2
            r = await client.get(f"/v1/notifications/{notice.id}/attempts", headers=admin)
            assert [a["status_code"] for a in r.json()["items"]] == [200, 200]
            assert len(processed) == 2

            # A forged copy is refused.
            body = encode_event("decommission.notice", {})
            forged = signed_headers(OTHER, msg_id=str(notice.id), body=body)
            assert holder["r"].handle(forged, body, processed.append) == 401
        finally:
            await client.patch(
                f"/v1/endpoints/{endpoint_id}", json={"disabled": True}, headers=admin
            )


def test_receiver_forgets_a_notice_whose_processing_failed() -> None:
    receiver = NoticeReceiver([OTHER, SECRET], seen=MemorySeenStore(max_items=2))
    body = b'{"type":"endpoint.test","timestamp":"2026-11-30T00:00:00Z","id":"n1","data":{}}'
    headers = signed_headers(SECRET, msg_id="n1", body=body)

    def explode(_: Notice) -> None:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        receiver.handle(headers, body, explode)
    done: list[Notice] = []
    assert receiver.handle(headers, body, done.append) == 200
    assert receiver.handle(headers, body, done.append) == 200
    assert [n.id for n in done] == ["n1"]
    # A signed body that is not a notice, or whose id is not its webhook-id, is a 400.
    assert (
        receiver.handle(signed_headers(SECRET, msg_id="n1", body=b"[]"), b"[]", done.append) == 400
    )
    assert receiver.handle(signed_headers(SECRET, msg_id="n2", body=body), body, done.append) == 400


# -- conformance --------------------------------------------------------------------------


def _accept_all(headers: dict[str, str], body: bytes) -> Answer:
    return 200, {}, b""


def _no_time_check(headers: dict[str, str], body: bytes) -> Answer:
    lax = NoticeReceiver(SECRET, tolerance=10**9)
    return lax.handle(headers, body, lambda n: None), {}, b""


class _CrashesOnRepeat:
    """Inserts each id under a unique key and lets the violation become a 500."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def __call__(self, headers: dict[str, str], body: bytes) -> Answer:
        try:
            msg_id = verify(SECRET, headers, body)
        except VerificationError:
            return 401, {}, b""
        if msg_id in self.ids:
            return 500, {}, b"duplicate key value violates unique constraint"
        self.ids.add(msg_id)
        return 204, {}, b""


def _crashes_on_bad_signature(headers: dict[str, str], body: bytes) -> Answer:
    try:
        verify(SECRET, headers, body)
    except VerificationError:
        return 500, {}, b"unhandled exception"
    return 200, {}, b""


@pytest.mark.parametrize(
    ("handler", "failing"),
    [
        (None, set()),
        (
            _accept_all,
            {"bad signature refused", "missing signature refused", "stale timestamp refused"},
        ),
        (_no_time_check, {"stale timestamp refused"}),
        (_CrashesOnRepeat(), {"repeat de-duplicated"}),
        (
            _crashes_on_bad_signature,
            {"bad signature refused", "missing signature refused", "stale timestamp refused"},
        ),
        ("wrong-secret", {"valid notice accepted", "repeat de-duplicated"}),
    ],
    ids=[
        "good",
        "accepts-all",
        "no-time-check",
        "500-on-repeat",
        "500-on-bad-signature",
        "wrong-secret",
    ],
)
def test_conformance_names_each_failure(handler: Handler | str | None, failing: set[str]) -> None:
    processed: list[Notice] = []
    if handler is None:
        handler = kit_receiver(NoticeReceiver(SECRET), processed)
    elif handler == "wrong-secret":
        handler = kit_receiver(NoticeReceiver(OTHER), processed)
    assert callable(handler)
    with serve(handler) as url:
        results = run_conformance(url, SECRET, timeout=5)
    assert [r.name for r in results] == list(CHECKS)
    assert {r.name for r in results if not r.passed} == failing, results
    if handler is None:
        assert len(processed) == 1  # the repeat was acknowledged, not processed again


def test_conformance_command_exit_status_and_report(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(kit_receiver(NoticeReceiver(SECRET), [])) as url:
        assert kit_main(["conformance", url, "--secret", SECRET]) == 0
        out = capsys.readouterr().out
        assert out.count("PASS") == len(CHECKS)
        assert "all 5 checks passed" in out
    with serve(_no_time_check) as url:
        monkeypatch.setenv("REGISTRY_KIT_SECRET", SECRET)
        assert kit_main(["conformance", url]) == 1
        out = capsys.readouterr().out
        assert "FAIL  stale timestamp refused: answered 200, expected 4xx" in out
        assert "1 of 5 checks failed" in out
    monkeypatch.delenv("REGISTRY_KIT_SECRET")
    with pytest.raises(SystemExit) as usage:
        kit_main(["conformance", "http://127.0.0.1:9/"])
    assert usage.value.code == 2
    # Nobody listening is a failure of every check, not a crash.
    assert kit_main(["conformance", "http://127.0.0.1:9/", "--secret", SECRET]) == 1


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


async def test_test_notice_command_reports_what_the_receiver_answered(
    client: httpx.AsyncClient,
    database_url: str,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A live registry with its delivery worker sends the test notice the command asks for."""
    key = platform.headers["Authorization"].removeprefix("Bearer ")
    processed: list[Notice] = []
    holder: dict[str, NoticeReceiver] = {}
    failing = {"on": False}

    def handle(headers: dict[str, str], body: bytes) -> Answer:
        if failing["on"]:
            return 503, {}, b""
        return kit_receiver(holder["r"], processed)(headers, body)

    with serve(handle) as url:
        r = await client.post(
            f"/v1/platforms/{platform.slug}/endpoints", json={"url": url}, headers=platform.headers
        )
        assert r.status_code == 201, r.text
        endpoint_id = r.json()["endpoint"]["id"]
        holder["r"] = NoticeReceiver(r.json()["secret"])
        try:
            env = {"REGISTRY_OUTBOX_WORKER": "true", "REGISTRY_OUTBOX_POLL_SECONDS": "0.1"}
            async with LiveService(database_url, tmp_path, **env) as svc:
                argv = ["test-notice", svc.base_url, endpoint_id, "--key", key, "--wait", "20"]
                assert await asyncio.to_thread(kit_main, argv) == 0
                out = capsys.readouterr().out
                assert "attempt 1: 200" in out
                assert f"PASS  notice {processed[0].id}" in out
                assert processed[0].type == "endpoint.test"

                failing["on"] = True
                assert await asyncio.to_thread(kit_main, argv) == 1
                out = capsys.readouterr().out
                assert "attempt 1: 503" in out
                assert "FAIL  notice" in out

                # Another platform's key finds no such endpoint; the command says so.
                theirs = other_platform.headers["Authorization"].removeprefix("Bearer ")
                other = ["test-notice", svc.base_url, endpoint_id, "--key", theirs]
                assert await asyncio.to_thread(kit_main, other) == 1
                assert "HTTP 404: no endpoint" in capsys.readouterr().out
        finally:
            await client.patch(
                f"/v1/endpoints/{endpoint_id}", json={"disabled": True}, headers=admin
            )
