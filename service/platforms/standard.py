"""Standard Webhooks (standardwebhooks.com) signatures, as the ``standardwebhooks`` and
``svix`` libraries make them.

A delivery carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: a space-separated list of ``v1,<base64 HMAC-SHA256>`` entries over
``"{id}.{timestamp}.{raw body}"``, keyed with the base64 part of a ``whsec_`` secret. The
``svix-`` header names are accepted too. Every way a delivery can fail is a
:class:`SignatureError`, never another exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence

__all__ = [
    "SECRET_PREFIX",
    "SignatureError",
    "SignedHeaders",
    "StaleTimestamp",
    "StreamVerifier",
    "new_secret",
    "secret_key",
    "sign",
    "signed_headers",
    "verify",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
_MAX_ID = 200
_MAX_SIGNATURES = 16


class SignatureError(Exception):
    """The delivery is not verifiably from the platform; the text says why, for its log."""

    #: A short fixed label for metrics; the text is for the platform's delivery log.
    code = "bad_signature"


class StaleTimestamp(SignatureError):
    """The signed timestamp is outside the accepted window: a replay, or a bad clock."""

    code = "stale_timestamp"


class SignedHeaders:
    """The three signature headers of a delivery, as sent."""

    __slots__ = ("msg_id", "signature", "timestamp")

    def __init__(self, msg_id: str, timestamp: str, signature: str) -> None:
        self.msg_id = msg_id
        self.timestamp = timestamp
        self.signature = signature


def new_secret() -> str:
    """A fresh signing secret in ``whsec_<base64>`` form (256 random bits)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret."""
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a signing secret is whsec_ followed by base64") from exc


def _header(headers: Mapping[str, str], name: str) -> str:
    return headers.get("webhook-" + name) or headers.get("svix-" + name) or ""


def signed_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """Pick the signature headers out of a (lower-cased) header mapping."""
    found = SignedHeaders(
        _header(headers, "id"), _header(headers, "timestamp"), _header(headers, "signature")
    )
    if not (found.msg_id and found.timestamp and found.signature):
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
    if len(found.msg_id) > _MAX_ID or not found.msg_id.isprintable():
        raise SignatureError("webhook-id must be at most 200 printable characters")
    return found


def sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    """The raw HMAC-SHA256 a ``v1`` signature carries."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode(), hashlib.sha256)
    mac.update(body)
    return mac.digest()


class StreamVerifier:
    """``verify`` for a body read in parts: the timestamp and the presented signatures are
    checked first, then each part is fed to one HMAC per key, and ``finish`` compares. A
    body of any size is verified without holding it."""

    __slots__ = ("_macs", "_presented")

    def __init__(
        self,
        *,
        keys: Sequence[bytes],
        signed: SignedHeaders,
        tolerance: int,
        now: float | None = None,
    ) -> None:
        if not keys:
            raise SignatureError("the platform has no active signing secret")
        stamp = signed.timestamp
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise SignatureError("webhook-timestamp must be whole Unix seconds")
        current = time.time() if now is None else now
        if abs(current - int(stamp)) > tolerance:
            raise StaleTimestamp(
                f"webhook-timestamp is more than {tolerance} seconds from the registry's clock"
            )
        presented: list[bytes] = []
        for entry in signed.signature.split(" ")[:_MAX_SIGNATURES]:
            version, comma, value = entry.partition(",")
            if not comma or version != "v1":
                continue
            try:
                presented.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
        if not presented:
            raise SignatureError("webhook-signature holds no v1 signature")
        self._presented = presented
        prefix = f"{signed.msg_id}.{stamp}.".encode()
        self._macs = [hmac.new(key, prefix, hashlib.sha256) for key in keys]

    def update(self, part: bytes) -> None:
        for mac in self._macs:
            mac.update(part)

    def finish(self) -> None:
        """Return if a signature matches an active key; raise ``SignatureError`` if not."""
        for mac in self._macs:
            expected = mac.digest()
            for candidate in self._presented:
                if hmac.compare_digest(expected, candidate):
                    return
        raise SignatureError("no signature matches an active signing secret")


def verify(
    *,
    keys: Sequence[bytes],
    signed: SignedHeaders,
    body: bytes,
    tolerance: int,
    now: float | None = None,
) -> None:
    """Check the timestamp window, then a ``v1`` signature against each active key."""
    verifier = StreamVerifier(keys=keys, signed=signed, tolerance=tolerance, now=now)
    verifier.update(body)
    verifier.finish()
