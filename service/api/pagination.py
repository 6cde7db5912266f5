"""Opaque keyset cursors and the shared ``limit``/``cursor`` query parameters."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated, TypeVar
from uuid import UUID

from litestar.params import Parameter

from service.errors import InvalidCursor

T = TypeVar("T")

__all__ = [
    "Cursor",
    "Limit",
    "decode_seq_cursor",
    "decode_uuid_cursor",
    "paginate",
]

Limit = Annotated[int, Parameter(ge=1, le=200, description="Items per page (1-200).")]
Cursor = Annotated[
    str | None,
    Parameter(
        max_length=64,
        description="`next_cursor` from the previous page; omit for the first page.",
    ),
]


def _decode(cursor: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("the cursor is not one this service issued") from exc


def decode_uuid_cursor(cursor: str | None) -> UUID | None:
    if cursor is None:
        return None
    raw = _decode(cursor)
    if len(raw) != 16:
        raise InvalidCursor("the cursor is not one this service issued")
    return UUID(bytes=raw)


def decode_seq_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    raw = _decode(cursor)
    if len(raw) != 8:
        raise InvalidCursor("the cursor is not one this service issued")
    return int.from_bytes(raw, "big")


def paginate(
    items: list[T], limit: int, key: Callable[[T], UUID | int]
) -> tuple[list[T], str | None]:
    """Split a fetch of ``limit + 1`` items into a page and the cursor for the next one."""
    if len(items) <= limit:
        return items, None
    page = items[:limit]
    last = key(page[-1])
    raw = last.bytes if isinstance(last, UUID) else last.to_bytes(8, "big")
    return page, base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
