"""The application factory: the only place where the service is wired together."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import httpx
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from service import __version__
from service.api.audits import AuditController
from service.api.auth import auth_middleware
from service.api.catalogue import CatalogueController
from service.api.compliance import ComplianceController
from service.api.decommissions import DecommissionController
from service.api.delivery_log import DeliveryLogController
from service.api.deps import dependencies
from service.api.divergences import DivergenceController
from service.api.endpoints import (
    EndpointController,
    NotificationController,
    PlatformEndpointController,
)
from service.api.events import EventController
from service.api.exports import ExportController
from service.api.grants import AuditAccessController, AuditGrantController
from service.api.health import HealthController
from service.api.history import HistoryController
from service.api.hostings import HostingController
from service.api.incidents import IncidentController
from service.api.keys import KeyController
from service.api.metrics import MetricsController
from service.api.models import ModelController
from service.api.openapi_extras import (
    CommittedJsonRenderPlugin,
    NormalisedYamlRenderPlugin,
    RawObjectSchemaPlugin,
    StrictStructSchemaPlugin,
)
from service.api.platforms import PlatformController
from service.api.policies import PolicyController
from service.api.problems import exception_handlers
from service.api.reference import ReferencePage, reference_assets
from service.api.reports import ReportController
from service.api.secrets import WebhookSecretController
from service.api.snapshots import ReportSnapshotController
from service.api.transparency import CheckpointKeyController, TransparencyController
from service.api.webhook_contract import publish_contract
from service.api.webhooks import WebhookController, WebhookIntake
from service.console import app_http_error, console_router, template_config
from service.lifespan import lifespan, process_state
from service.metrics import DEFAULT_PROBES, describe_rate_limits
from service.middleware import EdgeMiddleware
from service.settings import Settings

__all__ = ["create_app"]

BEARER = {"BearerAuth": []}  # type: ignore[var-annotated]

PROTECTED = [
    PlatformController,
    KeyController,
    DivergenceController,
    ModelController,
    HostingController,
    EventController,
    HistoryController,
    ExportController,
    ComplianceController,
    ReportSnapshotController,
    WebhookSecretController,
    DeliveryLogController,
    IncidentController,
    AuditController,
    AuditGrantController,
    AuditAccessController,
    DecommissionController,
    PolicyController,
    PlatformEndpointController,
    EndpointController,
    NotificationController,
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
        # The document in its committed form, and a reference page served from the
        # service's own assets: Litestar's default pages load their scripts from CDNs
        # (see service.api.reference).
        render_plugins=[
            CommittedJsonRenderPlugin(),
            NormalisedYamlRenderPlugin(),
            ReferencePage(),
        ],
    )


def create_app(
    settings: Settings,
    *,
    pool: asyncpg.Pool | None = None,
    http: httpx.AsyncClient | None = None,
) -> Litestar:
    """Build the app. Given a ``pool`` or ``http`` client (tests), the app uses it and leaves
    it open; the lifespan (``service.lifespan``) opens and closes whatever else it holds."""
    app = Litestar(
        route_handlers=[
            HealthController,
            MetricsController,
            # The sealed ledger is public: auditors verify it with the public key alone.
            TransparencyController,
            CheckpointKeyController,
            # The confidential public report channel: no key, rate- and size-limited.
            ReportController,
            # Signed webhooks are authenticated by their signature, not by a key.
            WebhookController,
            CatalogueController,
            # The API reference page's scripts and styles.
            reference_assets(),
            # Everything but the health checks needs a key; the OpenAPI document says so.
            Router(path="/", route_handlers=PROTECTED, security=[BEARER]),
            # The web console and public report form: HTML pages with sessions of their own.
            console_router(),
        ],
        template_config=template_config(),
        dependencies=dependencies,
        middleware=[auth_middleware()],
        # An unknown address under /console or /report answers a browser with a page.
        exception_handlers={**exception_handlers, HTTPException: app_http_error},
        # The pool, the HTTP client, the signer and the background workers.
        lifespan=[lifespan(settings, pool=pool, http=http)],
        state=State(
            {
                "pool": pool,
                "acquire_timeout": settings.pool_acquire_timeout,
                "retry_after_seconds": settings.retry_after_seconds,
                "settings": settings,
                # Scrape-time database probes behind /metrics (see service.metrics).
                "metric_probes": [*DEFAULT_PROBES],
                # Limiters, caches and queues every request of this process shares.
                **process_state(settings),
            }
        ),
        openapi_config=_openapi(),
        # Input structs that refuse unknown fields say so in the document.
        plugins=[StrictStructSchemaPlugin(), RawObjectSchemaPlugin()],
        request_max_body_size=settings.max_body_bytes,
        # Logging is configured once, as JSON, by service.logs; Litestar must not replace it.
        logging_config=None,
    )
    # Per-process limits are shown in /metrics, so an operator sees what each replica allows.
    describe_rate_limits(
        public_limit=settings.public_rate_limit,
        public_window=settings.public_rate_window_seconds,
        webhook_rate=settings.webhook_rate_per_second,
        webhook_burst=settings.webhook_burst,
    )
    # Outside Litestar's exception handling, so it sees every status actually sent; the
    # input limits and protective headers there too: their answers are counted.
    # The delivery routes' own way in, before Litestar's routing (service.api.webhooks).
    app.asgi_handler = EdgeMiddleware(
        WebhookIntake(app.asgi_handler, max_body_bytes=settings.max_body_bytes),
        skew=timedelta(seconds=settings.clock_skew_seconds),
        max_body_bytes=settings.max_body_bytes,
    )
    # The event and notice schemas join the document Litestar builds (built once, here,
    # and served as built).
    publish_contract(app.openapi_schema)
    return app
