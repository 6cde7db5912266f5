"""The Standard Webhooks signature scheme, as the registry and its platforms use it.

A message carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` entries over
``"{id}.{timestamp}.{body}"``, keyed with the base64 part of a ``whsec_`` secret. It is the
scheme of the ``standardwebhooks`` and ``svix`` libraries, so either side may use them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

__all__ = [
    "DEFAULT_TOLERANCE",
    "VerificationError",
    "secret_key",
    "sign",
    "signed_headers",
    "verify",
]

#: How far (seconds) a message's timestamp may be from the receiver's clock.
DEFAULT_TOLERANCE = 300
_PREFIX = "whsec_"


class VerificationError(Exception):
    """A message that is not signed with any of the receiver's secrets, or not recently."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_...`` secret; ``ValueError`` if it is not one."""
    encoded = secret.removeprefix(_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a signing secret reads 'whsec_' followed by base64") from exc
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<signature>`` entry for the ``webhook-signature`` header."""
    mac = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signed_headers(
    secret: str, *, msg_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The headers of one signed JSON message (``timestamp`` defaults to now)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, msg_id=msg_id, timestamp=stamp, body=body),
        "content-type": "application/json",
    }


def verify(
    secrets: str | list[str] | tuple[str, ...],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> str:
    """Check a message against one or more secrets; returns its ``webhook-id``.

    Several secrets let a receiver accept both while it rotates one. Raises
    ``VerificationError`` for missing headers, a stale or future timestamp, or no matching
    signature; never anything else.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    given = lowered.get("webhook-signature", "")
    if not (msg_id and stamp and given):
        raise VerificationError("webhook-id, webhook-timestamp and webhook-signature are required")
    if not stamp.isdigit() or len(stamp) > 12:
        raise VerificationError("webhook-timestamp must be whole Unix seconds")
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance:
        raise VerificationError(f"webhook-timestamp is more than {tolerance} s from this clock")
    offered = [entry.partition(",")[2] for entry in given.split() if entry.startswith("v1,")]
    for secret in (secrets,) if isinstance(secrets, str) else secrets:
        try:
            expected = sign(secret, msg_id=msg_id, timestamp=int(stamp), body=body)[3:]
        except ValueError:
            continue
        if any(hmac.compare_digest(expected.encode(), o.encode()) for o in offered):
            return msg_id
    raise VerificationError("no valid v1 signature for any of the receiver's secrets")
