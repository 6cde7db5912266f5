"""The OpenAPI document, rendered from the app itself so it cannot drift from the code."""

from __future__ import annotations

from typing import Any

from service.api.openapi_extras import normalise, render_document
from service.app import create_app
from service.settings import Settings

__all__ = ["normalise", "openapi_document", "render_openapi"]


def _app_schema() -> dict[str, Any]:
    app = create_app(Settings(database_url="postgresql://unused/unused"))
    return app.openapi_schema.to_schema()


def openapi_document() -> dict[str, Any]:
    """The document as the running service serves it at ``/schema/openapi.json``."""
    return normalise(_app_schema())


def render_openapi() -> bytes:
    """The committed form, byte for byte what the service serves."""
    return render_document(_app_schema())
