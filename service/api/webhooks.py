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
import re
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Controller, Litestar, Request, Response, post
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import (
    HTTPException,
    InternalServerException,
    TooManyRequestsException,
)
from litestar.middleware._internal.exceptions.middleware import get_exception_handler
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
from service.schemas.common import PLATFORM_SLUG_PATTERN
from service.schemas.webhooks import DeliveryAck
from service.settings import Settings

if TYPE_CHECKING:
    from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

__all__ = ["WebhookController", "WebhookIntake"]


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
    ack = await _deliver(
        state,
        slug=slug,
        source=source,
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
    )
    return Response(ack, status_code=200 if ack.duplicate else 202)


async def _deliver(
    state: State, *, slug: str, source: str, headers: dict[str, str], body: bytes
) -> DeliveryAck:
    """One delivery, its HTTP refusals (413, 415) made: the same for both ways in."""
    lease = Lease(state.pool, state.acquire_timeout)
    try:
        await lease.get()
    except Unavailable:
        metrics.record_delivery("rejected", "unavailable")
        raise
    try:
        return await receiving.receive(
            lease,
            state.webhook_gate,
            slug=slug,
            adapter=adapter(source),
            headers=headers,
            body=body,
        )
    except receiving.OverAllowance as exc:
        raise TooManyRequestsException(
            detail=str(exc), headers={"Retry-After": str(max(1, math.ceil(exc.wait)))}
        ) from None
    finally:
        await lease.release()


#: The routes below by their last path segment after the slug, with their path template
#: (the ``route`` label of their metrics) and the adapter they use.
_ROUTES = {
    "": ("/v1/webhooks/{platform}", "standard"),
    "huggingface": ("/v1/webhooks/{platform}/huggingface", "huggingface"),
    "github": ("/v1/webhooks/{platform}/github", "github"),
}
_PREFIX = "/v1/webhooks/"
_SLUG = re.compile(PLATFORM_SLUG_PATTERN)
_encode = msgspec.json.Encoder().encode


class WebhookIntake:
    """The delivery routes below as a plain ASGI layer, in front of Litestar's routing.

    A delivery is the service's hottest request, and Litestar's way to a handler (routing,
    a ``Request``, parameter parsing, a ``Response`` and its rendering) cost more CPU than
    the intake itself. This layer takes a POST to one of ``WebhookController``'s routes
    whose slug is valid and whose body is announced, within the size limit and JSON, runs
    the same ``_deliver`` and sends the same answer Litestar would: the acknowledgement as
    ``application/json``, or an error through the app's own exception handlers. Everything
    else, the 413 and 415 refusals included, goes to Litestar, where ``WebhookController``
    answers and documents the routes. It sits inside ``EdgeMiddleware``, so request ids,
    clock skew, input limits, headers, metrics and the access log apply as to any route.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope) if scope["type"] == ScopeType.HTTP else None
        if route is None:
            await self.app(scope, receive, send)
            return
        slug, template, source = route
        scope["path_template"] = template
        litestar: Litestar = scope["litestar_app"]
        try:
            body = await _read(receive)
            headers = {
                name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
            }
            ack = await _deliver(
                litestar.state, slug=slug, source=source, headers=headers, body=body
            )
        except Exception as exc:  # answered as the routes' own handlers answer it
            handler = get_exception_handler(litestar.exception_handlers, exc)
            if handler is None:  # pragma: no cover - the app maps Exception itself
                raise
            request: Request[Any, Any, Any] = Request(scope, receive)
            response = handler(request, exc)
            await response.to_asgi_response(app=None, request=request)(scope, receive, send)
            return
        content = _encode(ack)
        start: Any = {
            "type": "http.response.start",
            "status": 200 if ack.duplicate else 202,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
            ],
        }
        end: Any = {"type": "http.response.body", "body": content}
        await send(start)
        await send(end)

    def _route(self, scope: HTTPScope) -> tuple[str, str, str] | None:
        """The slug, path template and adapter of a delivery this layer takes, else None."""
        path: str = scope["path"]
        if scope["method"] != "POST" or not path.startswith(_PREFIX):
            return None
        slug, _, rest = path[len(_PREFIX) :].partition("/")
        found = _ROUTES.get(rest)
        if found is None or not _SLUG.search(slug):
            return None
        media = length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                media = value
        if (
            length is None
            or not length.isdigit()
            or int(length) > self.max_body_bytes
            or media is None
            or media.partition(b";")[0].strip().lower() != b"application/json"
        ):
            return None
        return slug, *found


async def _read(receive: Receive) -> bytes:
    """The whole body, or Litestar's own error for a client gone before sending it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise InternalServerException("client disconnected prematurely")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


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
