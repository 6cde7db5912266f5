"""``/v1/reports``: the confidential public report channel. No key needed.

Limits, both settable (``service.settings``):

* **Rate**: each client address gets ``public_rate_limit`` requests per
  ``public_rate_window_seconds`` on this channel (a token bucket refilling evenly over the
  window, kept in this process's memory: ``service.domain.limits``). Beyond it the answer
  is 429 with ``Retry-After``. Follow-ups count too, which also bounds token guessing. The
  address is the TCP peer, or, when that peer is listed in ``REGISTRY_TRUSTED_PROXIES``, the
  client it forwards for (``X-Forwarded-For``); behind a proxy that is not listed, every
  reporter would share the proxy's allowance.
* **Size**: bodies above ``public_max_body_bytes`` are refused with 413 before they are read
  when ``Content-Length`` says so, and after reading otherwise.

The follow-up token travels in the ``Follow-Up-Token`` header, never in the URL, so it does
not end up in access logs.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import HTTPException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import HeaderParameter, JSONBody, PathParameter

from service import metrics
from service.api.deps import Db
from service.api.problems import problem_responses
from service.domain import reports as domain
from service.domain.limits import TokenBucket
from service.schemas.reports import (
    ReportIn,
    ReportNote,
    ReportReceipt,
    ReportStatus,
    ReportUpdateIn,
)
from service.settings import Settings

__all__ = ["ReportController", "check_size", "public_limits"]

Ref = Annotated[str, PathParameter(max_length=40, description="The report reference, `RR-...`.")]
Token = Annotated[
    str,
    HeaderParameter(
        name="Follow-Up-Token",
        max_length=100,
        description="The follow-up token returned when the report was made.",
    ),
]


def _settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def _too_large(limit: int) -> HTTPException:
    return HTTPException(status_code=413, detail=f"a report may be at most {limit} bytes")


def public_limits(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Rate and size limits, checked before the body is read."""
    if connection.scope.get("method") == "OPTIONS":
        return  # it reads and writes nothing: it costs a reporter none of their allowance
    state = connection.app.state
    address = connection.client.host if connection.client else "unknown"
    limiter: TokenBucket = state.public_limiter
    wait = limiter.spend(address)
    if wait > 0:
        metrics.record_rate_limited("public_reports")
        raise TooManyRequestsException(
            "too many reports from this address; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    limit = _settings(state).public_max_body_bytes
    length = connection.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(limit)


async def check_size(request: Request[Any, Any, Any], state: State) -> None:
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
        await check_size(request, state)
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
        await check_size(request, state)
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
