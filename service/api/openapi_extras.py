"""Small additions to the generated OpenAPI document, so it says what the code enforces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.plugins import OpenAPISchemaPlugin

if TYPE_CHECKING:
    from litestar import Request
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

__all__ = [
    "CommittedJsonRenderPlugin",
    "NormalisedYamlRenderPlugin",
    "RawObjectSchemaPlugin",
    "StrictStructSchemaPlugin",
    "also_served_as",
    "normalise",
    "render_document",
]

_sorted = msgspec.json.Encoder(order="sorted")


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


def render_document(document: dict[str, Any]) -> bytes:
    """The one form of the document, served and committed: normalised, sorted keys,
    indented, ending in a newline."""
    return msgspec.json.format(_sorted.encode(normalise(document)), indent=2) + b"\n"


class CommittedJsonRenderPlugin(JsonRenderPlugin):
    """Serves ``/schema/openapi.json`` in exactly the committed form (``render_document``),
    so a client downloading it gets the bytes of ``openapi/openapi.json``."""

    def __init__(self) -> None:
        super().__init__()
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        # The app hands over the same schema every time: render it once.
        if self._rendered is None:
            self._rendered = render_document(openapi_schema)
        return self._rendered


class NormalisedYamlRenderPlugin(YamlRenderPlugin):
    """Serves ``/schema/openapi.yaml`` (and ``.yml``) as the same document as the JSON one."""

    def __init__(self) -> None:
        super().__init__()
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            self._rendered = super().render(request, normalise(openapi_schema))
        return self._rendered


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Structs that refuse unknown fields say ``additionalProperties: false``.

    Without it, schema-driven clients and fuzzers take extra fields for valid input and the
    400 that follows for a rejection of valid data.
    """

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


class RawObjectSchemaPlugin(OpenAPISchemaPlugin):
    """A ``msgspec.Raw`` field is JSON passed through as stored; in this service always an
    object (an event's payload), and documented as one."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is msgspec.Raw

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        return Schema(type=OpenAPIType.OBJECT, additional_properties=Schema())


def also_served_as(*media_types: str) -> type[Operation]:
    """An operation whose 200 answer also comes in ``media_types`` (as text)."""

    @dataclass
    class AlternateRenderings(Operation):
        def __post_init__(self) -> None:
            ok = (self.responses or {}).get("200")
            if isinstance(ok, OpenAPIResponse):
                content = dict(ok.content or {})
                for media_type in media_types:
                    content[media_type] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
                ok.content = content

    return AlternateRenderings
