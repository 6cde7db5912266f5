"""Checks a platform runs against its own notice receiver before the registry relies on it.

Each check posts one ``endpoint.test`` notice, built and signed as the registry signs its
notices, and judges the answer:

- **valid notice accepted**: a correctly signed notice is answered 2xx;
- **bad signature refused**: one signed with another secret is answered 4xx;
- **missing signature refused**: one without ``webhook-signature`` is answered 4xx;
- **stale timestamp refused**: one correctly signed ten minutes ago is answered 4xx;
- **repeat de-duplicated**: the valid notice again (same ``webhook-id`` and body, signed
  afresh) is answered 2xx, as a repeat must be so the registry stops sending it.

A 5xx is never a refusal: the registry would retry it for a day. Whether a repeat is
*processed* twice cannot be seen from outside; ``NoticeReceiver`` is what prevents that.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import msgspec

from registry_kit.signing import signed_headers

__all__ = ["CHECKS", "CheckResult", "run_conformance"]

CHECKS = (
    "valid notice accepted",
    "bad signature refused",
    "missing signature refused",
    "stale timestamp refused",
    "repeat de-duplicated",
)

_encoder = msgspec.json.Encoder()
_STALE_SECONDS = 600


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    passed: bool
    #: What the receiver answered, and why that passes or fails.
    detail: str


def _notice(check: str) -> tuple[str, bytes]:
    msg_id = str(uuid.uuid4())
    body = _encoder.encode(
        {
            "type": "endpoint.test",
            "timestamp": datetime.now(UTC).isoformat(),
            "id": msg_id,
            "data": {"note": "A conformance check; there is nothing to act on.", "check": check},
        }
    )
    return msg_id, body


def _other_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def _judge(name: str, response: httpx.Response | Exception, *, want: str) -> CheckResult:
    if isinstance(response, Exception):
        return CheckResult(name, False, f"no answer: {type(response).__name__}: {response}")
    status = response.status_code
    ok = 200 <= status < 300 if want == "2xx" else 400 <= status < 500
    detail = f"answered {status}" + ("" if ok else f", expected {want}")
    if not ok and want == "4xx" and 200 <= status < 300:
        detail += " (the receiver accepted it)"
    if not ok and status >= 500:
        detail += " (the registry would retry a 5xx for a day)"
    return CheckResult(name, ok, detail)


def run_conformance(
    url: str, secret: str, *, client: httpx.Client | None = None, timeout: float = 10.0
) -> list[CheckResult]:
    """Run every check against the receiver at ``url``, which verifies with ``secret``."""
    http = client or httpx.Client(timeout=timeout)

    def post(body: bytes, headers: dict[str, str]) -> httpx.Response | Exception:
        try:
            return http.post(url, content=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            return exc

    try:
        results = []
        valid_id, valid_body = _notice(CHECKS[0])
        results.append(
            _judge(
                CHECKS[0],
                post(valid_body, signed_headers(secret, msg_id=valid_id, body=valid_body)),
                want="2xx",
            )
        )
        msg_id, body = _notice(CHECKS[1])
        results.append(
            _judge(
                CHECKS[1],
                post(body, signed_headers(_other_secret(), msg_id=msg_id, body=body)),
                want="4xx",
            )
        )
        msg_id, body = _notice(CHECKS[2])
        headers = signed_headers(secret, msg_id=msg_id, body=body)
        del headers["webhook-signature"]
        results.append(_judge(CHECKS[2], post(body, headers), want="4xx"))
        msg_id, body = _notice(CHECKS[3])
        stale = int(time.time()) - _STALE_SECONDS
        results.append(
            _judge(
                CHECKS[3],
                post(body, signed_headers(secret, msg_id=msg_id, body=body, timestamp=stale)),
                want="4xx",
            )
        )
        results.append(
            _judge(
                CHECKS[4],
                post(valid_body, signed_headers(secret, msg_id=valid_id, body=valid_body)),
                want="2xx",
            )
        )
        return results
    finally:
        if client is None:
            http.close()
