"""The application factory: the only place where the service is wired together."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

import asyncpg
import httpx
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from service import __version__
from service.api.auth import auth_middleware
from service.api.deps import dependencies
from service.api.events import EventController
from service.api.health import HealthController
from service.api.hostings import HostingController
from service.api.keys import KeyController
from service.api.models import ModelController
from service.api.platforms import PlatformController
from service.api.problems import exception_handlers
from service.db.pool import create_pool
from service.settings import Settings

__all__ = ["create_app"]

BEARER = {"BearerAuth": []}  # type: ignore[var-annotated]

PROTECTED = [
    PlatformController,
    KeyController,
    ModelController,
    HostingController,
    EventController,
]


def _openapi() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="AI lifecycle risk registry",
        version=__version__,
        description=(
            "Which open AI models are hosted where, what went wrong with them, and what was "
            "done about it. Every error is an RFC 9457 problem details object."
        ),
        path="/schema",
        components=Components(
            security_schemes={
                "BearerAuth": SecurityScheme(
                    type="http", scheme="bearer", description="An API key: `rr_<lookup>_<secret>`."
                )
            }
        ),
        use_handler_docstrings=False,
    )


def create_app(
    settings: Settings,
    *,
    pool: asyncpg.Pool | None = None,
    http: httpx.AsyncClient | None = None,
) -> Litestar:
    """Build the app. Given a ``pool`` (tests), the app uses it and leaves it open."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        own_pool = pool is None
        if own_pool:
            if settings.database_url is None:
                raise RuntimeError("the database URL must be resolved before the app starts")
            app.state.pool = await create_pool(settings, settings.database_url)
        own_http = http is None
        app.state.http = http or httpx.AsyncClient(timeout=10.0)
        try:
            yield
        finally:
            if own_http:
                await app.state.http.aclose()
            if own_pool:
                await app.state.pool.close()

    return Litestar(
        route_handlers=[
            HealthController,
            # Everything but the health checks needs a key; the OpenAPI document says so.
            Router(path="/", route_handlers=PROTECTED, security=[BEARER]),
        ],
        dependencies=dependencies,
        middleware=[auth_middleware()],
        exception_handlers=exception_handlers,
        lifespan=[lifespan],
        state=State(
            {
                "pool": pool,
                "acquire_timeout": settings.pool_acquire_timeout,
                "retry_after_seconds": settings.retry_after_seconds,
                "settings": settings,
            }
        ),
        openapi_config=_openapi(),
        request_max_body_size=settings.max_body_bytes,
    )
