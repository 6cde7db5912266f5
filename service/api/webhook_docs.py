"""The OpenAPI description of the webhook routes, which read their bodies as raw bytes."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.enums import ParamType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.openapi.spec import Parameter as OpenAPIParameter

from service.api.problems import problem_responses
from service.api.webhook_contract import MESSAGE_SCHEMA, request_body_examples
from service.schemas.webhooks import DeliveryAck

__all__ = [
    "ACCEPTED",
    "RECEIVE_RESPONSES",
    "NativeDeliveryOperation",
    "StandardDeliveryOperation",
]


_RESPONSES = {
    200: ResponseSpec(
        data_container=DeliveryAck,
        description="A redelivery of an accepted delivery (same id, same body): nothing "
        "was written; `events` are the original delivery's.",
    ),
    **problem_responses(400, 401, 404, 409, 413, 415, 422, 429),
}
ACCEPTED = (
    "Accepted: the delivery's records are committed; `events` are the sequence numbers of "
    "the ledger events it produced."
)


def _header(name: str, description: str) -> OpenAPIParameter:
    return OpenAPIParameter(
        name=name,
        param_in=ParamType.HEADER,
        required=True,
        schema=Schema(type=OpenAPIType.STRING),
        description=description,
    )


@dataclass
class StandardDeliveryOperation(Operation):
    """Documents the body and signature headers the handler reads itself, as raw bytes."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description=(
                "One event message; `type` selects the schema of `data` (see "
                f"`{MESSAGE_SCHEMA}`). Unknown fields are refused (400)."
            ),
            content={
                "application/json": OpenAPIMediaType(
                    schema=Reference(ref=f"#/components/schemas/{MESSAGE_SCHEMA}"),
                    examples=request_body_examples(),
                )
            },
        )
        self.parameters = [
            *(self.parameters or []),
            _header("webhook-id", "The delivery's unique id; the same on every retry."),
            _header("webhook-timestamp", "Unix seconds; within 5 minutes of the registry's clock."),
            _header("webhook-signature", "Space-separated `v1,<base64 HMAC-SHA256>` entries."),
        ]


@dataclass
class NativeDeliveryOperation(Operation):
    """A platform's own payload, read as raw bytes and verified before it is decoded."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={"application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))},
        )


#: Every answer of a receiving route but its 202.
RECEIVE_RESPONSES = {**_RESPONSES, **problem_responses(403)}
