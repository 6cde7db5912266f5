"""Pushing a platform's whole catalogue: ``PUT /v1/platforms/{platform}/catalogue``.

The body is a file, NDJSON (one hosting per line) or a CycloneDX JSON BOM, signed the
Standard Webhooks way with the platform's ``whsec_`` secret over ``"{id}.{timestamp}.{body}"``.
The HMAC is fed the file in parts, then the file is streamed to the registry in parts, so a
catalogue of any size is sent without holding it in memory; the file must not change while
it is pushed.

Every attempt carries the same ``webhook-id`` (the delivery id) and is signed afresh. The
registry applies a delivery id once: an attempt whose answer was lost, sent again, is
answered with the first summary and ``duplicate`` set, and nothing is written twice; one
cut off midway is resumed, the parts already applied not applied again. 408, 429, 503 and
the other transient answers, a 409 with ``Retry-After`` (the registry is still applying an
earlier attempt), and network errors, are retried as events are (``RetryPolicy``); any
other answer is final and raises ``CatalogueError``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Literal

import httpx
import msgspec

from registry_kit.sender import Delivery, RetryPolicy, SendError, _Plan
from registry_kit.signing import secret_key

__all__ = [
    "MEDIA_TYPES",
    "CatalogueError",
    "CatalogueFormat",
    "CatalogueSummary",
    "Progress",
    "RejectedLine",
    "new_delivery_id",
    "push_catalogue",
    "push_catalogue_async",
]

CatalogueFormat = Literal["ndjson", "cyclonedx"]

#: The media type each format is sent as.
MEDIA_TYPES: dict[CatalogueFormat, str] = {
    "ndjson": "application/x-ndjson",
    "cyclonedx": "application/vnd.cyclonedx+json",
}

#: Called after each part is handed to the connection: bytes sent so far, bytes in all.
#: A retry starts again from 0.
Progress = Callable[[int, int], None]

_PART = 1024 * 1024
_RETRY = RetryPolicy()
#: A minute to connect and to send each part; an hour for the answer, which comes only once
#: the registry has applied the whole catalogue.
_TIMEOUT = httpx.Timeout(60.0, read=3600.0)


class RejectedLine(msgspec.Struct, frozen=True, kw_only=True):
    """A line (NDJSON) or component (CycloneDX, counted from 1) that was not applied."""

    line: int
    reason: str


class CatalogueSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What the registry changed: each count is of hostings, ``registered`` of models.

    Fields the registry adds later are ignored, so an older kit keeps decoding the answer.
    """

    sync_id: uuid.UUID
    delivery_id: str
    format: CatalogueFormat
    complete: bool
    #: True when this delivery id had been applied before: nothing was written this time.
    duplicate: bool = False
    received_at: datetime
    added: int
    changed: int
    removed: int
    unchanged: int
    registered: int
    rejected: list[RejectedLine]
    #: Rejected lines beyond the ones listed (the registry lists 1,000 at most).
    rejected_more: int = 0
    #: The ledger events the sync appended.
    events: int


class CatalogueError(SendError):
    """The registry refused the catalogue for good, or every attempt failed.

    ``msg_id`` is the delivery id: pushing the same file again under it is safe.
    ``problem`` is the RFC 9457 body; with ``all_or_nothing`` a 422 lists the rejected
    lines in its ``errors``.
    """


def new_delivery_id() -> str:
    return f"catalogue_{uuid.uuid4().hex}"


def _format(path: Path, fmt: CatalogueFormat | None) -> CatalogueFormat:
    if fmt is not None:
        if fmt not in MEDIA_TYPES:
            raise ValueError(f"a catalogue is ndjson or cyclonedx, not {fmt!r}")
        return fmt
    return "cyclonedx" if path.suffix.lower() == ".json" else "ndjson"


def _signature(path: Path, key: bytes, msg_id: str, stamp: int, part_size: int) -> str:
    """The ``v1`` signature of the file's bytes, read in parts."""
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode(), hashlib.sha256)
    with path.open("rb") as f:
        while part := f.read(part_size):
            mac.update(part)
    return "v1," + base64.b64encode(mac.digest()).decode()


class _Push:
    """What one push sends on every attempt; the body is read from the file each time."""

    def __init__(
        self,
        base_url: str,
        platform: str,
        secret: str,
        file: str | os.PathLike[str],
        *,
        fmt: CatalogueFormat | None,
        complete: bool,
        all_or_nothing: bool,
        delivery_id: str | None,
        progress: Progress | None,
        part_size: int,
    ) -> None:
        self.path = Path(file)
        self.key = secret_key(secret)
        self.format = _format(self.path, fmt)
        self.url = f"{base_url.rstrip('/')}/v1/platforms/{platform}/catalogue"
        self.params = {
            "complete": "true" if complete else "false",
            "all_or_nothing": "true" if all_or_nothing else "false",
        }
        self.msg_id = delivery_id or new_delivery_id()
        self.progress = progress
        self.part_size = part_size
        self.size = self.path.stat().st_size

    def headers(self) -> dict[str, str]:
        stamp = int(time.time())
        return {
            "content-type": MEDIA_TYPES[self.format],
            "content-length": str(self.size),
            "webhook-id": self.msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": _signature(
                self.path, self.key, self.msg_id, stamp, self.part_size
            ),
        }

    def parts(self) -> Iterator[bytes]:
        sent = 0
        with self.path.open("rb") as f:
            while part := f.read(self.part_size):
                sent += len(part)
                if self.progress is not None:
                    self.progress(sent, self.size)
                yield part

    async def aparts(self) -> AsyncIterator[bytes]:
        sent = 0
        f = await asyncio.to_thread(self.path.open, "rb")
        try:
            while part := await asyncio.to_thread(f.read, self.part_size):
                sent += len(part)
                if self.progress is not None:
                    self.progress(sent, self.size)
                yield part
        finally:
            f.close()

    def plan(self, retry: RetryPolicy) -> _Plan:
        return _Plan(retry, self.msg_id, what="catalogue", error=CatalogueError)

    def summary(self, delivery: Delivery) -> CatalogueSummary:
        try:
            return msgspec.convert(delivery.body, CatalogueSummary, strict=False)
        except msgspec.ValidationError as exc:
            raise CatalogueError(
                f"the registry's answer is not a catalogue summary: {exc}",
                msg_id=self.msg_id,
                attempts=delivery.attempts,
                status_code=delivery.status_code,
                problem=None,
            ) from exc


def push_catalogue(
    base_url: str,
    platform: str,
    secret: str,
    file: str | os.PathLike[str],
    *,
    format: CatalogueFormat | None = None,
    complete: bool = False,
    all_or_nothing: bool = False,
    delivery_id: str | None = None,
    progress: Progress | None = None,
    client: httpx.Client | None = None,
    retry: RetryPolicy = _RETRY,
    timeout: httpx.Timeout = _TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    part_size: int = _PART,
) -> CatalogueSummary:
    """Send ``file`` as ``platform``'s catalogue; the registry's summary of what changed.

    ``format`` defaults by the file's name: ``.json`` is CycloneDX, anything else NDJSON.
    ``complete``: hostings absent from the file are removed. ``all_or_nothing``: any
    rejected line refuses the whole catalogue (``CatalogueError``, 422). ``delivery_id``
    defaults to a new one; keep it to push the same file again safely.
    """
    push = _Push(
        base_url,
        platform,
        secret,
        file,
        fmt=format,
        complete=complete,
        all_or_nothing=all_or_nothing,
        delivery_id=delivery_id,
        progress=progress,
        part_size=part_size,
    )
    http = client or httpx.Client()
    try:
        plan = push.plan(retry)
        while True:
            response: httpx.Response | None = None
            error: Exception | None = None
            try:
                response = http.put(
                    push.url,
                    params=push.params,
                    content=push.parts(),
                    headers=push.headers(),
                    timeout=timeout,
                )
            except httpx.TransportError as exc:
                error = exc
            outcome = plan.after(response, error)
            if isinstance(outcome, Delivery):
                return push.summary(outcome)
            sleep(outcome)
    finally:
        if client is None:
            http.close()


async def push_catalogue_async(
    base_url: str,
    platform: str,
    secret: str,
    file: str | os.PathLike[str],
    *,
    format: CatalogueFormat | None = None,
    complete: bool = False,
    all_or_nothing: bool = False,
    delivery_id: str | None = None,
    progress: Progress | None = None,
    client: httpx.AsyncClient | None = None,
    retry: RetryPolicy = _RETRY,
    timeout: httpx.Timeout = _TIMEOUT,  # noqa: ASYNC109 - httpx's, per request
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    part_size: int = _PART,
) -> CatalogueSummary:
    """``push_catalogue`` with ``httpx.AsyncClient``; the file is read in a worker thread."""
    push = _Push(
        base_url,
        platform,
        secret,
        file,
        fmt=format,
        complete=complete,
        all_or_nothing=all_or_nothing,
        delivery_id=delivery_id,
        progress=progress,
        part_size=part_size,
    )
    http = client or httpx.AsyncClient()
    try:
        plan = push.plan(retry)
        while True:
            response: httpx.Response | None = None
            error: Exception | None = None
            headers = await asyncio.to_thread(push.headers)
            try:
                response = await http.put(
                    push.url,
                    params=push.params,
                    content=push.aparts(),
                    headers=headers,
                    timeout=timeout,
                )
            except httpx.TransportError as exc:
                error = exc
            outcome = plan.after(response, error)
            if isinstance(outcome, Delivery):
                return push.summary(outcome)
            await sleep(outcome)
    finally:
        if client is None:
            await http.aclose()
