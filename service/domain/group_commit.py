"""Group commit: concurrent deliveries of one process share a transaction.

A delivery that only changes hostings the platform records (``intake_batch.batchable``: a
``model.updated``, ``model.hosted``, ``model.removed``, ``model.restricted`` or
``model.downloads``) joins a queue. When no batch is running, its request leads one: it
takes what is queued (itself first), applies it with ``intake_batch.ingest_batch`` in one
transaction on its own connection, and answers every member once that transaction has
committed. Requests that arrive meanwhile queue for the next batch, which the first of them
leads, and give their pooled connections back while they wait. Nothing waits on a timer:
with one request in flight a batch is one delivery, and batches grow only when requests
would queue anyway. One batch runs at a time per process (``in_flight``): on the machines
measured, more only added contention.

A member the batch could not take, and every member of a batch that failed, goes through
the regular path (``intake.ingest``) on its own connection, so every rule and every error
answer stays in one place.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg

from service import metrics
from service.db.pool import acquire
from service.domain import intake, intake_batch
from service.schemas.webhooks import DeliveryAck

__all__ = ["GroupCommit", "Lease"]

log = logging.getLogger(__name__)

#: A member's future is resolved with this when it is to lead the next batch.
_LEAD = object()


class Lease:
    """A request's pooled connection, which it gives back while it waits in the queue
    (``release``); ``get`` takes one again when it is needed."""

    __slots__ = ("_conn", "_pool", "_timeout")

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._conn: Any = None

    async def get(self) -> asyncpg.Connection:
        """The connection; raises ``Unavailable`` when the pool cannot give one in time."""
        if self._conn is None:
            self._conn = await acquire(self._pool, timeout=self._timeout)
        return cast("asyncpg.Connection", self._conn)

    async def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._pool.release(conn)


@dataclass(eq=False, slots=True)
class _Member:
    delivery: intake.Delivery
    message: intake_batch.Batchable
    # Resolved with the acknowledgement, with None (take the regular path), or with _LEAD.
    future: asyncio.Future[object] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    """The queue of one process (made once, by ``service.lifespan``); ``submit`` is the whole
    interface."""

    def __init__(self, *, max_batch: int = 64, in_flight: int = 1) -> None:
        self._queue: deque[_Member] = deque()
        self._leaders = 0
        self._max = max_batch
        self._in_flight = in_flight

    async def submit(
        self, lease: Lease, delivery: intake.Delivery, message: intake_batch.Batchable
    ) -> DeliveryAck | None:
        """The delivery's acknowledgement once its batch has committed, or None when the
        caller must put it through the regular path itself. A member that waits gives its
        connection back meanwhile, so that requests behind it need not wait for one; one
        that leads uses (or takes again) its own."""
        member = _Member(delivery, message)
        if self._leaders < self._in_flight:
            self._leaders += 1  # (the queue is empty whenever a leader's place is free)
        else:
            # Queued before anything is awaited: a leader finishing meanwhile finds it.
            self._queue.append(member)
            try:
                await lease.release()  # (a leader takes one again if it must)
                outcome = await member.future
            except asyncio.CancelledError:
                if member in self._queue:
                    self._queue.remove(member)
                elif _was_to_lead(member):
                    self._hand_on()  # the next one leads in its place
                raise
            if outcome is not _LEAD:
                return cast("DeliveryAck | None", outcome)
        try:
            conn = await lease.get()
            batch = [member]
            while self._queue and len(batch) < self._max:
                batch.append(self._queue.popleft())
            acks = await self._run(conn, batch)
        finally:
            self._hand_on()
        return acks[0]

    async def _run(
        self, conn: asyncpg.Connection, batch: list[_Member]
    ) -> list[DeliveryAck | None]:
        """Apply the batch; resolve the members' futures (the leader, first, reads the
        returned list instead)."""
        metrics.observe_batch(len(batch))
        acks: list[DeliveryAck | None] = [None] * len(batch)
        try:
            async with conn.transaction():
                applied = await intake_batch.ingest_batch(
                    conn, [(m.delivery, m.message) for m in batch]
                )
            acks = applied  # only now: nothing is acknowledged before its commit
        except Exception:
            # Each delivery is tried again on its own, where its error gets its own answer.
            log.warning("a batch of %d deliveries failed", len(batch), exc_info=True)
        finally:
            for m, ack in zip(batch[1:], acks[1:], strict=True):  # also when cancelled
                if not m.future.done():  # done only when its request was cancelled
                    m.future.set_result(ack)
        return acks

    def _hand_on(self) -> None:
        """A leader is done: the longest-waiting member leads next, or the place is free."""
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()
        if self._queue:
            self._queue.popleft().future.set_result(_LEAD)
        else:
            self._leaders -= 1


def _was_to_lead(member: _Member) -> bool:
    future = member.future
    return future.done() and not future.cancelled() and future.result() is _LEAD
