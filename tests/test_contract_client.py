"""The published contract is enough to integrate: a client generated from the OpenAPI
document by an off-the-shelf generator (``openapi-python-client``) sends every event type,
signed, to the real service, and reads the notices it receives with the generated types."""

from __future__ import annotations

import functools
import importlib
import subprocess
import sys
import typing
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar
from standardwebhooks import Webhook

from service.openapi import openapi_document, render_openapi
from service.schemas.notices import DecommissionNotice, DecommissionWithdrawn, EndpointTest
from service.schemas.webhooks import decode_message
from tests.conftest import PlatformFixture
from tests.helpers.notices import (
    Receiver,
    add_endpoint,
    admin_headers,
    drain,
)
from tests.helpers.webhooks import new_secret

_PACKAGE = "rr_generated_client"
#: The message types a platform sends, each with its generated model's name.
_MESSAGES = {
    "model.hosted": "ModelHosted",
    "model.updated": "ModelUpdated",
    "model.downloads": "ModelDownloads",
    "incident.reported": "IncidentReported",
    "model.restricted": "ModelRestricted",
    "decommission.executed": "DecommissionExecuted",
    "model.renamed": "ModelRenamed",
    "model.removed": "ModelRemoved",
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package generated from the document the service publishes."""
    root = tmp_path_factory.mktemp("generated")
    document = root / "openapi.json"
    document.write_bytes(render_openapi())
    generator = Path(sys.executable).parent / "openapi-python-client"
    done = subprocess.run(  # noqa: S603 - a fixed command on a file this test wrote
        [
            str(generator),
            "generate",
            "--path",
            str(document),
            "--output-path",
            str(root / _PACKAGE),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (root / _PACKAGE / "api" / "webhooks" / "receive_webhook.py").exists(), (
        done.stdout + done.stderr
    )
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(_PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == _PACKAGE or m.startswith(_PACKAGE + ".")]:
            del sys.modules[name]


@functools.cache
def _document() -> dict[str, Any]:
    """The published document, built once for the module."""
    return openapi_document()


def _published_example(component: str) -> dict[str, Any]:
    """The example the published document gives for a message or notice type."""
    schema = _document()["components"]["schemas"][component]
    example: dict[str, Any] = schema["examples"][0]
    return example


def test_every_published_example_is_a_valid_message() -> None:
    document = _document()
    union = document["components"]["schemas"]["WebhookMessage"]
    assert set(union["discriminator"]["mapping"]) == set(_MESSAGES)
    body = document["paths"]["/v1/webhooks/{platform}"]["post"]["requestBody"]
    assert set(body["content"]["application/json"]["examples"]) == set(_MESSAGES)
    for event_type, name in _MESSAGES.items():
        example = _published_example(name)
        assert example["type"] == event_type
        decode_message(msgspec.json.encode(example))
        data = document["components"]["schemas"][f"{name}"]["properties"]["data"]
        target = document["components"]["schemas"][data["$ref"].rsplit("/", 1)[1]]
        # Unknown fields are refused, and the document says so; every field says what it
        # means (and what its absence means).
        assert target["additionalProperties"] is False, name
        for field, spec in target["properties"].items():
            assert spec.get("description"), (name, field)
    assert set(document["webhooks"]) == {
        "decommission.notice",
        "decommission.withdrawn",
        "endpoint.test",
    }
    for name in (
        "DecommissionNoticeData",
        "DecommissionWithdrawnData",
        "EndpointTestData",
        "NoticeHosting",
        "Approval",
    ):
        for field, spec in document["components"]["schemas"][name]["properties"].items():
            assert spec.get("description"), (name, field)
    for event_type, operation in document["webhooks"].items():
        body = operation["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["$ref"].endswith(_published_example_name(event_type))
    notice = msgspec.json.encode(_published_example("DecommissionNotice"))
    msgspec.json.decode(notice, type=DecommissionNotice)
    withdrawn = msgspec.json.encode(_published_example("DecommissionWithdrawn"))
    msgspec.json.decode(withdrawn, type=DecommissionWithdrawn)
    test_notice = msgspec.json.encode(_published_example("EndpointTest"))
    msgspec.json.decode(test_notice, type=EndpointTest)


def _published_example_name(event_type: str) -> str:
    return {
        "decommission.notice": "DecommissionNotice",
        "decommission.withdrawn": "DecommissionWithdrawn",
        "endpoint.test": "EndpointTest",
    }[event_type]


def _signing_hook(secret: str) -> Any:
    """What a platform adds to a generated client: sign the body exactly as sent."""
    signer = Webhook(secret)

    async def sign(request: httpx.Request) -> None:
        when = datetime.now(UTC)
        msg_id = request.headers["webhook-id"]
        request.headers["webhook-timestamp"] = str(int(when.timestamp()))
        request.headers["webhook-signature"] = signer.sign(
            msg_id=msg_id, timestamp=when, data=request.content.decode()
        )

    return sign


def _localise(example: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The published example with this test's own model names and decision id."""
    text = msgspec.json.encode(example).decode()
    for old, new in sorted(names.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    localised: dict[str, Any] = msgspec.json.decode(text)
    return localised


async def test_a_generated_client_sends_every_event_type(
    generated: ModuleType,
    app: Litestar,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    models = importlib.import_module(f"{_PACKAGE}.models")
    receive = importlib.import_module(f"{_PACKAGE}.api.webhooks.receive_webhook")
    # The generated operation takes exactly the published event types as its body.
    accepted = typing.get_args(typing.get_type_hints(receive.asyncio_detailed)["body"])
    assert {t.__name__ for t in accepted} == set(_MESSAGES.values())
    secret = await new_secret(client, admin, platform.slug)
    await add_endpoint(client, admin, receiver, platform)
    api = generated.Client(base_url="http://registry.test")
    api.set_async_httpx_client(
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=cast("Any", app)),
            base_url="http://registry.test",
            event_hooks={"request": [_signing_hook(secret)]},
        )
    )
    model, renamed = f"acme-{uniq}/llama-7b", f"acme-labs-{uniq}/llama-7b-chat"
    names = {"acme/llama-7b": model, "acme-labs/llama-7b-chat": renamed}
    second = await admin_headers(pool)

    async with api:
        for event_type, name in _MESSAGES.items():
            if event_type == "decommission.executed":
                # The platform confirms a restriction it was notified of.
                r = await client.post(
                    "/v1/decommissions",
                    json={"model": model, "action": "restrict", "reason": "unsafe"},
                    headers=admin,
                )
                assert r.status_code == 201, r.text
                decision_id = r.json()["id"]
                for step, by in (("approve", second), ("notify", second)):
                    r = await client.post(f"/v1/decommissions/{decision_id}/{step}", headers=by)
                    assert r.status_code == 200, r.text
                example = _published_example(name)
                names[example["data"]["decision_id"]] = decision_id
                # The example's time is fixed; a confirmation may not predate its decision.
                names[example["data"]["executed_at"]] = datetime.now(UTC).isoformat()
            body = getattr(models, name).from_dict(_localise(_published_example(name), names))
            response = await receive.asyncio_detailed(
                platform.slug,
                client=api,
                body=body,
                webhook_id=f"msg_{event_type}_{uniq}",
                webhook_timestamp="unsigned",
                webhook_signature="unsigned",
            )
            assert response.status_code == 202, (event_type, response.content)
            ack = response.parsed
            assert isinstance(ack, models.DeliveryAck), (event_type, ack)
            assert ack.events, event_type

    hosting = await conn.fetchrow(
        "SELECT h.name, h.status, h.downloads, h.revision, m.name AS model FROM hostings h "
        "JOIN models m ON m.id = h.model_id WHERE h.platform_id = $1",
        platform.id,
    )
    assert hosting is not None
    assert dict(hosting) == {
        "name": renamed,
        "status": "removed",
        "downloads": 1350,
        "revision": "d4e5f60",
        "model": model,
    }
    r = await client.get(f"/v1/decommissions/{decision_id}", headers=admin)
    assert r.json()["status"] == "executed"
    incidents = await conn.fetchval(
        "SELECT count(*) FROM incidents WHERE reporter_platform_id = $1", platform.id
    )
    assert incidents == 1

    # The notice the platform received reads with the generated types.
    await drain(pool, http, lambda: len(receiver.delivered()) == 1)
    [hit] = receiver.delivered()
    assert hit.payload is not None
    notice = models.DecommissionNotice.from_dict(hit.payload)
    assert str(notice.data.decision_id) == decision_id
    assert [h.name for h in notice.data.hostings] == [model]
    assert [a.step.value for a in notice.data.approvals] == ["proposed", "approved"]
