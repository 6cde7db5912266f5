"""Small additions to the generated OpenAPI document, so it says what the code enforces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.plugins import OpenAPISchemaPlugin

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

__all__ = ["RawObjectSchemaPlugin", "StrictStructSchemaPlugin", "also_served_as"]


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
