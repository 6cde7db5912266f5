"""The published webhook contract: every event a platform sends and every notice the
registry sends, as schemas in the OpenAPI document, so a platform can generate a client.

The schemas come from the very Structs that decode deliveries and build notices
(``msgspec.json.schema_components``), so they say what the code enforces: a discriminated
union on ``type``, ``additionalProperties: false`` where unknown fields are refused, and a
description per field of what it means and what its absence means. Litestar does not
generate them (the receiving routes read raw bytes), so they are added to the document it
builds: inbound messages under ``components.schemas``, notices as OpenAPI 3.1 ``webhooks``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast, get_args

import msgspec
from litestar.enums import ParamType
from litestar.openapi.spec import (
    Components,
    Discriminator,
    Example,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Schema,
)
from litestar.openapi.spec.base import BaseSchemaObject

from service.schemas.notices import DecommissionNotice, DecommissionWithdrawn, EndpointTest
from service.schemas.webhooks import WebhookMessage

__all__ = [
    "EVENT_EXAMPLES",
    "MESSAGE_SCHEMA",
    "NOTICE_EXAMPLES",
    "message_example",
    "publish_contract",
]

_REF = "#/components/schemas/{name}"

#: The request body of ``receiveWebhook``: one of the event messages, by ``type``.
MESSAGE_SCHEMA = "WebhookMessage"
_NOTICE_SCHEMA = "Notice"

_AT = "2026-11-30T09:00:00Z"
_MODEL = "acme/llama-7b"
_RENAMED = "acme-labs/llama-7b-chat"

#: One example per event type, each accepted by the registry in the order given (the
#: hosting is announced first, renamed last).
EVENT_EXAMPLES: dict[str, dict[str, Any]] = {
    "model.hosted": {
        "model": _MODEL,
        "url": f"https://hub.example/{_MODEL}",
        "external_id": "repo-4711",
        "revision": "c1a2b3d",
        "licence": "apache-2.0",
        "downloads": 1200,
        "documentation": {
            "model_card": {"present": True, "url": f"https://hub.example/{_MODEL}/card"}
        },
    },
    "model.updated": {"model": _MODEL, "revision": "d4e5f60", "gated": True},
    "model.downloads": {"counts": [{"model": _MODEL, "downloads": 1350}]},
    "incident.reported": {
        "title": "Model emits working exploit code on request",
        "category": "security_vulnerability",
        "severity": "high",
        "description": "Reproduced with the prompt in the linked evidence.",
        "models": [_MODEL],
    },
    "model.restricted": {"model": _MODEL, "reason": "gated pending review"},
    "decommission.executed": {
        "decision_id": "0193a5c8-7a00-7000-8000-000000000001",
        "model": _MODEL,
        "outcome": "restricted",
        "executed_at": _AT,
    },
    "model.renamed": {
        "model": _MODEL,
        "name": _RENAMED,
        "url": f"https://hub.example/{_RENAMED}",
        "external_id": "repo-4711",
    },
    "model.removed": {"model": _RENAMED, "reason": "removed at the owner's request"},
}

_HOSTING = {
    "hosting_id": "0193a5c8-7a00-7000-8000-0000000000a1",
    "name": _RENAMED,
    "external_id": "repo-4711",
    "url": f"https://hub.example/{_RENAMED}",
    "model": _MODEL,
    "model_id": "0193a5c8-7a00-7000-8000-0000000000b1",
    "inherited": False,
    "late": False,
}

#: One example per notice type.
NOTICE_EXAMPLES: dict[str, dict[str, Any]] = {
    "decommission.notice": {
        "decision_id": "0193a5c8-7a00-7000-8000-000000000001",
        "action": "deprecate",
        "model": _MODEL,
        "model_id": "0193a5c8-7a00-7000-8000-0000000000b1",
        "revisions": [],
        "reason": "Superseded by a version with safety fixes.",
        "policy_clause": None,
        "include_derivatives": False,
        "effective_at": _AT,
        "sunset_at": "2027-01-31T00:00:00Z",
        "successor_model": "acme/llama-7b-v2",
        "successor_model_id": "0193a5c8-7a00-7000-8000-0000000000b2",
        "old_licence": None,
        "new_licence": None,
        "prohibited_uses": [],
        "confirm_by": "2026-12-14T09:00:00Z",
        "hostings": [_HOSTING],
        "approvals": [
            {
                "step": "proposed",
                "principal_id": "0193a5c8-7a00-7000-8000-0000000000c1",
                "principal": "triage lead",
                "at": "2026-11-29T15:00:00Z",
                "seq": 1041,
            },
            {
                "step": "approved",
                "principal_id": "0193a5c8-7a00-7000-8000-0000000000c2",
                "principal": "second reviewer",
                "at": "2026-11-30T08:30:00Z",
                "seq": 1057,
            },
        ],
    },
    "decommission.withdrawn": {
        "decision_id": "0193a5c8-7a00-7000-8000-000000000001",
        "model": _MODEL,
        "model_id": "0193a5c8-7a00-7000-8000-0000000000b1",
        "reason": "The incident was a false report.",
        "hostings": [_HOSTING],
    },
    "endpoint.test": {
        "endpoint_id": "0193a5c8-7a00-7000-8000-0000000000e1",
        "platform": "hubzilla",
        "url": "https://hubzilla.example/registry-notices",
        "note": "A test notice the platform asked for; there is nothing to act on.",
    },
}

_MESSAGE_NAMES = {
    "model.hosted": "ModelHosted",
    "model.updated": "ModelUpdated",
    "model.removed": "ModelRemoved",
    "model.restricted": "ModelRestricted",
    "model.renamed": "ModelRenamed",
    "model.downloads": "ModelDownloads",
    "decommission.executed": "DecommissionExecuted",
    "incident.reported": "IncidentReported",
}
_NOTICE_NAMES = {
    "decommission.notice": "DecommissionNotice",
    "decommission.withdrawn": "DecommissionWithdrawn",
    "endpoint.test": "EndpointTest",
}


def message_example(event_type: str) -> dict[str, Any]:
    """A whole message of ``event_type`` as a platform sends it."""
    return {"type": event_type, "timestamp": _AT, "data": EVENT_EXAMPLES[event_type]}


def _notice_example(event_type: str) -> dict[str, Any]:
    return {
        "type": event_type,
        "timestamp": _AT,
        "id": "0193a5c8-7a00-7000-8000-0000000000d1",
        "data": NOTICE_EXAMPLES[event_type],
    }


@dataclass
class _Verbatim(BaseSchemaObject):
    """JSON written into the document as it is: Litestar drops ``null`` values from plain
    dicts, and an example's nulls say which fields are present but empty."""

    value: Any

    def to_schema(self) -> Any:
        return self.value


_KEYS = {
    "anyOf": "any_of",
    "oneOf": "one_of",
    "allOf": "all_of",
    "additionalProperties": "additional_properties",
    "maxLength": "max_length",
    "minLength": "min_length",
    "maxItems": "max_items",
    "minItems": "min_items",
    "uniqueItems": "unique_items",
    "exclusiveMinimum": "exclusive_minimum",
    "exclusiveMaximum": "exclusive_maximum",
    "multipleOf": "multiple_of",
}
_PLAIN = {
    "title",
    "description",
    "enum",
    "const",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "default",
    "examples",
    "required",
}


def _schema(node: Any) -> Schema | Reference:
    """A JSON Schema object as msgspec writes it, as Litestar's OpenAPI objects."""
    if not isinstance(node, dict):
        raise TypeError(f"not a schema: {node!r}")
    if "$ref" in node:
        return Reference(ref=node["$ref"], description=node.get("description"))
    fields: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            fields["type"] = (
                [OpenAPIType(v) for v in value] if isinstance(value, list) else OpenAPIType(value)
            )
        elif key == "properties":
            fields["properties"] = {k: _schema(v) for k, v in value.items()}
        elif key == "items":
            fields["items"] = _schema(value)
        elif key in ("anyOf", "oneOf", "allOf"):
            fields[_KEYS[key]] = [_schema(v) for v in value]
        elif key == "additionalProperties":
            fields["additional_properties"] = value if isinstance(value, bool) else _schema(value)
        elif key == "discriminator":
            fields["discriminator"] = Discriminator(
                property_name=value["propertyName"], mapping=value.get("mapping")
            )
        elif key in _KEYS:
            fields[_KEYS[key]] = value
        elif key == "examples":
            fields["examples"] = [_Verbatim(v) for v in value]
        elif key in _PLAIN:
            fields[key] = value
        else:
            raise ValueError(f"no OpenAPI field for the schema keyword {key!r}")
    return Schema(**fields)


def _described_refs(components: dict[str, Any], types: list[Any]) -> None:
    """Give a field that refers to another schema its own description: msgspec leaves a
    ``$ref`` bare (JSON Schema ignores its siblings), OpenAPI 3.1 lets it carry one."""
    for info in msgspec.inspect.multi_type_info(types):
        if not isinstance(info, msgspec.inspect.StructType):
            continue
        properties = components.get(info.cls.__name__, {}).get("properties", {})
        for field in info.fields:
            meta = field.type
            if not isinstance(meta, msgspec.inspect.Metadata) or not meta.extra_json_schema:
                continue
            spec = properties.get(field.encode_name)
            if spec is not None and "$ref" in spec and "description" not in spec:
                spec["description"] = meta.extra_json_schema.get("description")


def _components() -> dict[str, Any]:
    (messages, notices), components = msgspec.json.schema_components(
        [WebhookMessage, DecommissionNotice | DecommissionWithdrawn | EndpointTest],
        ref_template=_REF,
    )
    data_types = [
        field.type
        for member in (
            *get_args(WebhookMessage),
            DecommissionNotice,
            DecommissionWithdrawn,
            EndpointTest,
        )
        for field in cast("msgspec.inspect.StructType", msgspec.inspect.type_info(member)).fields
        if field.name == "data"
    ]
    _described_refs(
        components,
        [t.cls for t in data_types if isinstance(t, msgspec.inspect.StructType)],
    )
    components[MESSAGE_SCHEMA] = {
        "title": MESSAGE_SCHEMA,
        "description": "An event a platform sends, by `type`; `data` is the type's own schema.",
        **messages,
    }
    components[_NOTICE_SCHEMA] = {
        "title": _NOTICE_SCHEMA,
        "description": "A notice the registry sends, by `type`.",
        **notices,
    }
    for event_type, name in _MESSAGE_NAMES.items():
        components[name]["examples"] = [message_example(event_type)]
    for event_type, name in _NOTICE_NAMES.items():
        components[name]["examples"] = [_notice_example(event_type)]
    return components


def _header(name: str, description: str) -> Parameter:
    return Parameter(
        name=name,
        param_in=ParamType.HEADER,
        required=True,
        schema=Schema(type=OpenAPIType.STRING),
        description=description,
    )


def _notice_operation(event_type: str) -> PathItem:
    name = _NOTICE_NAMES[event_type]
    return PathItem(
        post=Operation(
            operation_id=name[0].lower() + name[1:],
            summary=f"`{event_type}`: sent by the registry to the platform's endpoints",
            description=(
                "Signed as Standard Webhooks with the endpoint's `whsec_` secret. The "
                "`webhook-id` (also the body's `id`) is the same on every attempt: a "
                "receiver drops an id it has processed."
            ),
            parameters=[
                _header("webhook-id", "The notice's id, the same on every attempt."),
                _header("webhook-timestamp", "Unix seconds when this attempt was signed."),
                _header(
                    "webhook-signature", "`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`."
                ),
            ],
            request_body=RequestBody(
                required=True,
                content={
                    "application/json": OpenAPIMediaType(
                        schema=Reference(ref=_REF.format(name=name))
                    )
                },
            ),
            responses={
                "2XX": OpenAPIResponse(description="Received; not sent again."),
                "410": OpenAPIResponse(
                    description="Gone: the endpoint is disabled until an admin enables it."
                ),
                "default": OpenAPIResponse(
                    description="Anything else, or no answer within 10 s: retried with "
                    "backoff for more than a day, honouring `Retry-After`."
                ),
            },
        )
    )


def request_body_examples() -> dict[str, Example | Reference]:
    """The Standard Webhooks route's request examples, one per event type."""
    return {
        event_type: Example(summary=event_type, value=_Verbatim(message_example(event_type)))
        for event_type in _MESSAGE_NAMES
    }


def publish_contract(openapi: OpenAPI) -> None:
    """Add the event and notice schemas, and the notices as ``webhooks``, to a document
    Litestar built. A schema Litestar generated already (a Struct also used by a route)
    is kept as it is: it is the same Struct."""
    components = openapi.components if isinstance(openapi.components, Components) else None
    if components is None:  # pragma: no cover - Litestar always builds one
        raise TypeError("the OpenAPI document has no components object")
    schemas = dict(components.schemas or {})
    for name, node in _components().items():
        if name not in schemas:
            schema = _schema(node)
            if not isinstance(schema, Schema):  # pragma: no cover - components are objects
                raise TypeError(f"component {name} is a bare reference")
            schemas[name] = schema
    components.schemas = dict(sorted(schemas.items()))
    openapi.webhooks = {event_type: _notice_operation(event_type) for event_type in _NOTICE_NAMES}
