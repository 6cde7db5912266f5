"""The delivery worker: sends queued notices to platforms' endpoints, signed.

**Claiming.** A batch of due notices is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``
in one transaction, sent concurrently over the service's shared HTTP client, and each
outcome (delivered, retry, failed) is written in that same transaction before it commits.
The row lock is the claim: another worker, in this process or another replica, skips the
rows and, once the claim commits, no longer sees a delivered notice as due. So a notice a
receiver answered 2xx to is never handed to a second worker. The claim lasts as long as the
transaction; ``idle_in_transaction_session_timeout`` is set for it to well over the send
timeout, so a live worker never loses its claim mid-send while a wedged one gives it up.

**At least once.** If the process dies after a receiver answered but before the claim
commits, the notice is still pending and is sent again. Every attempt carries the same
``webhook-id`` (the notice id) and the same body, so receivers must drop ids they have
already processed.

**Retries.** Any answer other than 2xx, and any network error or timeout, is retried with
exponential backoff and jitter (``base * 2^(n-1)``, capped, times 0.8-1.2), or after the
receiver's ``Retry-After`` when that is longer, until ``max_attempts`` (by default spanning
more than 24 hours). A 410 Gone disables the endpoint at once. Each attempt is recorded:
status, latency, error, and when the next one is due.

**Shutdown.** The worker finishes the batch it holds, then stops.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import socket
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import asyncpg
import httpx

from service import __version__, metrics
from service.db.pool import DB_FAILURES, connection
from service.db.queries import outbox as q
from service.domain.decommission_targets import flag_untargeted
from service.domain.destinations import Network, NotAUrl, Refused, parse_networks, resolve_target
from service.domain.endpoints import disable_endpoint
from service.domain.outbox import encode_body
from service.domain.vault import Vault, VaultError, endpoint_context, open_vault
from service.errors import Unavailable
from service.platforms.standard import secret_key, sign
from service.settings import Settings

__all__ = [
    "WorkerConfig",
    "deliver_batch",
    "parse_retry_after",
    "retry_delay",
    "run_delivery_worker",
    "signature_headers",
]

log = logging.getLogger(__name__)

#: The longest a receiver's Retry-After is honoured for.
_MAX_RETRY_AFTER = 24 * 3600.0
_USER_AGENT = f"risk-registry/{__version__} (notices)"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    batch_size: int = 20
    send_timeout: float = 10.0
    backoff_base: float = 5.0
    backoff_max: float = 3600.0
    max_attempts: int = 40
    poll_interval: float = 1.0
    sweep_interval: float = 5.0
    #: Non-public networks notices may go to all the same (see ``destinations``).
    allowed_networks: tuple[Network, ...] = ()
    #: Opens the endpoints' sealed secrets; ``from_settings`` reads the key file.
    vault: Vault | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerConfig:
        return cls(
            batch_size=settings.outbox_batch_size,
            send_timeout=settings.outbox_send_timeout_seconds,
            backoff_base=settings.outbox_backoff_base_seconds,
            backoff_max=settings.outbox_backoff_max_seconds,
            max_attempts=settings.outbox_max_attempts,
            poll_interval=settings.outbox_poll_seconds,
            sweep_interval=settings.outbox_sweep_seconds,
            allowed_networks=parse_networks(settings.notice_allowed_networks),
            vault=open_vault(settings),
        )

    @property
    def lease_ms(self) -> int:
        """How long a claim may sit idle before PostgreSQL ends it: the whole batch is sent
        concurrently, so one send timeout plus a generous margin."""
        return int((self.send_timeout * 2 + 30) * 1000)


def retry_delay(
    attempt: int, *, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before retrying after failed attempt number ``attempt`` (1-based)."""
    delay: float = min(cap, base * 2.0 ** min(attempt - 1, 40))
    return delay * (0.8 + 0.4 * rand())


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from ``now``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), _MAX_RETRY_AFTER)


@dataclass(frozen=True, slots=True)
class _Outcome:
    started_at: datetime
    latency_ms: float
    status: int | None
    retry_after: str | None
    error: str | None


def signature_headers(
    *, secret: str, msg_id: str, body: bytes, at: float, previous: str | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for one attempt, signed with the endpoint's secret (and,
    just after a rotation, with the previous one too: a receiver accepts either)."""
    stamp = str(int(at))
    signatures = [
        "v1," + base64.b64encode(sign(secret_key(s), msg_id, stamp, body)).decode()
        for s in (secret, previous)
        if s is not None
    ]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": _USER_AGENT,
    }


#: What a platform is told about an attempt that got no HTTP answer: a fixed phrase, never
#: the exception's text (which can describe the registry's own network). The log has more.
FAILURE_TEXT = {
    "refused": "not sent: the endpoint's host is, or resolves to, a non-public address",
    "timeout": "no answer within the send timeout",
    "connect": "could not connect",
    "lookup": "the endpoint's host name did not resolve",
    "transport": "the connection failed",
    "secret": "not sent: the registry cannot open this endpoint's secret",
    "url": "not sent: the endpoint's URL is not one a request can be sent to",
}


def _failure(exc: BaseException) -> str:
    if isinstance(exc, NotAUrl):
        return FAILURE_TEXT["url"]
    if isinstance(exc, Refused):
        return FAILURE_TEXT["refused"]
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return FAILURE_TEXT["timeout"]
    if isinstance(exc, socket.gaierror):
        return FAILURE_TEXT["lookup"]
    if isinstance(exc, httpx.ConnectError | ConnectionError):
        return FAILURE_TEXT["connect"]
    return FAILURE_TEXT["transport"]


def _endpoint_secrets(row: asyncpg.Record, vault: Vault | None) -> tuple[str, str | None]:
    """The endpoint's secret and, during a rotation's overlap, the previous one."""
    context = endpoint_context(row["platform_id"])
    pairs = (
        (row["secret_sealed"], row["secret"]),
        (row["previous_secret_sealed"], row["previous_secret"]),
    )
    opened: list[str | None] = []
    for sealed, plain in pairs:
        if sealed is None and plain is None:
            opened.append(None)
        elif vault is None:
            if sealed is not None:
                raise VaultError("no vault to open the endpoint's secret with")
            opened.append(str(plain))
        else:
            opened.append(vault.reveal(sealed=sealed, plain=plain, context=context))
    secret, previous = opened
    if secret is None:
        raise VaultError("the endpoint holds no secret")
    return secret, previous


async def _send(
    http: httpx.AsyncClient, row: asyncpg.Record, limit: float, config: WorkerConfig
) -> _Outcome:
    msg_id = str(row["id"])
    allowed = config.allowed_networks
    body = encode_body(
        message_id=row["id"],
        event_type=row["event_type"],
        created_at=row["created_at"],
        payload=row["payload"],
    )
    started_at = datetime.now(UTC)
    clock = time.perf_counter()
    try:
        secret, previous = _endpoint_secrets(row, config.vault)
    except VaultError as exc:
        # The key file lost the key this secret was sealed with: nothing can be signed.
        log.error("notice not sent", extra={"notification": msg_id, "error": str(exc)})
        return _Outcome(started_at, 0.0, None, None, FAILURE_TEXT["secret"])
    headers = signature_headers(
        secret=secret,
        previous=previous,
        msg_id=msg_id,
        body=body,
        at=time.time(),
    )
    try:
        async with asyncio.timeout(limit):
            # Checked now, not only at registration: the name may point elsewhere since.
            target = await resolve_target(row["url"], allowed=allowed)
            headers["host"] = target.host
            response = await http.post(
                target.url,
                content=body,
                headers=headers,
                timeout=limit,
                follow_redirects=False,
                extensions={"sni_hostname": target.server_name},
            )
    except (httpx.HTTPError, TimeoutError, OSError, Refused, UnicodeError, ValueError) as exc:
        log.warning(
            "notice not delivered",
            extra={"notification": msg_id, "error": f"{type(exc).__name__}: {exc}"[:500]},
        )
        failure = _failure(exc)
        return _Outcome(started_at, (time.perf_counter() - clock) * 1000, None, None, failure)
    latency = (time.perf_counter() - clock) * 1000
    error = None if response.is_success else f"HTTP {response.status_code}"
    return _Outcome(
        started_at, latency, response.status_code, response.headers.get("retry-after"), error
    )


async def _record(
    conn: asyncpg.Connection, row: asyncpg.Record, outcome: _Outcome, config: WorkerConfig
) -> None:
    attempt = int(row["attempts"]) + 1
    retry_at = None
    if outcome.status is not None and 200 <= outcome.status < 300:
        await q.mark_delivered(conn, message_id=row["id"], status=outcome.status)
    elif outcome.status == 410:
        await q.mark_failed(conn, message_id=row["id"], status=410, error="HTTP 410: endpoint gone")
        await disable_endpoint(
            conn, endpoint_id=row["endpoint_id"], reason="the receiver answered 410 Gone"
        )
    elif attempt >= config.max_attempts:
        await q.mark_failed(conn, message_id=row["id"], status=outcome.status, error=outcome.error)
    else:
        delay = retry_delay(attempt, base=config.backoff_base, cap=config.backoff_max)
        asked = parse_retry_after(outcome.retry_after, now=outcome.started_at)
        if asked is not None:
            delay = max(delay, asked)
        retry_at = datetime.now(UTC) + timedelta(seconds=delay)
        await q.mark_retry(
            conn,
            message_id=row["id"],
            next_attempt_at=retry_at,
            status=outcome.status,
            error=outcome.error,
        )
    await q.insert_attempt(
        conn,
        message_id=row["id"],
        attempt=attempt,
        url=row["url"],
        started_at=outcome.started_at,
        status_code=outcome.status,
        latency_ms=outcome.latency_ms,
        error=outcome.error,
        retry_at=retry_at,
    )
    log.info(
        "notice attempt",
        extra={
            "notification": str(row["id"]),
            "attempt": attempt,
            "status": outcome.status,
            "error": outcome.error,
            "latency_ms": round(outcome.latency_ms, 1),
        },
    )


async def deliver_batch(pool: asyncpg.Pool, http: httpx.AsyncClient, config: WorkerConfig) -> int:
    """Claim, send and record one batch of due notices; returns how many were claimed."""
    async with connection(pool) as conn, conn.transaction():
        await q.set_claim_lease(conn, lease_ms=config.lease_ms)
        rows = await q.claim_due(conn, limit=config.batch_size)
        if not rows:
            return 0
        outcomes = await asyncio.gather(
            *(_send(http, r, config.send_timeout, config) for r in rows)
        )
        # Recorded in endpoint order: a 410 locks its endpoint, and two workers locking
        # endpoints in different orders could deadlock.
        done = sorted(
            zip(rows, outcomes, strict=True), key=lambda p: (p[0]["endpoint_id"], p[0]["id"])
        )
        for row, outcome in done:
            await _record(conn, row, outcome, config)
    # Counted once the batch's results are committed.
    for outcome in outcomes:
        metrics.record_outbox_attempt(_attempt_label(outcome.status))
    return len(rows)


def _attempt_label(status: int | None) -> str:
    if status is not None and 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"
    return "error" if status is None else "retry"


async def _sweep(pool: asyncpg.Pool) -> None:
    async with connection(pool) as conn, conn.transaction():
        await flag_untargeted(conn)
        await q.fail_orphaned(conn)


async def run_delivery_worker(
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    config: WorkerConfig,
    *,
    stop: asyncio.Event,
) -> None:
    """Deliver until ``stop`` is set, finishing the batch in hand; sweep for late hostings
    and for notices left to an endpoint deleted meanwhile."""
    last_sweep = float("-inf")
    while not stop.is_set():
        claimed = 0
        try:
            if time.monotonic() - last_sweep >= config.sweep_interval:
                last_sweep = time.monotonic()
                await _sweep(pool)
            claimed = await deliver_batch(pool, http, config)
        except (*DB_FAILURES, Unavailable):
            log.exception("notice delivery failed; retrying")
        if claimed >= config.batch_size:
            continue
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=config.poll_interval)
