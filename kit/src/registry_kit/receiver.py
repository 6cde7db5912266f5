"""Receiving the registry's notices: verify over the raw body, then drop repeats.

The registry delivers at least once: a notice can arrive again (a retry after a timeout, a
redelivery asked for), always with the same ``webhook-id`` and body. ``NoticeReceiver``
verifies a notice, decodes it, and tells a first delivery from a repeat through a
``SeenStore``: in memory by default, or the platform's own (a table with a unique key)
when it runs more than one process.

    receiver = NoticeReceiver("whsec_...")
    status = receiver.handle(headers, raw_body, process)   # answer the registry with it
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import msgspec

from registry_kit.signing import DEFAULT_TOLERANCE, VerificationError, verify

__all__ = [
    "MemorySeenStore",
    "Notice",
    "NoticeError",
    "NoticeReceiver",
    "SeenStore",
    "VerificationError",
]


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """One notice: ``decommission.notice``, ``decommission.withdrawn`` or ``endpoint.test``."""

    #: The notice id, equal to the ``webhook-id`` of every attempt to deliver it.
    id: str
    type: str
    timestamp: str
    data: dict[str, Any]


_decoder = msgspec.json.Decoder(Notice)


class NoticeError(ValueError):
    """A correctly signed body that is not a notice."""


class SeenStore(Protocol):
    def add(self, msg_id: str) -> bool:
        """Record ``msg_id``; True if it was not there yet. Must be atomic."""

    def discard(self, msg_id: str) -> None:
        """Forget ``msg_id``, so its next delivery is processed."""


class MemorySeenStore:
    """Ids seen by this process in the last ``ttl`` seconds (at most ``max_items``).

    The registry retries a notice for a little more than a day; keep ids at least as long.
    """

    def __init__(self, *, ttl: float = 3 * 24 * 3600.0, max_items: int = 100_000) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, msg_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            oldest = now - self.ttl
            while self._seen and (
                len(self._seen) >= self.max_items or next(iter(self._seen.values())) < oldest
            ):
                self._seen.popitem(last=False)
            if msg_id in self._seen:
                return False
            self._seen[msg_id] = now
            return True

    def discard(self, msg_id: str) -> None:
        with self._lock:
            self._seen.pop(msg_id, None)


class NoticeReceiver:
    """Verifies and de-duplicates notices signed with one of ``secrets``.

    After a rotation the registry signs with the old and the new secret for the overlap it
    was asked for (a day by default), so switching to the new one any time then loses
    nothing. Give both (``[old, new]``) to be safe across a rotation with no overlap.
    """

    def __init__(
        self,
        secrets: str | Sequence[str],
        *,
        seen: SeenStore | None = None,
        tolerance: int = DEFAULT_TOLERANCE,
    ) -> None:
        self.secrets = (secrets,) if isinstance(secrets, str) else tuple(secrets)
        if not self.secrets:
            raise ValueError("at least one signing secret is needed")
        self.seen: SeenStore = seen if seen is not None else MemorySeenStore()
        self.tolerance = tolerance

    def verify(self, headers: Mapping[str, str], body: bytes) -> Notice:
        """The notice, if signed with one of the secrets recently; raises otherwise.

        ``VerificationError`` for a bad or stale signature, ``NoticeError`` for a signed
        body that is not a notice.
        """
        msg_id = verify(self.secrets, headers, body, tolerance=self.tolerance)
        try:
            notice = _decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise NoticeError(f"not a notice: {exc}") from exc
        if notice.id != msg_id:
            raise NoticeError("the notice id differs from its webhook-id")
        return notice

    def receive(self, headers: Mapping[str, str], body: bytes) -> Notice | None:
        """The verified notice, or None if it was received before."""
        notice = self.verify(headers, body)
        return notice if self.seen.add(notice.id) else None

    def handle(
        self, headers: Mapping[str, str], body: bytes, process: Callable[[Notice], object]
    ) -> int:
        """The status to answer: 401 unverified, 400 not a notice, 200 a repeat, else
        ``process(notice)`` runs and 200; if it raises, the id is forgotten (so the
        registry's retry is processed) and the exception propagates."""
        try:
            notice = self.receive(headers, body)
        except VerificationError:
            return 401
        except NoticeError:
            return 400
        if notice is None:
            return 200
        try:
            process(notice)
        except BaseException:
            self.seen.discard(notice.id)
            raise
        return 200
