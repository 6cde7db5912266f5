"""Deciding, hosting and receiving notices: a live receiver that verifies every notice with
the ``standardwebhooks`` library, as a platform would, and helpers that host a model and
decide about it.

A pytest plugin (see ``conftest.py``): its fixtures are available to every test module.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from uuid import UUID

import asyncpg
import httpx
import pytest
from standardwebhooks import Webhook

from service.domain.decommission_targets import record_confirmation
from service.domain.delivery_worker import WorkerConfig, deliver_batch
from tests.conftest import LOOPBACK, TEST_VAULT, PlatformFixture, register_model

FAST = WorkerConfig(
    batch_size=20,
    send_timeout=5.0,
    backoff_base=0.05,
    backoff_max=0.4,
    max_attempts=40,
    poll_interval=0.02,
    sweep_interval=0.05,
    allowed_networks=LOOPBACK,
    vault=TEST_VAULT,
)


@dataclass
class Hit:
    """One request the receiver got, and what it answered."""

    path: str
    msg_id: str
    verified: bool
    status: int
    payload: dict[str, Any] | None
    at: float


@dataclass
class Receiver:
    """A platform's webhook receiver: verifies signatures, answers from a script."""

    base_url: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    #: Per path, the statuses (and headers) to answer in order; then 200.
    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    #: Requests received so far, counted before answering (hits are logged after).
    started: int = 0
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base_url + path

    def answer(self, path: str, *statuses: int | tuple[int, dict[str, str]]) -> None:
        self.script[path] = [s if isinstance(s, tuple) else (s, {}) for s in statuses]

    def delivered(self, path: str | None = None) -> list[Hit]:
        """Requests answered 2xx (with a valid signature)."""
        with self.lock:
            return [
                h
                for h in self.hits
                if 200 <= h.status < 300 and h.verified and (path is None or h.path == path)
            ]

    def to(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        verified, payload = False, None
        secret = self.secrets.get(path)
        if secret is not None:
            try:
                payload = Webhook(secret).verify(body, headers)
                verified = True
            except Exception:  # any failure to verify is a refusal
                verified = False
        with self.lock:
            self.started += 1
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            queue = self.script.get(path) or []
            status, extra = queue.pop(0) if queue else (200, {})
            if not verified:
                status, extra = 401, {}
            self.hits.append(
                Hit(path, headers.get("webhook-id", ""), verified, status, payload, time.time())
            )
        return status, extra


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra = receiver.handle(self.path, headers, body)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    server.daemon_threads = True
    rec.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture
async def quiet_endpoints(pool: asyncpg.Pool, receiver: Receiver) -> AsyncIterator[None]:
    """Disable this test's endpoints afterwards, so no later worker keeps calling them."""
    yield
    async with pool.acquire() as c:
        await c.execute(
            "UPDATE notification_endpoints SET disabled_at = now(), disabled_reason = 'test over' "
            "WHERE url LIKE $1 AND disabled_at IS NULL",
            receiver.base_url + "/%",
        )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


async def add_endpoint(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    platform: PlatformFixture,
    path: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    path = path or f"/hooks/{platform.slug}"
    r = await client.post(
        f"/v1/platforms/{platform.slug}/endpoints",
        json={"url": receiver.url(path), **fields},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    receiver.secrets[path] = body["secret"]
    return body


async def host(
    client: httpx.AsyncClient, admin: dict[str, str], model: str, platform: PlatformFixture
) -> str:
    r = await client.post(
        "/v1/hostings",
        json={
            "model": model,
            "url": f"https://{platform.slug}.example/{model}",
            "platform": platform.slug,
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    hosting_id: str = r.json()["id"]
    return hosting_id


async def propose(
    client: httpx.AsyncClient,
    proposer: dict[str, str],
    model: str,
    *,
    reason: str = "unsafe outputs",
    **fields: Any,
) -> dict[str, Any]:
    """Propose a recall of ``model`` (or another action, through ``fields``); not yet approved."""
    r = await client.post(
        "/v1/decommissions",
        json={"model": model, "action": "recall", "reason": reason, **fields},
        headers=proposer,
    )
    assert r.status_code == 201, r.text
    decision: dict[str, Any] = r.json()
    assert decision["status"] == "proposed", decision
    return decision


async def decide(
    client: httpx.AsyncClient,
    proposer: dict[str, str],
    approver: dict[str, str],
    model: str,
    *,
    notify: bool = True,
    **fields: Any,
) -> dict[str, Any]:
    """Propose, approve (by a second admin) and notify a recall of ``model``."""
    decision: dict[str, Any] = await propose(client, proposer, model, **fields)
    r = await client.post(f"/v1/decommissions/{decision['id']}/approve", headers=approver)
    assert r.status_code == 200, r.text
    decision = r.json()
    if notify:
        r = await client.post(f"/v1/decommissions/{decision['id']}/notify", headers=approver)
        assert r.status_code == 200, r.text
        decision = r.json()
    return decision


async def recall_hosted_model(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    model: str,
    *,
    receiver: Receiver | None = None,
    approver: dict[str, str] | None = None,
    notify: bool = True,
    **fields: Any,
) -> dict[str, Any]:
    """The whole way to one notice: register ``model``, host it on ``platform`` (with an
    endpoint at ``receiver``, if given), and have ``admin`` propose a recall that a second
    admin (``approver``, or a new one) approves and, unless ``notify`` is false, notifies."""
    approver = approver or await admin_headers(pool)
    await register_model(client, admin, model)
    await host(client, admin, model, platform)
    if receiver is not None:
        await add_endpoint(client, admin, receiver, platform)
    return await decide(client, admin, approver, model, notify=notify, **fields)


async def notices_for(
    client: httpx.AsyncClient, headers: dict[str, str], decision_id: str
) -> list[dict[str, Any]]:
    """The notices of one decision, as ``headers``' holder may list them."""
    r = await client.get("/v1/notifications", params={"decision_id": decision_id}, headers=headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def drain(
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    until: Callable[[], bool],
    *,
    config: WorkerConfig = FAST,
    within: float = 20.0,
) -> None:
    """Run delivery rounds (at least one) until ``until()`` holds."""
    deadline = time.monotonic() + within
    while True:
        claimed = await deliver_batch(pool, http, config)
        if until():
            return
        assert time.monotonic() < deadline, "deliveries did not finish in time"
        if not claimed:
            await asyncio.sleep(config.poll_interval)


async def confirm_target(
    pool: asyncpg.Pool, decision: dict[str, Any], target: dict[str, Any], outcome: str = "removed"
) -> list[int]:
    """The platform of one of the decision's targets confirms it, as its intake would."""
    async with pool.acquire() as raw, raw.transaction():
        return await record_confirmation(
            cast("asyncpg.Connection", raw),
            decision_id=UUID(decision["id"]),
            platform_id=UUID(target["platform_id"]),
            model_id=UUID(target["model_id"]),
            outcome=outcome,
            occurred_at=None,
            actor_id=None,
        )


async def admin_headers(pool: asyncpg.Pool) -> dict[str, str]:
    from tests.conftest import bearer, make_key

    return bearer(await make_key(pool, "admin", name="second admin"))
