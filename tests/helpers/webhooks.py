"""Signing and delivering webhooks as a platform does: secrets, events, signed headers."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx
import msgspec
from standardwebhooks import Webhook

from service.metrics import REGISTRY

_json = msgspec.json.Encoder()


async def new_secret(client: httpx.AsyncClient, admin: dict[str, str], slug: str) -> str:
    r = await client.post(f"/v1/platforms/{slug}/webhook-secrets", headers=admin)
    assert r.status_code == 201, r.text
    secret: str = r.json()["secret"]
    assert secret.startswith("whsec_")
    return secret


def event(kind: str, data: dict[str, Any], *, at: datetime | None = None) -> bytes:
    stamp = (at or datetime.now(UTC)).isoformat()
    return _json.encode({"type": kind, "timestamp": stamp, "data": data})


def signed(
    secret: str, body: bytes, *, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """Headers exactly as a platform using the standardwebhooks library sends them."""
    msg_id = msg_id or f"msg_{uuid4().hex}"
    when = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def sign_for(path: str, secret: str, body: bytes) -> dict[str, str]:
    """The headers each webhook door checks, made with the platform's real secret."""
    if path == "/v1/webhooks/{platform}":
        headers = signed(secret, body)
        del headers["content-type"]
        return headers
    if path == "/v1/webhooks/{platform}/huggingface":
        return {"X-Webhook-Secret": secret}
    if path == "/v1/webhooks/{platform}/github":
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {
            "X-Hub-Signature-256": f"sha256={digest}",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-GitHub-Event": "repository",
        }
    return {}


async def deliver(
    client: httpx.AsyncClient,
    slug: str,
    secret: str,
    body: bytes,
    *,
    msg_id: str | None = None,
    at: datetime | None = None,
) -> httpx.Response:
    headers = signed(secret, body, msg_id=msg_id, at=at)
    return await client.post(f"/v1/webhooks/{slug}", content=body, headers=headers)


def hosted(model: str, **extra: Any) -> bytes:
    return event("model.hosted", {"model": model, "url": f"https://hub.example/{model}", **extra})


def signed_delivery(secret: str, model: str) -> tuple[bytes, dict[str, str]]:
    """A Standard Webhooks delivery of ``model.hosted``, signed as a platform would sign it."""
    now = datetime.now(UTC)
    body = json.dumps(
        {
            "type": "model.hosted",
            "timestamp": now.isoformat(),
            "data": {"model": model, "url": f"https://hub.example/{model}"},
        }
    ).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    return body, {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
    }


async def hosted_models(
    client: httpx.AsyncClient, admin: dict[str, str], slug: str, names: list[str]
) -> str:
    """A new signing secret for platform ``slug``, and each of ``names`` hosted there by a
    signed ``model.hosted`` delivery; returns the secret."""
    secret = await new_secret(client, admin, slug)
    for name in names:
        assert (await deliver(client, slug, secret, hosted(name))).status_code == 202
    return secret


def batch_counts() -> tuple[float, float]:
    """Group commit's batches so far, and the deliveries they carried (from its metric)."""
    count = REGISTRY.get_sample_value("registry_webhook_batch_size_count") or 0.0
    total = REGISTRY.get_sample_value("registry_webhook_batch_size_sum") or 0.0
    return count, total
