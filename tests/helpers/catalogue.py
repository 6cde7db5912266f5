"""Sending a catalogue as a platform does: NDJSON lines or a CycloneDX BOM, signed."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from tests.helpers.webhooks import signed

_json = msgspec.json.Encoder()

NDJSON = "application/x-ndjson"
CYCLONEDX = "application/vnd.cyclonedx+json"


def ndjson(lines: list[dict[str, Any] | str]) -> bytes:
    """One line per item; a string is sent as written (for malformed lines)."""
    return b"".join(
        (item.encode() if isinstance(item, str) else _json.encode(item)) + b"\n" for item in lines
    )


def line(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "url": f"https://hub.example/{model}", **fields}


def bom(components: list[dict[str, Any]], *, spec: str = "1.6") -> bytes:
    return _json.encode(
        {"bomFormat": "CycloneDX", "specVersion": spec, "version": 1, "components": components}
    )


async def push(
    client: httpx.AsyncClient,
    slug: str,
    secret: str,
    body: bytes,
    *,
    media: str = NDJSON,
    msg_id: str | None = None,
    **params: Any,
) -> httpx.Response:
    headers = signed(secret, body, msg_id=msg_id)
    headers["content-type"] = media
    query = {k: str(v).lower() for k, v in params.items()}
    return await client.put(
        f"/v1/platforms/{slug}/catalogue", content=body, headers=headers, params=query
    )
