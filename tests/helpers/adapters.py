"""Payloads shaped as the Hugging Face Hub's and GitHub's webhook documentation shows, and
their senders: each hub's own way of authenticating a delivery."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from uuid import uuid4

import httpx
import msgspec

__all__ = ["gh_repository", "gh_send", "hf_payload", "hf_send"]

_json = msgspec.json.Encoder()


def hf_payload(
    name: str, *, action: str, scope: str, repo_type: str = "model", **extra: Any
) -> bytes:
    """A Hub webhook payload in the documented shape (event, repo, webhook, ...)."""
    payload: dict[str, Any] = {
        "event": {"action": action, "scope": scope},
        "repo": {
            "type": repo_type,
            "name": name,
            "id": "621ffdc036468d709f17434d",
            "private": False,
            "url": {
                "web": f"https://huggingface.co/{name}",
                "api": f"https://huggingface.co/api/models/{name}",
            },
            "headSha": "c1a2b3d4e5f60718293a4b5c6d7e8f9012345678",
            "owner": {"id": "628b753283ef59b5be89e937"},
            "tags": ["transformers", "text-generation"],
        },
        "webhook": {"id": "6390e855e30d9209411de93b", "version": 3},
        **extra,
    }
    return _json.encode(payload)


async def hf_send(client: httpx.AsyncClient, slug: str, secret: str, body: bytes) -> httpx.Response:
    return await client.post(
        f"/v1/webhooks/{slug}/huggingface",
        content=body,
        headers={"content-type": "application/json", "x-webhook-secret": secret},
    )


def gh_repository(full_name: str, **changes: Any) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": 1296269,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": {"login": owner, "id": 1, "type": "Organization"},
        "html_url": f"https://github.com/{full_name}",
        "description": "A model repository",
        "fork": False,
        "archived": False,
        "topics": ["machine-learning", "llm"],
        "license": {"key": "apache-2.0", "name": "Apache License 2.0", "spdx_id": "Apache-2.0"},
        "default_branch": "main",
        **changes,
    }


async def gh_send(
    client: httpx.AsyncClient,
    slug: str,
    secret: str,
    event: str,
    payload: dict[str, Any],
    *,
    delivery: str | None = None,
    signature: str | bytes | None = None,
) -> httpx.Response:
    body = _json.encode(payload)
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    presented = signature or f"sha256={digest}"
    headers: dict[bytes, bytes] = {
        b"content-type": b"application/json",
        b"user-agent": b"GitHub-Hookshot/044aadd",
        b"x-github-event": event.encode(),
        b"x-github-delivery": (delivery or str(uuid4())).encode(),
        b"x-github-hook-id": b"292430182",
        b"x-hub-signature-256": presented if isinstance(presented, bytes) else presented.encode(),
    }
    return await client.post(f"/v1/webhooks/{slug}/github", content=body, headers=headers)
