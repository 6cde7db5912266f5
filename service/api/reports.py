"""``/v1/reports``: the confidential public report channel. No key needed.

Limits, both settable (``service.settings``):

* **Rate**: each client address gets ``public_rate_limit`` requests per
  ``public_rate_window_seconds`` on this channel (a token bucket refilling evenly over the
  window, kept in this process's memory). Beyond it the answer is 429 with ``Retry-After``.
  Follow-ups count too, which also bounds token guessing. The address is the TCP peer, or,
  when that peer is listed in ``REGISTRY_TRUSTED_PROXIES``, the client it forwards for
  (``X-Forwarded-For``); behind a proxy that is not listed, every reporter would share the
  proxy's allowance.
* **Size**: bodies above ``public_max_body_bytes`` are refused with 413 before they are read
  when ``Content-Length`` says so, and after reading otherwise.

The follow-up token travels in the ``Follow-Up-Token`` header, never in the URL, so it does
not end up in access logs.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import HTTPException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import HeaderParameter, JSONBody, PathParameter

from service.api.deps import Db
from service.api.problems import problem_responses
from service.domain import reports as domain
from service.schemas.reports import (
    ReportIn,
    ReportNote,
    ReportReceipt,
    ReportStatus,
    ReportUpdateIn,
)
from service.settings import Settings

__all__ = ["RateLimiter", "ReportController"]

Ref = Annotated[str, PathParameter(max_length=40, description="The report reference, `RR-...`.")]
Token = Annotated[
    str,
    HeaderParameter(
        name="Follow-Up-Token",
        max_length=100,
        description="The follow-up token returned when the report was made.",
    ),
]


class RateLimiter:
    """Token buckets per key: ``limit`` requests, refilled evenly over ``window`` seconds.

    At most ``max_keys`` buckets are kept; the least recently seen is dropped first (a
    dropped key starts again with a full bucket, which errs towards letting reports in).
    """

    def __init__(self, *, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.capacity = float(limit)
        self.rate = limit / window
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one request; 0 if allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


def _settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def _limiter(state: State) -> RateLimiter:
    limiter = state.get("public_rate_limiter")
    if limiter is None:
        settings = _settings(state)
        limiter = RateLimiter(
            limit=settings.public_rate_limit, window=settings.public_rate_window_seconds
        )
        state["public_rate_limiter"] = limiter
    return limiter


def _too_large(limit: int) -> HTTPException:
    return HTTPException(status_code=413, detail=f"a report may be at most {limit} bytes")


def public_limits(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Rate and size limits, checked before the body is read."""
    state = connection.app.state
    address = connection.client.host if connection.client else "unknown"
    wait = _limiter(state).take(address)
    if wait > 0:
        raise TooManyRequestsException(
            "too many reports from this address; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    limit = _settings(state).public_max_body_bytes
    length = connection.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(limit)


async def _check_size(request: Request[Any, Any, Any], state: State) -> None:
    limit = _settings(state).public_max_body_bytes
    if len(await request.body()) > limit:
        raise _too_large(limit)


class ReportController(Controller):
    path = "/v1/reports"
    tags = ["reports"]
    guards = [public_limits]
    opt = {"exclude_from_auth": True}

    @post(
        operation_id="submitReport",
        summary="Report an incident confidentially; no key needed, anonymity allowed",
        security=[],
        responses=problem_responses(400, 413, 415, 422, 429),
    )
    async def submit(
        self, data: JSONBody[ReportIn], db: Db, request: Request[Any, Any, Any], state: State
    ) -> ReportReceipt:
        await _check_size(request, state)
        return await domain.submit_report(db, data=data)

    @get(
        "/{ref:str}",
        operation_id="followUpReport",
        summary="A reporter reads their report's status (needs the follow-up token)",
        security=[],
        responses=problem_responses(400, 404, 429),
    )
    async def read(self, ref: Ref, follow_up_token: Token, db: Db) -> ReportStatus:
        incident = await domain.open_report(db, ref=ref, token=follow_up_token)
        return await domain.report_status(db, incident=incident)

    @post(
        "/{ref:str}/updates",
        operation_id="addReportUpdate",
        summary="A reporter adds information to their report (needs the follow-up token)",
        security=[],
        responses=problem_responses(400, 404, 413, 415, 422, 429),
    )
    async def update(
        self,
        ref: Ref,
        follow_up_token: Token,
        data: JSONBody[ReportUpdateIn],
        db: Db,
        request: Request[Any, Any, Any],
        state: State,
    ) -> ReportNote:
        await _check_size(request, state)
        incident = await domain.open_report(db, ref=ref, token=follow_up_token)
        note = await domain.add_reporter_update(
            db, incident=incident, body=data.body, evidence_urls=list(data.evidence_urls)
        )
        return ReportNote(
            author=note.author,
            body=note.body,
            evidence_urls=note.evidence_urls,
            created_at=note.created_at,
        )
