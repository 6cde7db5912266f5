"""Leaf hashes recomputed with an independent RFC 8785 (JCS) implementation, the
``rfc8785`` package, from events read as RFC 8785 reads JSON numbers."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

from service.domain.jcs import MAX_SAFE_INTEGER


def read_number(text: str) -> int | float:
    """A JSON integer as RFC 8785 reads it: a double, kept as an int while exact."""
    value = int(text)
    return value if abs(value) <= MAX_SAFE_INTEGER else float(text)


def read_event(text: str | bytes) -> Any:
    """An event's JSON, its integers read as RFC 8785 reads them."""
    return json.loads(text, parse_int=read_number)


def jcs_leaf(event: Any) -> bytes:
    """The leaf hash, by the independent implementation."""
    return hashlib.sha256(b"\x00" + rfc8785.dumps(event)).digest()
