"""``/v1/webhooks/{platform}``: signed deliveries from hosting platforms, and their log.

The receiving routes carry no API key: a delivery is authenticated by its signature,
checked over the raw bytes before anything is decoded. Cheap refusals come first (413, 415,
unknown platform, 429), then the signature (401), then decoding (400), then the one
transaction that claims the delivery id and writes the records; the answer goes only after
that transaction commits. Every delivery that wrote nothing is noted in the platform's log.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, cast
from uuid import UUID

import asyncpg
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import ParamType
from litestar.exceptions import HTTPException, TooManyRequestsException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.openapi.spec import Parameter as OpenAPIParameter
from litestar.params import FromPath, FromQuery, Parameter

from service import metrics
from service.api.auth import ANY_ROLE, allow
from service.api.deps import Caller, Db
from service.api.pagination import Cursor, Limit, decode_uuid_cursor, paginate
from service.api.problems import problem_responses
from service.db.queries import deliveries as deliveries_q
from service.db.queries import webhook_secrets as secrets_q
from service.domain import intake
from service.domain.platforms import get_platform
from service.errors import NotFound, RegistryError, Unavailable
from service.platforms import github, huggingface, standard
from service.schemas.keys import Principal
from service.schemas.webhooks import (
    DeliveryAck,
    DeliveryLogEntry,
    DeliveryLogPage,
    DeliveryOutcome,
    StoredDelivery,
    WebhookMessage,
    decode_message,
)
from service.settings import Settings

__all__ = ["DeliveryLogController", "WebhookController"]

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


class _Buckets:
    """A token bucket per platform: ``rate`` deliveries a second, bursts up to ``burst``.

    Only verified deliveries take a token, so unsigned junk cannot spend a platform's
    allowance; an empty bucket refuses before any signature work.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = max(rate, 1e-6)
        self.burst = float(max(burst, 1))
        self._tokens: dict[UUID, tuple[float, float]] = {}

    def _level(self, key: UUID, now: float) -> float:
        tokens, last = self._tokens.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def wait(self, key: UUID) -> float:
        """Seconds until a delivery would be allowed (0 when it is now)."""
        level = self._level(key, time.monotonic())
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate

    def take(self, key: UUID) -> None:
        now = time.monotonic()
        self._tokens[key] = (self._level(key, now) - 1.0, now)


class _SigningCache:
    """Each platform's id and active secrets, reused for a moment to save a round trip.

    A signature that fails against cached secrets is checked again against fresh ones, so
    a new secret verifies at once; a retired one stops verifying within ``ttl`` seconds
    (at once when retired through this process's API).
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, UUID, list[str]]] = {}

    def cached(self, slug: str) -> tuple[UUID, list[str]] | None:
        entry = self._entries.get(slug)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1], entry[2]

    async def fetch(self, conn: asyncpg.Connection, slug: str) -> tuple[UUID, list[str]] | None:
        found = await secrets_q.select_signing_context(conn, slug=slug)
        if found is None:
            self._entries.pop(slug, None)
        elif self.ttl > 0:
            self._entries[slug] = (time.monotonic() + self.ttl, *found)
        return found

    def forget(self, slug: str) -> None:
        self._entries.pop(slug, None)


def signing_cache(state: State) -> _SigningCache:
    cache: _SigningCache | None = state.get("webhook_signing")
    if cache is None:
        settings: Settings = state.settings
        cache = _SigningCache(settings.webhook_secret_cache_seconds)
        state["webhook_signing"] = cache
    return cache


def _limiter(state: State) -> _Buckets:
    limiter: _Buckets | None = state.get("webhook_limiter")
    if limiter is None:
        settings: Settings = state.settings
        limiter = _Buckets(settings.webhook_rate_per_second, settings.webhook_burst)
        state["webhook_limiter"] = limiter
    return limiter


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


#: Refusals logged per platform per second (bursts up to ``_LOG_BURST``): unsigned junk
#: costs no allowance, so without this bound a flood of it would fill the log table.
_LOG_RATE = 5.0
_LOG_BURST = 100


def _log_budget(state: State) -> _Buckets:
    budget: _Buckets | None = state.get("webhook_log_budget")
    if budget is None:
        budget = _Buckets(_LOG_RATE, _LOG_BURST)
        state["webhook_log_budget"] = budget
    return budget


async def _refuse(
    conn: asyncpg.Connection,
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
    budget = _log_budget(state)
    if budget.wait(platform_id) > 0:
        return  # counted above, not logged: the platform is refused faster than it can read
    budget.take(platform_id)
    try:
        await intake.log_refusal(
            conn,
            platform_id=platform_id,
            source=source,
            delivery_id=delivery_id,
            outcome=outcome,
            status=status,
            reason=reason,
            event_type=event_type,
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
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

    pool: asyncpg.Pool = state.pool
    try:
        conn = await pool.acquire(timeout=state.acquire_timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        metrics.record_delivery("rejected", "unavailable")
        raise Unavailable("the database is not answering; retry shortly") from exc
    try:
        return await _receive_on(
            cast("asyncpg.Connection", conn),
            request,
            state,
            settings,
            body,
            slug,
            source,
            verifier,
            translator,
        )
    finally:
        await pool.release(conn)


async def _receive_on(
    conn: asyncpg.Connection,
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
        found = await cache.fetch(conn, slug)
    if found is None:
        metrics.record_delivery("rejected", "unknown_platform")
        raise NotFound(f"no platform {slug!r}")
    platform_id, secrets = found
    limiter = _limiter(state)
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
            fresh = await cache.fetch(conn, slug)
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
            conn,
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
            conn,
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
            async with conn.transaction():
                ack = await intake.ingest(conn, delivery=delivery, messages=messages)
        except asyncpg.TransactionRollbackError as exc:
            # A deadlock or serialization failure with a concurrent delivery: nothing was
            # written, and the same delivery will go through when retried.
            raise Unavailable("the delivery collided with a concurrent one; retry") from exc
    except RegistryError as exc:
        await _refuse(
            conn,
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
            conn,
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


_RECEIVE_RESPONSES = {
    200: ResponseSpec(
        data_container=DeliveryAck,
        description="A redelivery of an accepted delivery (same id, same body): nothing "
        "was written; `events` are the original delivery's.",
    ),
    **problem_responses(400, 401, 404, 409, 413, 415, 422, 429),
}
_RECEIVE_403 = problem_responses(403)
_ACCEPTED = (
    "Accepted: the delivery's records are committed; `events` are the sequence numbers of "
    "the ledger events it produced."
)


_EVENT_TYPES = [
    "model.hosted",
    "model.updated",
    "model.removed",
    "model.restricted",
    "model.downloads",
    "incident.reported",
    "decommission.executed",
]

_ENVELOPE = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "timestamp", "data"],
    additional_properties=False,
    properties={
        "type": Schema(type=OpenAPIType.STRING, enum=list(_EVENT_TYPES)),
        "timestamp": Schema(
            type=OpenAPIType.STRING,
            format="date-time",  # type: ignore[arg-type]
            description="When the change happened at the platform, with an offset.",
        ),
        "data": Schema(
            type=OpenAPIType.OBJECT,
            description="The event's fields; unknown fields are refused (400).",
        ),
    },
)


def _header(name: str, description: str) -> OpenAPIParameter:
    return OpenAPIParameter(
        name=name,
        param_in=ParamType.HEADER,
        required=True,
        schema=Schema(type=OpenAPIType.STRING),
        description=description,
    )


@dataclass
class _StandardDeliveryOperation(Operation):
    """Documents the body and signature headers the handler reads itself, as raw bytes."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={"application/json": OpenAPIMediaType(schema=_ENVELOPE)},
        )
        self.parameters = [
            *(self.parameters or []),
            _header("webhook-id", "The delivery's unique id; the same on every retry."),
            _header("webhook-timestamp", "Unix seconds; within 5 minutes of the registry's clock."),
            _header("webhook-signature", "Space-separated `v1,<base64 HMAC-SHA256>` entries."),
        ]


@dataclass
class _NativeDeliveryOperation(Operation):
    """A platform's own payload, read as raw bytes and verified before it is decoded."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))},
        )


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
        response_description=_ACCEPTED,
        opt={"exclude_from_auth": True},
        responses={**_RECEIVE_RESPONSES, **_RECEIVE_403},
        operation_class=_StandardDeliveryOperation,
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
        operation_class=_NativeDeliveryOperation,
        opt={"exclude_from_auth": True},
        responses={**_RECEIVE_RESPONSES, **_RECEIVE_403},
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
        operation_class=_NativeDeliveryOperation,
        opt={"exclude_from_auth": True},
        responses={**_RECEIVE_RESPONSES, **_RECEIVE_403},
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


async def _platform_for(db: asyncpg.Connection, slug: str, principal: Principal) -> UUID:
    """The platform's id, if the caller may read its deliveries (admins; the platform)."""
    platform = await get_platform(db, slug=slug, visible_to=principal.platform_id)
    return platform.id


class DeliveryLogController(Controller):
    path = "/v1/webhooks/{platform:str}/deliveries"
    tags = ["webhooks"]

    @get(
        operation_id="listWebhookDeliveries",
        summary="A platform's delivery log, newest first: accepted, duplicate and rejected",
        guards=[allow("admin", "platform")],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def index(
        self,
        platform: FromPath[Slug],
        db: Db,
        principal: Caller,
        outcome: FromQuery[DeliveryOutcome | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> DeliveryLogPage:
        platform_id = await _platform_for(db, platform, principal)
        rows = await deliveries_q.select_log(
            db,
            platform_id=platform_id,
            outcome=outcome,
            before=decode_uuid_cursor(cursor),
            limit=limit + 1,
        )
        items = [msgspec.convert(dict(row), DeliveryLogEntry) for row in rows]
        page, next_cursor = paginate(items, limit, lambda e: e.id)
        return DeliveryLogPage(items=page, next_cursor=next_cursor)

    @get(
        "/{delivery_id:str}",
        operation_id="getWebhookDelivery",
        summary="One accepted delivery as received: raw body, headers and its ledger events",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read(
        self,
        platform: FromPath[Slug],
        delivery_id: FromPath[Annotated[str, Parameter(max_length=200)]],
        db: Db,
        principal: Caller,
    ) -> StoredDelivery:
        platform_id = await _platform_for(db, platform, principal)
        row = await deliveries_q.select_delivery(
            db, platform_id=platform_id, delivery_id=delivery_id
        )
        if row is None:
            raise NotFound(f"no accepted delivery {delivery_id!r} from {platform!r}")
        record = dict(row)
        record["body"] = bytes(record["body"]).decode("utf-8")
        return msgspec.convert(record, StoredDelivery)
