"""The OpenAPI document, rendered from the app itself so it cannot drift from the code."""

from __future__ import annotations

from typing import Any

import msgspec

from service.app import create_app
from service.settings import Settings

__all__ = ["normalise", "openapi_document", "render_openapi"]

_encoder = msgspec.json.Encoder(order="sorted")


def normalise(document: dict[str, Any]) -> dict[str, Any]:
    """Drop what the generator adds unreliably, as plain JSON data.

    A struct used as a field default leaks that default onto its shared component schema,
    and only for the first app built in a process; a component-level default means nothing
    to a client, so it is removed.
    """
    plain: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(document))
    for schema in plain.get("components", {}).get("schemas", {}).values():
        schema.pop("default", None)
    return plain


def openapi_document() -> dict[str, Any]:
    """The document as the running service serves it at ``/schema/openapi.json``."""
    app = create_app(Settings(database_url="postgresql://unused/unused"))
    return normalise(app.openapi_schema.to_schema())


def render_openapi() -> bytes:
    """The committed form: sorted keys, indented, ending in a newline."""
    return msgspec.json.format(_encoder.encode(openapi_document()), indent=2) + b"\n"
