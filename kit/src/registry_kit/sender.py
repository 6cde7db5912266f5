"""Sending a platform's events to the registry, signed, with retries that keep the id.

Every attempt of one event carries the same ``webhook-id`` and the same body bytes, so the
registry records it once however many attempts get through: a copy that already landed is
answered 200 with ``"duplicate": true``. Each attempt is signed afresh (a long
``Retry-After`` would otherwise make the timestamp stale). 429, 503 and the other transient
answers, and network errors, are retried: after ``Retry-After`` when the registry gives
one, otherwise with exponential backoff and jitter. Any other answer is final.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self

import httpx
import msgspec

from registry_kit.signing import signed_headers

__all__ = [
    "AsyncSender",
    "Delivery",
    "RetryPolicy",
    "SendError",
    "Sender",
    "encode_event",
    "new_msg_id",
]

#: Answers worth another attempt: the registry or a proxy before it was busy or down.
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    #: Attempts in all, the first included.
    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 60.0
    #: The longest ``Retry-After`` honoured; a longer one ends the sending with an error.
    max_retry_after: float = 3600.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """The registry's acceptance of one event."""

    msg_id: str
    status_code: int
    #: The registry's answer: ``delivery_id``, ``duplicate``, ``events`` ...
    body: Any
    attempts: int

    @property
    def duplicate(self) -> bool:
        """True when an earlier attempt had already landed."""
        return isinstance(self.body, dict) and self.body.get("duplicate") is True


class SendError(Exception):
    """The registry refused the event for good, or every attempt failed.

    ``status_code`` and ``problem`` (the RFC 9457 body) are those of the last answer, None
    when the last attempt got no answer.
    """

    def __init__(
        self, message: str, *, msg_id: str, attempts: int, status_code: int | None, problem: Any
    ) -> None:
        super().__init__(message)
        self.msg_id = msg_id
        self.attempts = attempts
        self.status_code = status_code
        self.problem = problem


def new_msg_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def encode_event(event_type: str, data: Any, *, timestamp: datetime | None = None) -> bytes:
    """An event body: ``{"type", "timestamp", "data"}``; ``timestamp`` is when it happened."""
    when = timestamp or datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("the event timestamp needs a time zone")
    return _encoder.encode({"type": event_type, "timestamp": when.isoformat(), "data": data})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _decode(response: httpx.Response) -> Any:
    try:
        return _decoder.decode(response.content)
    except msgspec.DecodeError:
        return None


class _Plan:
    """What to do after each attempt; shared by the two senders."""

    def __init__(
        self,
        policy: RetryPolicy,
        msg_id: str,
        *,
        what: str = "event",
        error: type[SendError] = SendError,
    ) -> None:
        self.policy = policy
        self.msg_id = msg_id
        self.attempts = 0
        self.what = what
        self.error = error

    def after(self, response: httpx.Response | None, error: Exception | None) -> float | Delivery:
        """The delay before the next attempt, or the delivery; raises ``SendError``."""
        self.attempts += 1
        status = None if response is None else response.status_code
        if response is not None and response.is_success:
            return Delivery(self.msg_id, response.status_code, _decode(response), self.attempts)
        problem = None if response is None else _decode(response)
        reason = f"HTTP {status}" if response is not None else f"{type(error).__name__}: {error}"
        # A 409 with Retry-After: the same delivery is still being processed; any other
        # 409 (the delivery id was used for another body) is final.
        later = status == 409 and response is not None and "retry-after" in response.headers
        if status is not None and status not in RETRYABLE and not later:
            raise self.error(
                f"the registry refused the {self.what}: {reason}",
                msg_id=self.msg_id,
                attempts=self.attempts,
                status_code=status,
                problem=problem,
            )
        if self.attempts >= self.policy.max_attempts:
            raise self.error(
                f"gave up after {self.attempts} attempts; last: {reason}",
                msg_id=self.msg_id,
                attempts=self.attempts,
                status_code=status,
                problem=problem,
            )
        asked = None if response is None else parse_retry_after(response.headers.get("retry-after"))
        if asked is not None:
            if asked > self.policy.max_retry_after:
                raise self.error(
                    f"the registry asked to wait {asked:.0f} s, more than allowed",
                    msg_id=self.msg_id,
                    attempts=self.attempts,
                    status_code=status,
                    problem=problem,
                )
            return asked
        delay = min(self.policy.max_delay, self.policy.base_delay * 2.0 ** (self.attempts - 1))
        return delay * (0.8 + 0.4 * random.random())  # noqa: S311 - jitter, not a secret


def _url(base_url: str, platform: str) -> str:
    return f"{base_url.rstrip('/')}/v1/webhooks/{platform}"


class AsyncSender:
    """Sends a platform's events with ``httpx.AsyncClient``.

    ``client`` may be one of the platform's own (for instance with a proxy or a test
    transport); otherwise the sender opens one and closes it in ``aclose``.
    """

    def __init__(
        self,
        base_url: str,
        platform: str,
        secret: str,
        *,
        client: httpx.AsyncClient | None = None,
        retry: RetryPolicy = RetryPolicy(),
        timeout: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.url = _url(base_url, platform)
        self.secret = secret
        self.retry = retry
        self.timeout = timeout
        self._sleep = sleep
        self._own = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout)

    async def send(
        self,
        event_type: str,
        data: Mapping[str, Any],
        *,
        msg_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> Delivery:
        """Send one event until the registry accepts or refuses it."""
        body = encode_event(event_type, data, timestamp=timestamp)
        return await self.send_body(body, msg_id=msg_id or new_msg_id())

    async def send_body(self, body: bytes, *, msg_id: str) -> Delivery:
        """Send an already encoded event; resend a stored one with its own ``msg_id``."""
        plan = _Plan(self.retry, msg_id)
        while True:
            response: httpx.Response | None = None
            error: Exception | None = None
            headers = signed_headers(self.secret, msg_id=msg_id, body=body)
            try:
                response = await self._client.post(
                    self.url, content=body, headers=headers, timeout=self.timeout
                )
            except httpx.TransportError as exc:
                error = exc
            outcome = plan.after(response, error)
            if isinstance(outcome, Delivery):
                return outcome
            await self._sleep(outcome)

    async def aclose(self) -> None:
        if self._own:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Sender:
    """The same as ``AsyncSender``, blocking, with ``httpx.Client``."""

    def __init__(
        self,
        base_url: str,
        platform: str,
        secret: str,
        *,
        client: httpx.Client | None = None,
        retry: RetryPolicy = RetryPolicy(),
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = _url(base_url, platform)
        self.secret = secret
        self.retry = retry
        self.timeout = timeout
        self._sleep = sleep
        self._own = client is None
        self._client = client or httpx.Client(timeout=timeout)

    def send(
        self,
        event_type: str,
        data: Mapping[str, Any],
        *,
        msg_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> Delivery:
        body = encode_event(event_type, data, timestamp=timestamp)
        return self.send_body(body, msg_id=msg_id or new_msg_id())

    def send_body(self, body: bytes, *, msg_id: str) -> Delivery:
        plan = _Plan(self.retry, msg_id)
        while True:
            response: httpx.Response | None = None
            error: Exception | None = None
            headers = signed_headers(self.secret, msg_id=msg_id, body=body)
            try:
                response = self._client.post(
                    self.url, content=body, headers=headers, timeout=self.timeout
                )
            except httpx.TransportError as exc:
                error = exc
            outcome = plan.after(response, error)
            if isinstance(outcome, Delivery):
                return outcome
            self._sleep(outcome)

    def close(self) -> None:
        if self._own:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
