"""The background reconciliation: every record compared with its newest ledger state.

Each round takes one batch of each dataset (models, hostings, incidents, audits,
decisions), continuing from where the last round stopped (a keyset over record ids kept in
``reconciliation_progress``), compares each row with the state its newest event carries
(:func:`service.domain.reconciliation.compare_row`, the offline verifier's comparison)
and records what differs in ``record_divergences``: a record found agreeing again loses
its rows there. A round is one transaction under an advisory lock, so one replica works at
a time and replicas continue one another's pass. A record found differing for the first
time is logged, naming it and its fields; ``registry_records_divergent`` counts them and
``GET /v1/admin/divergences`` lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import asyncpg
import msgspec

from service.db.pool import DB_FAILURES, connection
from service.db.queries import reconciliation as q
from service.domain.reconciliation import DATASETS, SUBJECT_TYPES, Divergence, compare_row
from service.errors import Unavailable
from service.schemas.divergences import DivergenceOut

__all__ = ["RoundResult", "list_divergences", "reconcile_all", "reconcile_round", "run_reconciler"]

log = logging.getLogger(__name__)

_decode = msgspec.json.Decoder()


class RoundResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one round did: rows compared, divergent records seen, datasets whose pass ended."""

    rows: int
    divergent: int
    completed: list[str]


async def _dataset_batch(
    conn: asyncpg.Connection, *, dataset: str, batch_size: int
) -> tuple[int, int, bool]:
    after, started = await q.select_progress(conn, dataset=dataset)
    started = started or datetime.now(UTC)
    batch = await q.select_batch(conn, dataset=dataset, after_id=after, limit=batch_size)
    states = await q.select_latest_states(
        conn, subject_type=SUBJECT_TYPES[dataset], subject_ids=[i for i, _ in batch]
    )
    found: list[Divergence] = []
    for record_id, row in batch:
        newest = states.get(record_id)
        if newest is None:
            found += compare_row(dataset, _decode.decode(row), None)
        else:
            found += compare_row(
                dataset, _decode.decode(row), _decode.decode(newest[1]), seq=newest[0]
            )
    done = len(batch) < batch_size
    if batch:
        keep = [(UUID(d.record_id), d.field) for d in found]
        await q.clear_divergences(
            conn, dataset=dataset, after_id=after, through_id=batch[-1][0], keep=keep
        )
    elif after is None:
        await q.clear_divergences(
            conn, dataset=dataset, after_id=None, through_id=_MAX_UUID, keep=[]
        )
    new = await q.insert_divergences(
        conn,
        dataset=dataset,
        rows=[(UUID(d.record_id), d.field, d.found, d.expected, d.event_seq) for d in found],
    )
    for record_id in sorted(new, key=str):
        fields = sorted({d.field for d in found if d.record_id == str(record_id)})
        log.warning(
            "record differs from its ledger state",
            extra={
                "dataset": dataset,
                "record_id": str(record_id),
                "fields": fields,
                "event_seq": next(
                    (d.event_seq for d in found if d.record_id == str(record_id)), None
                ),
            },
        )
    await q.update_progress(
        conn,
        dataset=dataset,
        after_id=None if done else batch[-1][0],
        pass_started_at=started,
    )
    return len(batch), len({d.record_id for d in found}), done


_MAX_UUID = UUID(int=(1 << 128) - 1)

#: A round reads its records and their newest events in one snapshot. Under read committed
#: each statement sees its own, and a record written between the two reads (its row and its
#: event commit together) would be compared across two moments and reported as differing.
ROUND_ISOLATION: Literal["repeatable_read"] = "repeatable_read"


async def reconcile_round(conn: asyncpg.Connection, *, batch_size: int) -> RoundResult | None:
    """One batch of each dataset, in the caller's transaction; None if another replica is
    reconciling now."""
    if not await q.try_reconcile_lock(conn):
        return None
    rows = divergent = 0
    completed: list[str] = []
    for dataset in DATASETS:
        n, d, done = await _dataset_batch(conn, dataset=dataset, batch_size=batch_size)
        rows, divergent = rows + n, divergent + d
        if done:
            completed.append(dataset)
    return RoundResult(rows=rows, divergent=divergent, completed=completed)


async def reconcile_all(pool: asyncpg.Pool, *, batch_size: int) -> tuple[int, int]:
    """Rounds until every dataset's pass has ended once: (rows compared, divergent records).

    For tests and the benchmark; the service runs :func:`run_reconciler`.
    """
    pending, rows, divergent = set(DATASETS), 0, 0
    while pending:
        async with connection(pool) as conn, conn.transaction(isolation=ROUND_ISOLATION):
            result = await reconcile_round(conn, batch_size=batch_size)
        if result is None:
            await asyncio.sleep(0.05)
            continue
        rows, divergent = rows + result.rows, divergent + result.divergent
        pending -= set(result.completed)
    return rows, divergent


async def run_reconciler(
    pool: asyncpg.Pool, *, batch_size: int, interval: float, stop: asyncio.Event
) -> None:
    """Reconcile a round every ``interval`` seconds until ``stop`` is set: the work per
    interval is bounded by ``batch_size`` rows of each dataset."""
    while not stop.is_set():
        began = time.monotonic()
        try:
            async with connection(pool) as conn, conn.transaction(isolation=ROUND_ISOLATION):
                result = await reconcile_round(conn, batch_size=batch_size)
            log.debug(
                "reconciliation round",
                extra={"seconds": time.monotonic() - began, "rows": getattr(result, "rows", 0)},
            )
        except (*DB_FAILURES, Unavailable) as exc:
            log.warning("reconciliation round failed: %s", type(exc).__name__)
        except Exception:
            log.exception("reconciliation round failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


async def list_divergences(
    conn: asyncpg.Connection, *, dataset: str | None, after: int | None, limit: int
) -> list[DivergenceOut]:
    """What the background pass found, oldest entry first."""
    rows = await q.select_divergences(conn, dataset=dataset, after=after, limit=limit)
    return [msgspec.convert(dict(r), DivergenceOut) for r in rows]
