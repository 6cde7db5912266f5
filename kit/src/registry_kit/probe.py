"""Asking the registry for a test notice and waiting to see what the receiver answered.

``POST /v1/endpoints/{id}/test`` (with the platform's key) queues a signed
``endpoint.test`` notice; the registry's delivery worker sends it like any other, and
``GET /v1/notifications/{notice id}/attempts`` shows each attempt: the receiver's status,
the latency, the error, and when the next attempt is due.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

__all__ = ["ProbeError", "TestNoticeResult", "send_test_notice"]

_decoder = msgspec.json.Decoder()


class ProbeError(Exception):
    """The registry refused the request (its problem detail is the message)."""


@dataclass(frozen=True, slots=True)
class TestNoticeResult:
    notice_id: str
    #: Every attempt so far, oldest first, as the registry lists them.
    attempts: list[dict[str, Any]]

    @property
    def delivered(self) -> bool:
        return any(200 <= (a.get("status_code") or 0) < 300 for a in self.attempts)


def _json(response: httpx.Response) -> Any:
    try:
        body = _decoder.decode(response.content)
    except msgspec.DecodeError:
        body = None
    if response.is_error:
        detail = body.get("detail") if isinstance(body, dict) else None
        raise ProbeError(f"HTTP {response.status_code}: {detail or response.reason_phrase}")
    return body


def send_test_notice(
    base_url: str,
    key: str,
    endpoint_id: str,
    *,
    wait: float = 30.0,
    interval: float = 0.5,
    client: httpx.Client | None = None,
) -> TestNoticeResult:
    """Queue a test notice for the endpoint and wait up to ``wait`` s for its first attempt."""
    http = client or httpx.Client(timeout=10.0)
    headers = {"Authorization": f"Bearer {key}"}
    root = base_url.rstrip("/")
    try:
        notice = _json(http.post(f"{root}/v1/endpoints/{endpoint_id}/test", headers=headers))
        notice_id = str(notice["id"])
        deadline = time.monotonic() + wait
        while True:
            page = _json(http.get(f"{root}/v1/notifications/{notice_id}/attempts", headers=headers))
            attempts: list[dict[str, Any]] = page["items"]
            if attempts or time.monotonic() >= deadline:
                return TestNoticeResult(notice_id, attempts)
            time.sleep(interval)
    finally:
        if client is None:
            http.close()
