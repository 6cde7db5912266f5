"""Receiving a webhook delivery, from its raw bytes to its acknowledgement.

The order is fixed: which platform (unknown: ``NotFound``), whether it still has allowance
(``OverAllowance``, before any signature work), the signature over the raw bytes
(``SignatureRejected``), then decoding (``MalformedDelivery``), then one transaction that
claims the delivery id and writes the records (``service.domain.intake``, directly or in a
group commit). The acknowledgement is returned only once that transaction has committed.

Every delivery that wrote nothing (refused, or a duplicate) is noted in the platform's
delivery log, within a per-platform budget: unsigned junk costs no allowance, so without
that bound a flood of it would fill the log table. A failure to log never hides the refusal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import msgspec

from service import metrics
from service.db.queries import webhook_secrets as secrets_q
from service.domain import intake, intake_batch
from service.domain.group_commit import GroupCommit, Lease
from service.domain.limits import TokenBucket
from service.domain.vault import Vault, VaultError, webhook_context
from service.errors import (
    MalformedDelivery,
    NotFound,
    RegistryError,
    SignatureRejected,
    Unavailable,
)
from service.platforms import standard
from service.platforms.registry import Adapter
from service.schemas.webhooks import DeliveryAck, WebhookMessage

__all__ = [
    "LOG_BURST",
    "LOG_RATE",
    "Gate",
    "OverAllowance",
    "SigningCache",
    "receive",
]

log = logging.getLogger(__name__)

#: Refusals logged per platform per second, in bursts up to ``LOG_BURST``.
LOG_RATE = 5.0
LOG_BURST = 100

#: Headers kept with an accepted delivery. Never X-Webhook-Secret: that is the secret.
_KEPT_HEADERS = (
    "content-type",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-github-delivery",
    "x-github-event",
    "x-github-hook-id",
    "x-hub-signature-256",
)

_ERROR_CODES = {
    400: "malformed",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    503: "unavailable",
}


class OverAllowance(Exception):
    """The platform is sending faster than its allowance; retry after ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__("this platform is sending faster than its allowance")
        self.wait = wait


class SigningCache:
    """Each platform's id and active secrets, reused for a moment to save a round trip.

    A signature that fails against cached secrets is checked again against fresh ones, so
    a new secret verifies at once; a retired one stops verifying within ``ttl`` seconds
    (at once when retired through this process's API).
    """

    def __init__(self, ttl: float, vault: Vault) -> None:
        self.ttl = ttl
        #: Opens the secrets, which are stored sealed (``service.domain.vault``).
        self.vault = vault
        self._entries: dict[str, tuple[float, UUID, list[str]]] = {}

    def cached(self, slug: str) -> tuple[UUID, list[str]] | None:
        entry = self._entries.get(slug)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1], entry[2]

    async def fetch(self, conn: asyncpg.Connection, slug: str) -> tuple[UUID, list[str]] | None:
        row = await secrets_q.select_signing_context(conn, slug=slug)
        if row is None:
            self._entries.pop(slug, None)
            return None
        platform_id, stored = row
        context = webhook_context(platform_id)
        try:
            secrets = [self.vault.reveal(sealed=s, plain=p, context=context) for s, p in stored]
        except VaultError as exc:
            # The key file does not hold the key (a rotation not yet seen here): the sender
            # should retry, not be told its signature is wrong.
            raise Unavailable("the platform's signing secrets cannot be read now") from exc
        if self.ttl > 0:
            self._entries[slug] = (time.monotonic() + self.ttl, platform_id, secrets)
        return platform_id, secrets

    def forget(self, slug: str) -> None:
        self._entries.pop(slug, None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Gate:
    """One process's intake state, made once (``service.lifespan``): each platform's
    allowance, its signing secrets, the budget for logging its refusals, and the group
    commit queue (None when group commit is off)."""

    allowance: TokenBucket
    log_budget: TokenBucket
    signing: SigningCache
    group_commit: GroupCommit | None
    tolerance: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _Refusal:
    platform_id: UUID
    source: str
    delivery_id: str | None
    event_type: str | None = None


async def _note(
    lease: Lease,
    gate: Gate,
    refusal: _Refusal,
    *,
    outcome: str,
    status: int,
    reason: str,
    code: str,
) -> None:
    """Count a delivery that wrote nothing and note it in the platform's log, if the
    platform's budget allows; a failure to log never hides the refusal."""
    metrics.record_delivery(outcome, code)
    platform_id = refusal.platform_id
    if gate.log_budget.wait(platform_id) > 0:
        return  # counted above, not logged: the platform is refused faster than it can read
    gate.log_budget.take(platform_id)
    try:
        await intake.log_refusal(
            await lease.get(),
            platform_id=platform_id,
            source=refusal.source,
            delivery_id=refusal.delivery_id,
            outcome=outcome,
            status=status,
            reason=reason,
            event_type=refusal.event_type,
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, Unavailable):
        log.warning("could not log a refused delivery", extra={"platform_id": str(platform_id)})


async def receive(
    lease: Lease,
    gate: Gate,
    *,
    slug: str,
    adapter: Adapter,
    headers: Mapping[str, str],
    body: bytes,
) -> DeliveryAck:
    """Verify, decode and record one delivery (``headers`` with lower-case names).

    Raises ``NotFound``, ``OverAllowance``, ``SignatureRejected``, ``MalformedDelivery``,
    ``Unavailable`` or the intake's own ``RegistryError``; a duplicate is acknowledged with
    ``duplicate=True`` and writes nothing.
    """
    found = gate.signing.cached(slug)
    from_cache = found is not None
    if found is None:
        found = await gate.signing.fetch(await lease.get(), slug)
    if found is None:
        metrics.record_delivery("rejected", "unknown_platform")
        raise NotFound(f"no platform {slug!r}")
    platform_id, secrets = found
    wait = gate.allowance.wait(platform_id)
    if wait > 0:
        metrics.record_delivery("rejected", "rate_limited")
        metrics.record_rate_limited("webhooks")
        raise OverAllowance(wait)
    try:
        try:
            delivery_id = adapter.verify(headers, body, secrets, gate.tolerance)
        except standard.SignatureError:
            if not from_cache:
                raise
            # Perhaps signed with a secret created since the cache was filled.
            fresh = await gate.signing.fetch(await lease.get(), slug)
            delivery_id = adapter.verify(
                headers, body, [] if fresh is None else fresh[1], gate.tolerance
            )
        body.decode("utf-8")
    except (standard.SignatureError, ValueError) as exc:
        code = exc.code if isinstance(exc, standard.SignatureError) else "bad_signature"
        if isinstance(exc, standard.SignatureError):
            reason = str(exc)
        elif isinstance(exc, UnicodeDecodeError):
            reason = "the body is not UTF-8"
        else:
            reason = "the signature headers are malformed"
        unverified = headers.get("webhook-id") or headers.get("x-github-delivery")
        await _note(
            lease,
            gate,
            _Refusal(platform_id=platform_id, source=adapter.source, delivery_id=unverified),
            outcome="rejected",
            status=401,
            reason=reason,
            code=code,
        )
        raise SignatureRejected(reason) from None
    gate.allowance.take(platform_id)

    refusal = _Refusal(platform_id=platform_id, source=adapter.source, delivery_id=delivery_id)
    try:
        event_type, messages = adapter.translate(headers, body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        await _note(
            lease, gate, refusal, outcome="rejected", status=400, reason=str(exc), code="malformed"
        )
        raise MalformedDelivery(f"the delivery is not a valid event: {exc}") from None

    refusal = _Refusal(
        platform_id=platform_id,
        source=adapter.source,
        delivery_id=delivery_id,
        event_type=event_type,
    )
    delivery = intake.Delivery(
        platform_id=platform_id,
        platform_slug=slug,
        source=adapter.source,
        delivery_id=delivery_id,
        event_type=event_type,
        body=body,
        headers={k: headers[k] for k in _KEPT_HEADERS if k in headers},
    )
    try:
        ack = await _ingest(lease, gate, delivery, messages)
    except RegistryError as exc:
        await _note(
            lease,
            gate,
            refusal,
            outcome="rejected",
            status=exc.status,
            reason=exc.detail,
            code=_ERROR_CODES.get(exc.status, "invalid"),
        )
        raise
    if ack.duplicate:
        await _note(
            lease,
            gate,
            refusal,
            outcome="duplicate",
            status=200,
            reason="a redelivery of an accepted delivery: nothing was written",
            code="",
        )
    else:
        metrics.record_delivery("accepted")
    return ack


async def _ingest(
    lease: Lease, gate: Gate, delivery: intake.Delivery, messages: list[WebhookMessage]
) -> DeliveryAck:
    """One transaction: a group commit's when the delivery may join one, else its own."""
    try:
        ack = None
        queue = gate.group_commit
        if queue is not None and (message := intake_batch.batchable(messages)) is not None:
            ack = await queue.submit(lease, delivery, message)
        if ack is None:
            conn = await lease.get()
            async with conn.transaction():
                ack = await intake.ingest(conn, delivery=delivery, messages=messages)
    except asyncpg.TransactionRollbackError as exc:
        # A deadlock or serialization failure with a concurrent delivery: nothing was
        # written, and the same delivery will go through when retried.
        raise Unavailable("the delivery collided with a concurrent one; retry") from exc
    return ack
