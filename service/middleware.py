"""The outermost layer of every request: its id, its metrics and its access-log line.

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
from typing import TYPE_CHECKING

from litestar.enums import ScopeType

from service.logs import request_id
from service.metrics import HTTP_IN_FLIGHT, observe_request

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["REQUEST_ID_HEADER", "UNMATCHED", "RequestContextMiddleware", "accept_request_id"]

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


class RequestContextMiddleware:
    """Request id in, request id out; one metric sample and one access-log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        raw = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                raw = value
                break
        rid = accept_request_id(raw)
        token = request_id.set(rid)
        header = (REQUEST_ID_HEADER, rid.encode("ascii"))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
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
