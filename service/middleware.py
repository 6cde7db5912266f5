"""The outer layer of every request (``EdgeMiddleware``): its id, clock skew, metrics and
access-log line; input limits and protective response headers.

It wraps Litestar's own exception handling, so it sees the status actually sent, also for
paths no route matches, and it runs before any other middleware, so every log line the
request causes (authentication included) carries the request id.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import msgspec
from litestar.enums import ScopeType

from service.domain.times import clock_skew
from service.logs import request_id
from service.metrics import HTTP_IN_FLIGHT, observe_request

if TYPE_CHECKING:
    from litestar.types import (
        ASGIApp,
        HTTPScope,
        Message,
        Receive,
        ReceiveMessage,
        Scope,
        Send,
    )

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "MAX_HEADER_BYTES",
    "MAX_HEADER_COUNT",
    "MAX_JSON_DEPTH",
    "REQUEST_ID_HEADER",
    "UNMATCHED",
    "EdgeMiddleware",
    "accept_request_id",
    "content_security_policy",
    "json_too_deep",
]

access_log = logging.getLogger("service.access")

#: Read from the request and set on the response (ASGI header names are lower case).
REQUEST_ID_HEADER = b"x-request-id"
#: An incoming id is kept only if it is short and plain: it ends up in logs and headers.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
#: The ``route`` label of requests no route matched (one series, not one per path).
UNMATCHED = "(unmatched)"


class _IdSource:
    """Fresh request ids: a random per-process prefix and a counter, cheaper than uuid4.

    32 hex digits like a UUID's, unique across processes with the odds of 64 random bits.
    """

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFFFFFF:016x}"


_fresh_id = _IdSource()


def accept_request_id(raw: bytes | None) -> str:
    """The caller's request id if it is sane, else a fresh one."""
    if raw:
        try:
            candidate = raw.decode("ascii")
        except UnicodeDecodeError:
            candidate = ""
        if _SANE_ID.fullmatch(candidate):
            return candidate
    return _fresh_id()


# -- hygiene: input limits in, protective headers out ------------------------------------------

#: More request headers than this, or more bytes in them, answer 431.
MAX_HEADER_COUNT = 64
MAX_HEADER_BYTES = 8 * 1024
#: JSON nested deeper than this answers 400 on every route, before anything decodes it
#: (msgspec itself raises RecursionError near 1,000 levels, which would be a 500).
MAX_JSON_DEPTH = 64

#: A JSON string (brackets inside it do not count), or one bracket. A string left open runs
#: to the end of the body: were it not to match, each later quote would start a scan to the
#: end again, quadratic in the body's length.
_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")

#: On every response.
_ALWAYS = ((b"x-content-type-options", b"nosniff"),)
#: Unless the response says otherwise: nothing the service answers is for shared caches,
#: and many answers carry a key, a secret, a follow-up token or contact details.
_NO_STORE = (b"cache-control", b"no-store")
#: On HTML: no inline or foreign script or style, no framing, no referrer.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def content_security_policy(*, style_hashes: tuple[str, ...] = ()) -> str:
    """The HTML policy, admitting inline stylesheets with these hashes (``sha256-...``)."""
    if not style_hashes:
        return CONTENT_SECURITY_POLICY
    allowed = " ".join(f"'{h}'" for h in style_hashes)
    return CONTENT_SECURITY_POLICY.replace("style-src 'self'", f"style-src 'self' {allowed}")


_HTML = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``body`` nests arrays and objects more than ``limit`` deep.

    Counting the brackets first costs next to nothing, so ordinary bodies skip the scan.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for match in _JSON_TOKEN.finditer(body):
        first = match.group()[0]
        if first in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif first in _CLOSERS:
            depth -= 1
    return False


async def _answer_problem(send: Send, scope: Scope, status: int, title: str, detail: str) -> None:
    """An RFC 9457 answer sent before the app is involved."""
    body = _problem_encoder.encode(
        {
            "type": f"urn:risk-registry:problem:{_SLUGS[status]}",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope["path"],
        }
    )
    start: Any = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    end: Any = {"type": "http.response.body", "body": body}
    await send(start)
    await send(end)


_SLUGS = {400: "bad-request", 431: "request-header-fields-too-large"}
_problem_encoder = msgspec.json.Encoder()


class EdgeMiddleware:
    """The one layer every request goes through before Litestar's own.

    In this order: the request id (in from the caller, or fresh; out on the response, and
    on every log line the request causes); the configured clock skew for the times the
    caller supplies (``service.domain.times``); the input limits (more headers than allowed
    answer 431, JSON nested too deeply 400, before any route runs); then the app. On the
    way out: ``nosniff`` on every response, ``Cache-Control: no-store`` on every response
    that sets no caching of its own, a strict CSP, no framing and no referrer on HTML, and
    the request id; one metric sample and one access-log line per request, with the status
    actually sent (this layer wraps Litestar's exception handling, so it sees the statuses
    of errors and of paths no route matches too).

    A body is read here (up to ``max_body_bytes``; a longer one is passed on for the app to
    refuse with 413) and handed on unchanged. One layer, not one per concern: each layer
    is a coroutine and a ``send`` wrapper more on every request.
    """

    def __init__(self, app: ASGIApp, *, skew: timedelta, max_body_bytes: int) -> None:
        self.app = app
        self.skew = skew
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        skew_token = clock_skew.set(self.skew)
        try:
            if scope["type"] != ScopeType.HTTP:
                await self.app(scope, receive, send)
            else:
                await self._http(scope, receive, send)
        finally:
            clock_skew.reset(skew_token)

    async def _http(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        headers = scope["headers"]
        raw = None
        for name, value in headers:
            if name == REQUEST_ID_HEADER:
                raw = value
                break
        rid = accept_request_id(raw)
        token = request_id.set(rid)
        header = (REQUEST_ID_HEADER, rid.encode("ascii"))
        status = 500
        started = time.perf_counter()

        async def send_out(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out = _protective(list(message.get("headers", ())))
                out.append(header)
                message["headers"] = out
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self._guarded(scope, receive, send_out, headers)
        finally:
            elapsed = time.perf_counter() - started
            HTTP_IN_FLIGHT.dec()
            route = scope.get("path_template") or UNMATCHED
            method = scope["method"]
            observe_request(method, route, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d",
                    method,
                    route,
                    status,
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id.reset(token)

    async def _guarded(self, scope: HTTPScope, receive: Receive, send: Send, headers: Any) -> None:
        """The input limits, then the app."""
        if len(headers) > MAX_HEADER_COUNT or (
            sum(len(n) + len(v) for n, v in headers) > MAX_HEADER_BYTES
        ):
            await _answer_problem(
                send,
                scope,
                431,
                "Request Header Fields Too Large",
                f"at most {MAX_HEADER_COUNT} request headers of {MAX_HEADER_BYTES} bytes "
                "in all are accepted",
            )
            return
        if scope["method"] in _BODY_METHODS and not self._declared_too_large(headers):
            received: list[ReceiveMessage] = []
            size = 0
            while True:
                message = await receive()
                received.append(message)
                if message["type"] != "http.request":
                    break
                size += len(message.get("body", b""))
                if not message.get("more_body", False) or size > self.max_body_bytes:
                    break
            last: Any = received[-1]
            complete = last["type"] == "http.request" and not last.get("more_body", False)
            if complete and size > MAX_JSON_DEPTH:
                body = b"".join(cast("Any", m).get("body", b"") for m in received)
                if json_too_deep(body):
                    await _answer_problem(
                        send,
                        scope,
                        400,
                        "Bad Request",
                        f"the JSON body nests more than {MAX_JSON_DEPTH} levels deep",
                    )
                    return
            receive = _replay(received, receive)
        await self.app(scope, receive, send)

    def _declared_too_large(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """A body its Content-Length says is too large is left for the app to refuse (413)
        without reading it."""
        for name, value in headers:
            if name == b"content-length":
                return value.isdigit() and int(value) > self.max_body_bytes
        return False


def _replay(received: list[ReceiveMessage], receive: Receive) -> Receive:
    """A ``receive`` that hands out what was read already, then reads on."""
    pending = list(reversed(received))

    async def replay() -> ReceiveMessage:
        if pending:
            return pending.pop()
        return await receive()

    return replay


def _protective(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {name.lower() for name, _ in headers}
    extra = [h for h in _ALWAYS if h[0] not in names]
    if _NO_STORE[0] not in names:
        extra.append(_NO_STORE)
    for name, value in headers:
        if name.lower() == b"content-type":
            if value.startswith(b"text/html"):
                extra.extend(h for h in _HTML if h[0] not in names)
            break
    return headers + extra if extra else headers
