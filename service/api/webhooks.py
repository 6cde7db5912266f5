"""``/v1/webhooks/{platform}``: signed deliveries from hosting platforms.

The receiving routes carry no API key: a delivery is authenticated by its signature,
checked over the raw bytes before anything is decoded. The HTTP refusals come first here
(413, 415), then ``service.domain.receiving`` takes the delivery through the platform's
adapter (``service.platforms.registry``) into intake: unknown platform (404), allowance
(429), signature (401), decoding (400), then the one transaction that claims the delivery id
and writes the records; the answer goes only after that transaction commits. Every delivery
that wrote nothing is noted in the platform's log (``service.api.delivery_log``).
"""

from __future__ import annotations

import math
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, TooManyRequestsException
from litestar.params import FromPath

from service import metrics
from service.api.params import PlatformSlugPath
from service.api.webhook_docs import (
    ACCEPTED,
    RECEIVE_RESPONSES,
    NativeDeliveryOperation,
    StandardDeliveryOperation,
)
from service.domain import receiving
from service.domain.group_commit import Lease
from service.errors import Unavailable
from service.platforms.registry import adapter
from service.schemas.webhooks import DeliveryAck
from service.settings import Settings

__all__ = ["WebhookController"]


async def _receive(
    request: Request[Any, Any, Any], state: State, *, slug: str, source: str
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
        ack = await receiving.receive(
            lease,
            state.webhook_gate,
            slug=slug,
            adapter=adapter(source),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
    except receiving.OverAllowance as exc:
        raise TooManyRequestsException(
            detail=str(exc), headers={"Retry-After": str(max(1, math.ceil(exc.wait)))}
        ) from None
    finally:
        await lease.release()
    return Response(ack, status_code=200 if ack.duplicate else 202)


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
            "`model.renamed`, `model.downloads`, `incident.reported`, `decommission.executed` "
            "(the `WebhookMessage` schema). Answered 202 only once the records are committed. "
            "A refused delivery writes nothing and does not claim its `webhook-id` (409 means "
            "an accepted delivery holds it with another body, or an `incident.reported` "
            "names an alias another incident holds): "
            "a `model.downloads` batch naming models the platform records no hosting of is "
            "422 with one `errors` entry per offending item (`data.counts[<i>].model`), and "
            "the corrected batch may be sent under the same `webhook-id`."
        ),
        status_code=202,
        response_description=ACCEPTED,
        opt={"exclude_from_auth": True},
        responses=RECEIVE_RESPONSES,
        operation_class=StandardDeliveryOperation,
    )
    async def receive(
        self, platform: FromPath[PlatformSlugPath], request: Request[Any, Any, Any], state: State
    ) -> Response[DeliveryAck]:
        return await _receive(
            request,
            state,
            slug=platform,
            source="standard",
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
        self, platform: FromPath[PlatformSlugPath], request: Request[Any, Any, Any], state: State
    ) -> Response[DeliveryAck]:
        return await _receive(
            request,
            state,
            slug=platform,
            source="huggingface",
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
        self, platform: FromPath[PlatformSlugPath], request: Request[Any, Any, Any], state: State
    ) -> Response[DeliveryAck]:
        return await _receive(
            request,
            state,
            slug=platform,
            source="github",
        )
