"""``/v1/webhooks/{platform}``: signed deliveries from hosting platforms.

The receiving routes carry no API key: a delivery is authenticated by its signature,
checked over the raw bytes before anything is decoded. Cheap refusals come first (413, 415,
unknown platform, 429), then the signature (401), then decoding (400), then the one
transaction that claims the delivery id and writes the records; the answer goes only after
that transaction commits. Every delivery that wrote nothing is noted in the platform's log
(``service.api.delivery_log``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import msgspec
from litestar import Controller, Request, Response, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, TooManyRequestsException
from litestar.params import FromPath, Parameter

from service import metrics
from service.api.group_commit import Lease, group_commit
from service.api.webhook_docs import (
    ACCEPTED,
    RECEIVE_RESPONSES,
    NativeDeliveryOperation,
    StandardDeliveryOperation,
)
from service.api.webhook_limits import delivery_limiter, log_budget, signing_cache
from service.domain import intake
from service.errors import NotFound, RegistryError, Unavailable
from service.platforms import github, huggingface, standard
from service.schemas.webhooks import DeliveryAck, WebhookMessage, decode_message
from service.settings import Settings

__all__ = ["Slug", "WebhookController"]

log = logging.getLogger(__name__)

Slug = Annotated[str, Parameter(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]

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


class SignatureRejected(RegistryError):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class MalformedDelivery(RegistryError):
    status = 400
    slug = "bad-request"
    title = "Bad request"


# A verifier checks a delivery and returns its id; a translator turns the body into messages.
Verifier = Callable[[dict[str, str], bytes, list[str], int], str]
Translator = Callable[[dict[str, str], bytes], tuple[str, list[WebhookMessage]]]


def _verify_standard(headers: dict[str, str], body: bytes, secrets: list[str], tol: int) -> str:
    signed = standard.signed_headers(headers)
    keys = []
    for secret in secrets:
        try:
            keys.append(standard.secret_key(secret))
        except ValueError:
            continue
    standard.verify(keys=keys, signed=signed, body=body, tolerance=tol)
    return signed.msg_id


def _translate_standard(headers: dict[str, str], body: bytes) -> tuple[str, list[WebhookMessage]]:
    message = decode_message(body)
    return str(type(message).__struct_config__.tag), [message]


def _verify_huggingface(headers: dict[str, str], body: bytes, secrets: list[str], _: int) -> str:
    huggingface.verify(headers=headers, secrets=secrets)
    return huggingface.delivery_id(body)


def _translate_huggingface(
    headers: dict[str, str], body: bytes
) -> tuple[str, list[WebhookMessage]]:
    return huggingface.translate(body)


def _verify_github(headers: dict[str, str], body: bytes, secrets: list[str], _: int) -> str:
    return github.verify(headers=headers, body=body, secrets=secrets)


def _translate_github(headers: dict[str, str], body: bytes) -> tuple[str, list[WebhookMessage]]:
    return github.translate(body, event=headers.get("x-github-event", ""))


async def _refuse(
    lease: Lease,
    state: State,
    *,
    platform_id: UUID,
    source: str,
    delivery_id: str | None,
    outcome: str,
    status: int,
    reason: str,
    code: str,
    event_type: str | None = None,
) -> None:
    """Log a delivery that wrote nothing; a failure to log never hides the refusal."""
    metrics.record_delivery(outcome, code)
    budget = log_budget(state)
    if budget.wait(platform_id) > 0:
        return  # counted above, not logged: the platform is refused faster than it can read
    budget.take(platform_id)
    try:
        await intake.log_refusal(
            await lease.get(),
            platform_id=platform_id,
            source=source,
            delivery_id=delivery_id,
            outcome=outcome,
            status=status,
            reason=reason,
            event_type=event_type,
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, Unavailable):
        log.warning("could not log a refused delivery", extra={"platform_id": str(platform_id)})


_ERROR_CODES = {
    400: "malformed",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    503: "unavailable",
}


async def _receive(
    request: Request[Any, Any, Any],
    state: State,
    *,
    slug: str,
    source: str,
    verifier: Verifier,
    translator: Translator,
) -> Response[DeliveryAck]:
    settings: Settings = state.settings
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > settings.max_body_bytes:
        metrics.record_delivery("rejected", "too_large")
        raise HTTPException(status_code=413, detail="the body is larger than the service accepts")
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/json":
        metrics.record_delivery("rejected", "unsupported_media_type")
        raise HTTPException(status_code=415, detail="deliveries must be application/json")
    body = await request.body()

    lease = Lease(state.pool, state.acquire_timeout)
    try:
        await lease.get()
    except Unavailable:
        metrics.record_delivery("rejected", "unavailable")
        raise
    try:
        return await _receive_on(
            lease, request, state, settings, body, slug, source, verifier, translator
        )
    finally:
        await lease.release()


async def _receive_on(
    lease: Lease,
    request: Request[Any, Any, Any],
    state: State,
    settings: Settings,
    body: bytes,
    slug: str,
    source: str,
    verifier: Verifier,
    translator: Translator,
) -> Response[DeliveryAck]:
    cache = signing_cache(state)
    found = cache.cached(slug)
    from_cache = found is not None
    if found is None:
        found = await cache.fetch(await lease.get(), slug)
    if found is None:
        metrics.record_delivery("rejected", "unknown_platform")
        raise NotFound(f"no platform {slug!r}")
    platform_id, secrets = found
    limiter = delivery_limiter(state)
    wait = limiter.wait(platform_id)
    if wait > 0:
        metrics.record_delivery("rejected", "rate_limited")
        raise TooManyRequestsException(
            detail="this platform is sending faster than its allowance",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    headers = {k.lower(): v for k, v in request.headers.items()}
    tolerance = settings.webhook_tolerance_seconds
    try:
        try:
            delivery_id = verifier(headers, body, secrets, tolerance)
        except standard.SignatureError:
            if not from_cache:
                raise
            # Perhaps signed with a secret created since the cache was filled.
            fresh = await cache.fetch(await lease.get(), slug)
            delivery_id = verifier(headers, body, [] if fresh is None else fresh[1], tolerance)
        body.decode("utf-8")
    except (standard.SignatureError, ValueError) as exc:
        code = exc.code if isinstance(exc, standard.SignatureError) else "bad_signature"
        if isinstance(exc, standard.SignatureError):
            reason = str(exc)
        elif isinstance(exc, UnicodeDecodeError):
            reason = "the body is not UTF-8"
        else:
            reason = "the signature headers are malformed"
        await _refuse(
            lease,
            state,
            platform_id=platform_id,
            source=source,
            delivery_id=headers.get("webhook-id") or headers.get("x-github-delivery"),
            outcome="rejected",
            status=401,
            reason=reason,
            code=code,
        )
        raise SignatureRejected(reason) from None
    limiter.take(platform_id)

    try:
        event_type, messages = translator(headers, body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        await _refuse(
            lease,
            state,
            platform_id=platform_id,
            source=source,
            delivery_id=delivery_id,
            outcome="rejected",
            status=400,
            reason=str(exc),
            code="malformed",
        )
        raise MalformedDelivery(f"the delivery is not a valid event: {exc}") from None

    delivery = intake.Delivery(
        platform_id=platform_id,
        platform_slug=slug,
        source=source,
        delivery_id=delivery_id,
        event_type=event_type,
        body=body,
        headers={k: headers[k] for k in _KEPT_HEADERS if k in headers},
    )
    try:
        try:
            ack = None
            if (message := intake.batchable(messages)) is not None and settings.group_commit:
                ack = await group_commit(state).submit(lease, delivery, message)
            if ack is None:
                conn = await lease.get()
                async with conn.transaction():
                    ack = await intake.ingest(conn, delivery=delivery, messages=messages)
        except asyncpg.TransactionRollbackError as exc:
            # A deadlock or serialization failure with a concurrent delivery: nothing was
            # written, and the same delivery will go through when retried.
            raise Unavailable("the delivery collided with a concurrent one; retry") from exc
    except RegistryError as exc:
        await _refuse(
            lease,
            state,
            platform_id=platform_id,
            source=source,
            delivery_id=delivery_id,
            outcome="rejected",
            status=exc.status,
            reason=exc.detail,
            code=_ERROR_CODES.get(exc.status, "invalid"),
            event_type=event_type,
        )
        raise
    if ack.duplicate:
        await _refuse(
            lease,
            state,
            platform_id=platform_id,
            source=source,
            delivery_id=delivery_id,
            outcome="duplicate",
            status=200,
            reason="a redelivery of an accepted delivery: nothing was written",
            code="",
            event_type=event_type,
        )
        return Response(ack, status_code=200)
    metrics.record_delivery("accepted")
    return Response(ack, status_code=202)


class WebhookController(Controller):
    """Routes a platform's own HTTP client calls; authenticated by signature, not by key."""

    path = "/v1/webhooks"
    tags = ["webhooks"]

    @post(
        "/{platform:str}",
        operation_id="receiveWebhook",
        summary="Receive a Standard Webhooks delivery from a platform",
        description=(
            "Headers `webhook-id`, `webhook-timestamp` and `webhook-signature` "
            "(`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}` keyed with the "
            "platform's `whsec_` secret). Body `{type, timestamp, data}` with `type` one of "
            "`model.hosted`, `model.updated`, `model.removed`, `model.restricted`, "
            "`model.downloads`, `incident.reported`, `decommission.executed`. Answered 202 "
            "only once the records are committed."
        ),
        status_code=202,
        response_description=ACCEPTED,
        opt={"exclude_from_auth": True},
        responses=RECEIVE_RESPONSES,
        operation_class=StandardDeliveryOperation,
    )
    async def receive(
        self, platform: FromPath[Slug], request: Request[Any, Any, Any], state: State
    ) -> Response[DeliveryAck]:
        return await _receive(
            request,
            state,
            slug=platform,
            source="standard",
            verifier=_verify_standard,
            translator=_translate_standard,
        )

    @post(
        "/{platform:str}/huggingface",
        operation_id="receiveHuggingFaceWebhook",
        summary="Receive a Hugging Face Hub webhook (verified by X-Webhook-Secret)",
        status_code=202,
        operation_class=NativeDeliveryOperation,
        opt={"exclude_from_auth": True},
        responses=RECEIVE_RESPONSES,
    )
    async def receive_huggingface(
        self, platform: FromPath[Slug], request: Request[Any, Any, Any], state: State
    ) -> Response[DeliveryAck]:
        return await _receive(
            request,
            state,
            slug=platform,
            source="huggingface",
            verifier=_verify_huggingface,
            translator=_translate_huggingface,
        )

    @post(
        "/{platform:str}/github",
        operation_id="receiveGitHubWebhook",
        summary="Receive a GitHub delivery (verified by X-Hub-Signature-256)",
        status_code=202,
        operation_class=NativeDeliveryOperation,
        opt={"exclude_from_auth": True},
        responses=RECEIVE_RESPONSES,
    )
    async def receive_github(
        self, platform: FromPath[Slug], request: Request[Any, Any, Any], state: State
    ) -> Response[DeliveryAck]:
        return await _receive(
            request,
            state,
            slug=platform,
            source="github",
            verifier=_verify_github,
            translator=_translate_github,
        )
