"""Bearer-key authentication and role guards.

Every route is authenticated unless its handler sets ``opt={"exclude_from_auth": True}``
(health checks, the public report channel, signed webhooks, the schema).
"""

from __future__ import annotations

from typing import Any, cast

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from litestar.types import Guard

from service.db.pool import connection as pooled
from service.domain.keys import authenticate
from service.schemas.keys import Principal, Role

__all__ = ["ADMIN", "ANY_ROLE", "READERS", "allow", "auth_middleware", "principal_of"]

ADMIN: tuple[Role, ...] = ("admin",)
READERS: tuple[Role, ...] = ("admin", "auditor", "regulator")
ANY_ROLE: tuple[Role, ...] = ("admin", "platform", "auditor", "regulator")


class BearerKeyMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException("an 'Authorization: Bearer <key>' header is required")
        state = connection.app.state
        async with pooled(state.pool, timeout=state.acquire_timeout) as conn:
            principal = await authenticate(conn, token.strip())
        if principal is None:
            raise NotAuthorizedException("the key is not valid")
        return AuthenticationResult(user=principal, auth=principal.key_id)


def auth_middleware() -> DefineMiddleware:
    return DefineMiddleware(
        BearerKeyMiddleware,
        exclude=["^/schema"],
        exclude_from_auth_key="exclude_from_auth",
    )


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The authenticated caller; 401 where no authentication ran (never a 500)."""
    if connection.scope.get("user") is None:
        raise NotAuthorizedException("an 'Authorization: Bearer <key>' header is required")
    return cast("Principal", connection.user)


def allow(*roles: Role) -> Guard:
    """A guard admitting only principals with one of ``roles``."""
    admitted = frozenset(roles)

    # A coroutine: Litestar would run a plain function in a worker thread, a thread hop
    # (and a wait for the GIL) on every request.
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        # A class-level guard also guards the OPTIONS handler Litestar adds to each path,
        # which the authentication middleware lets through without a key: it only says
        # which methods the path allows, so it answers as on every other path.
        if connection.scope.get("method") == "OPTIONS":
            return
        if principal_of(connection).role not in admitted:
            raise PermissionDeniedException(
                f"this needs one of the roles: {', '.join(sorted(admitted))}"
            )

    return guard
