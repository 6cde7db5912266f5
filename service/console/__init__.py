"""The web console (``/console``) and the public report form (``/report``).

Server-rendered pages over the same domain functions as the API; see ``web`` for what
every page shares. ``create_app`` mounts ``console_router()`` and ``template_config()``.
"""

from __future__ import annotations

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

from service.console.audits import AuditPageController
from service.console.catalogue import CatalogueController
from service.console.dashboard import DashboardController
from service.console.decisions import DecisionPageController
from service.console.exports import ExportPageController
from service.console.incident import IncidentPageController
from service.console.ledger import LedgerPageController
from service.console.platform_view import PlatformViewController
from service.console.report import ReportPageController
from service.console.signin import SignInController
from service.console.triage import TriageController
from service.console.web import (
    HERE,
    app_http_error,
    console_dependencies,
    console_exception_handlers,
    security_headers,
    template_config,
)

__all__ = ["app_http_error", "console_router", "template_config"]


def console_router() -> Router:
    """Every console and report page, outside the API's bearer-key authentication."""
    return Router(
        path="/",
        route_handlers=[
            SignInController,
            ReportPageController,
            LedgerPageController,
            DashboardController,
            TriageController,
            IncidentPageController,
            CatalogueController,
            PlatformViewController,
            ExportPageController,
            DecisionPageController,
            AuditPageController,
            create_static_files_router(
                path="/console/static",
                directories=[HERE / "static"],
                # A few minutes: a deploy's new stylesheet reaches every browser soon.
                cache_control=CacheControlHeader(max_age=300),
            ),
        ],
        dependencies=console_dependencies,
        exception_handlers=console_exception_handlers,
        after_request=security_headers,
        include_in_schema=False,
        # Pages authenticate with the console session (service.console.web), not a bearer key.
        opt={"exclude_from_auth": True},
    )
