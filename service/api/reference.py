"""The API reference page (``/schema``): Swagger UI from the service's own copy.

Litestar's render plugins load their JavaScript and CSS from public CDNs (jsDelivr, unpkg)
and start it with an inline script, which a strict Content-Security-Policy forbids. This
page loads Swagger UI from ``/static/swagger-ui/`` instead: the ``swagger-ui-dist`` npm
package's bundle and stylesheet, vendored in ``assets/swagger-ui`` with their licence, and
a starter script of our own. The document itself stays at ``/schema/openapi.json``.

To update the copy: ``npm pack swagger-ui-dist@<version>``, then replace
``swagger-ui-bundle.js``, ``swagger-ui.css``, ``LICENSE``, ``NOTICE`` and
``swagger-ui-bundle.js.LICENSE.txt`` and set ``SWAGGER_UI_VERSION``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

__all__ = ["ASSETS", "ASSETS_PATH", "SWAGGER_UI_VERSION", "ReferencePage", "reference_assets"]

SWAGGER_UI_VERSION = "5.35.0"
ASSETS = Path(__file__).parent / "assets"
ASSETS_PATH = "/static"


class ReferencePage(OpenAPIRenderPlugin):
    """Swagger UI at ``/schema`` (and ``/schema/swagger``), with no script of a third party
    and none inline."""

    def __init__(self) -> None:
        super().__init__(path=["/", "/swagger"])

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        spec = html.escape(self.get_openapi_json_route(request), quote=True)
        title = html.escape(str(openapi_schema.get("info", {}).get("title", "API")))
        base = f"{ASSETS_PATH}/swagger-ui"
        return (
            "<!doctype html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
            '<meta name=viewport content="width=device-width, initial-scale=1">\n'
            f"<title>{title}: API reference</title>\n"
            f'<link rel=stylesheet href="{base}/swagger-ui.css">\n'
            f'<script defer src="{base}/swagger-ui-bundle.js"></script>\n'
            f'<script defer src="{base}/start.js"></script>\n'
            "</head>\n<body>\n"
            f'<div id=swagger-ui data-spec-url="{spec}">'
            "<noscript><p>The API reference needs JavaScript; the document itself is at "
            f'<a href="{spec}">{spec}</a>.</p></noscript></div>\n'
            "</body>\n</html>\n"
        ).encode()


def reference_assets() -> Router:
    """``/static/...``: the vendored assets, public and cacheable (they hold no secret)."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[ASSETS],
        name="assets",
        opt={"exclude_from_auth": True},
        cache_control=CacheControlHeader(max_age=86400, public=True),
        include_in_schema=False,
    )
