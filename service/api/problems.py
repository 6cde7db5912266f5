"""The one mapping from exceptions to RFC 9457 ``application/problem+json`` responses."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from service.errors import RegistryError, Unavailable
from service.schemas.common import FieldError, Problem

__all__ = ["PROBLEM_MEDIA_TYPE", "exception_handlers", "problem_responses"]

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:risk-registry:problem:"

_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "rate-limited",
    431: "request-header-fields-too-large",
    500: "internal-error",
    503: "unavailable",
}

#: What each status means for the caller, as written into the OpenAPI document.
_DESCRIPTIONS = {
    400: "The request is malformed: unknown fields, wrong types, a bad cursor or parameter.",
    401: "No valid credentials: a missing, unknown or revoked key, or a bad signature.",
    403: "The caller's role may not do this.",
    404: "No such record, or none the caller may see.",
    409: "The request conflicts with the record's current state.",
    413: "The body is larger than the service accepts.",
    415: "The body is not of a media type this endpoint accepts.",
    422: "Well-formed input that breaks a rule of the registry.",
    429: "Too many requests; retry after the number of seconds in Retry-After.",
    431: "More than 64 request headers, or more than 8 KiB of them.",
    503: "The database cannot answer now; retry after the number of seconds in Retry-After.",
}

_encoder = msgspec.json.Encoder()


def problem_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI response declarations for the problem statuses an endpoint can return."""
    return {
        code: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS.get(code, HTTPStatus(code).phrase),
            media_type=PROBLEM_MEDIA_TYPE,
            # Generated examples are random: the committed document must be reproducible.
            generate_examples=False,
        )
        # Any request may meet the header limits (service.middleware) or an outage.
        for code in sorted({*codes, 431, 503})
    }


def problem(
    request: Request[Any, Any, Any],
    status: int,
    *,
    detail: str | None = None,
    title: str | None = None,
    slug: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    body = Problem(
        type=TYPE_PREFIX + (slug or _SLUGS.get(status, "error")),
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors or None,
    )
    return Response(
        _encoder.encode(body),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _unavailable_headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    seconds = getattr(request.app.state, "retry_after_seconds", 2)
    return {"Retry-After": str(seconds)}


def _registry_error(request: Request[Any, Any, Any], exc: RegistryError) -> Response[bytes]:
    errors = None
    if "key" in exc.extra:
        errors = [FieldError(message=exc.detail, key=str(exc.extra["key"]), source="body")]
    listed = exc.extra.get("errors")
    if isinstance(listed, list):
        # One entry per offending part of the body, each ``(key, message)``.
        errors = [FieldError(message=str(m), key=str(k), source="body") for k, m in listed]
    headers = _unavailable_headers(request) if isinstance(exc, Unavailable) else None
    if "retry_after" in exc.extra:
        # A request the registry will take later (one already under way for the same work).
        headers = {"Retry-After": str(exc.extra["retry_after"])}
    return problem(
        request,
        exc.status,
        detail=exc.detail,
        title=exc.title,
        slug=exc.slug,
        errors=errors,
        headers=headers,
    )


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    if status >= 500:
        return _unexpected(request, exc)
    errors = None
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        errors = [
            FieldError(
                message=str(item.get("message", "")),
                key=None if item.get("key") is None else str(item.get("key")),
                source=None if item.get("source") is None else str(item.get("source")),
            )
            for item in exc.extra
            if isinstance(item, dict)
        ]
    headers = dict(exc.headers or {})
    if isinstance(exc, NotAuthorizedException):
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem(request, status, detail=exc.detail, errors=errors, headers=headers or None)


# Failures of the database connection: the caller should retry, and nothing was written.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.QueryCanceledError,
)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if isinstance(exc, _UNAVAILABLE):
        # A statement past its deadline closes its connection (AbandoningConnection), and the
        # ROLLBACK then fails with InterfaceError: name the timeout it followed too.
        before = exc.__cause__ or exc.__context__
        after = "" if before is None else f" (after {type(before).__name__})"
        log.warning("database unavailable: %s%s", type(exc).__name__, after)
        return problem(
            request,
            503,
            detail="the database is not answering; retry shortly",
            headers=_unavailable_headers(request),
        )
    if isinstance(exc, asyncpg.UniqueViolationError | asyncpg.ForeignKeyViolationError):
        return problem(request, 409, detail="the change conflicts with an existing record")
    if isinstance(exc, asyncpg.CharacterNotInRepertoireError):
        # A NUL character in any text input: PostgreSQL cannot store it; malformed input.
        return problem(request, 400, detail="a value holds a character that cannot be stored")
    if isinstance(exc, asyncpg.CheckViolationError | asyncpg.DataError):
        return problem(request, 422, detail="a value is outside what the registry accepts")
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    # Never the exception's text: it may carry internals.
    return problem(request, 500, detail="an internal error occurred; it has been logged")


exception_handlers: ExceptionHandlersMap = {
    RegistryError: _registry_error,
    HTTPException: _http_exception,
    Exception: _unexpected,
}
