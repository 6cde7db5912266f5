"""The batch sealer: appends committed events to the Merkle tree and signs checkpoints.

Leaf ``i`` hashes event ``i`` in the ledger's canonical encoding
(:func:`service.domain.ledger.canonical_entry`): RFC 8785 (leaf format 2), recorded with
the leaf. An event JCS cannot encode (intake refuses the values that would make one) is
sealed in format 1 rather than stopping the ledger, and logged.

**Gap-free sealing.** Sequence numbers come from an identity column, and transactions can
commit out of order, so a missing seq may still appear. The sealer seals only a gap-free
prefix: a gap is passed over once it has persisted for a grace period *and* every
transaction that was running when it was first seen has ended (the snapshot's ``xmin`` has
passed the ``xmax`` noted then). Each round runs in one REPEATABLE READ transaction, so the
events read and the snapshot judged are the same. An advisory lock keeps replicas from
sealing at once; ingest never waits on any of this.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from contextlib import suppress
from typing import Any

import asyncpg
import msgspec

from service.db.pool import DB_FAILURES, connection
from service.db.queries import ledger_tree as q
from service.db.queries import witnesses as witness_q
from service.domain import merkle
from service.domain.checkpoints import Signer, format_body
from service.domain.jcs import NotCanonical
from service.domain.ledger import LEAF_FORMAT_JCS, canonical_entry
from service.errors import NotFound, Unavailable
from service.schemas.transparency import (
    CheckpointOut,
    CheckpointSummary,
    ConsistencyProofOut,
    InclusionProofOut,
    LeafFormatRange,
    LeafFormats,
    LeafHash,
    LeafPage,
)

__all__ = [
    "GapTracker",
    "SealResult",
    "get_checkpoint",
    "get_consistency_proof",
    "get_inclusion_proof",
    "get_leaf_formats",
    "list_checkpoints",
    "list_leaf_hashes",
    "list_recent_checkpoints",
    "run_sealer",
    "seal_once",
]

log = logging.getLogger(__name__)


class GapTracker:
    """Remembers when each gap in the sequence was first seen, and the snapshot then; and
    the snapshot of the last round that found no event after the sealed ones."""

    def __init__(self, grace_seconds: float) -> None:
        self.grace = grace_seconds
        self._seen: dict[int, tuple[float, int]] = {}
        self._idle: str | None = None

    def unchanged(self, snapshot: str) -> bool:
        """Whether the last round found no event to read in this same snapshot: no
        transaction has ended since (the same ``xmin``, ``xmax`` and running ones), so none
        has become visible, and the round need not read the events again. (Reading them
        walks past every event not yet committed: during a catalogue sync's million, a
        quarter of a second each round.)"""
        return snapshot == self._idle

    def read(self, snapshot: str, *, found: bool) -> None:
        """A round read the events after the sealed ones in ``snapshot``."""
        self._idle = None if found else snapshot

    def settled(self, missing: int, *, xmin: int, xmax: int) -> bool:
        """Whether seq ``missing`` can no longer appear (its transaction rolled back)."""
        now = time.monotonic()
        first = self._seen.setdefault(missing, (now, xmax))
        if now - first[0] >= self.grace and xmin >= first[1]:
            del self._seen[missing]
            return True
        return False


class SealResult(msgspec.Struct, frozen=True, kw_only=True):
    sealed: int
    tree_size: int
    root_hash: bytes


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def seal_once(
    conn: asyncpg.Connection,
    *,
    signer: Signer,
    batch_size: int,
    gaps: GapTracker,
) -> SealResult | None:
    """Seal up to ``batch_size`` events and publish a checkpoint.

    Run inside a REPEATABLE READ transaction. Returns ``None`` when another sealer holds
    the lock; ``sealed == 0`` when nothing could be sealed yet.
    """
    if not await q.try_seal_lock(conn):
        return None
    xmin, xmax, snapshot = await q.select_snapshot(conn)
    size, last_seq = await q.select_tree_head(conn)
    rows = []
    if not gaps.unchanged(snapshot):
        rows = await q.select_events_after(conn, after_seq=last_seq, limit=batch_size)
        gaps.read(snapshot, found=bool(rows))
    expected = last_seq + 1
    # The rows as mappings: the payload decoded, as the canonical encoding needs it.
    events: list[dict[str, Any]] = []
    for row in rows:
        seq = int(row["seq"])
        if seq != expected and not gaps.settled(expected, xmin=xmin, xmax=xmax):
            break
        events.append(dict(row))
        expected = seq + 1
    edge_nodes = merkle.CompactRange.edge_nodes(size)
    edge = await q.select_hashes(conn, wanted=set(edge_nodes))
    tree = merkle.CompactRange(size, [edge[n] for n in edge_nodes])
    if not events:
        return SealResult(sealed=0, tree_size=size, root_hash=tree.root())
    entries = [_entry(e) for e in events]
    formats = [f for f, _ in entries]
    leaves = [merkle.leaf_hash(entry) for _, entry in entries]
    nodes: list[tuple[int, int, bytes]] = []
    for leaf in leaves:
        nodes.extend(tree.append(leaf))
    await q.insert_leaves(
        conn,
        indexes=list(range(size, tree.size)),
        seqs=[e["seq"] for e in events],
        hashes=leaves,
        formats=formats,
    )
    await q.insert_nodes(conn, nodes=nodes)
    root = tree.root()
    note = signer.sign(format_body(origin=signer.name, tree_size=tree.size, root_hash=root))
    await q.insert_checkpoint(
        conn, tree_size=tree.size, root_hash=root, last_seq=events[-1]["seq"], note=note
    )
    return SealResult(sealed=len(events), tree_size=tree.size, root_hash=root)


def _entry(event: dict[str, Any]) -> tuple[int, bytes]:
    """The event's leaf format and entry: JCS, or format 1 for what JCS cannot encode."""
    try:
        return LEAF_FORMAT_JCS, canonical_entry(event, LEAF_FORMAT_JCS)
    except NotCanonical:
        log.warning("event sealed in leaf format 1", extra={"seq": event["seq"]})
        return 1, canonical_entry(event, 1)


async def run_sealer(
    pool: asyncpg.Pool,
    *,
    signer: Signer,
    batch_size: int,
    interval: float,
    gap_grace: float,
    stop: asyncio.Event,
) -> None:
    """Seal until ``stop`` is set: at once while batches come full, else every ``interval``."""
    gaps = GapTracker(gap_grace)
    while not stop.is_set():
        result: SealResult | None = None
        try:
            async with connection(pool) as conn, conn.transaction(isolation="repeatable_read"):
                result = await seal_once(
                    conn,
                    signer=signer,
                    batch_size=batch_size,
                    gaps=gaps,
                )
        except (*DB_FAILURES, Unavailable):
            log.exception("sealing failed; retrying")
        if result is not None and result.sealed > 0:
            log.debug("ledger sealed", extra={"sealed": result.sealed, "size": result.tree_size})
            if result.sealed >= batch_size:
                continue
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


# -- reading the sealed tree ------------------------------------------------------------------


def _checkpoint(row: asyncpg.Record) -> CheckpointOut:
    return CheckpointOut(
        tree_size=row["tree_size"],
        root_hash=_b64(bytes(row["root_hash"])),
        last_seq=row["last_seq"],
        note=row["note"],
        created_at=row["created_at"],
    )


async def get_checkpoint(
    conn: asyncpg.Connection, *, tree_size: int | None = None
) -> CheckpointOut:
    """The newest checkpoint, or the one published at ``tree_size``."""
    if tree_size is None:
        row = await q.select_latest_checkpoint(conn)
    else:
        row = await q.select_checkpoint(conn, tree_size=tree_size)
    if row is None:
        raise NotFound(
            "no checkpoint has been published" + (f" at size {tree_size}" if tree_size else "")
        )
    checkpoint = _checkpoint(row)
    # The witnesses' cosignature lines follow the log's own signature (C2SP tlog-cosignature).
    cosignatures = await witness_q.select_cosignatures(conn, tree_size=checkpoint.tree_size)
    if not cosignatures:
        return checkpoint
    note = checkpoint.note + "".join(f"{line}\n" for line in cosignatures)
    return msgspec.structs.replace(checkpoint, note=note)


async def list_checkpoints(
    conn: asyncpg.Connection, *, before: int | None, limit: int
) -> list[CheckpointSummary]:
    """Published checkpoints smaller than ``before``, newest first."""
    rows = await q.select_checkpoints_before(conn, before=before, limit=limit)
    return [
        CheckpointSummary(
            tree_size=r["tree_size"],
            root_hash=_b64(bytes(r["root_hash"])),
            last_seq=r["last_seq"],
            created_at=r["created_at"],
        )
        for r in rows
    ]


async def list_recent_checkpoints(conn: asyncpg.Connection, *, limit: int) -> list[CheckpointOut]:
    """The newest ``limit`` checkpoints, newest first."""
    return [_checkpoint(row) for row in await q.select_recent_checkpoints(conn, limit=limit)]


async def _sealed_size(conn: asyncpg.Connection) -> int:
    size, _ = await q.select_tree_head(conn)
    return size


async def _build(conn: asyncpg.Connection, build: Any) -> list[bytes]:
    wanted = merkle.plan(build)
    hashes = await q.select_hashes(conn, wanted=wanted)
    result: list[bytes] = build(merkle.lookup_in(hashes))
    return result


async def get_inclusion_proof(
    conn: asyncpg.Connection, *, seq: int, tree_size: int
) -> InclusionProofOut:
    if tree_size > await _sealed_size(conn):
        raise NotFound(f"the tree has not reached size {tree_size}")
    leaf = await q.select_leaf_by_seq(conn, seq=seq)
    if leaf is None or leaf["leaf_index"] >= tree_size:
        raise NotFound(f"event {seq} is not sealed in the tree of size {tree_size}")
    index = int(leaf["leaf_index"])
    path = await _build(conn, lambda lk: merkle.inclusion_proof(index, tree_size, lk))
    return InclusionProofOut(
        seq=seq,
        leaf_index=index,
        tree_size=tree_size,
        leaf_hash=_b64(bytes(leaf["leaf_hash"])),
        leaf_format=leaf["format"],
        hashes=[_b64(h) for h in path],
    )


async def get_consistency_proof(
    conn: asyncpg.Connection, *, first: int, second: int
) -> ConsistencyProofOut:
    if second > await _sealed_size(conn):
        raise NotFound(f"the tree has not reached size {second}")
    path = await _build(conn, lambda lk: merkle.consistency_proof(first, second, lk))
    return ConsistencyProofOut(first=first, second=second, hashes=[_b64(h) for h in path])


async def list_leaf_hashes(conn: asyncpg.Connection, *, start: int, limit: int) -> LeafPage:
    rows = await q.select_leaves(conn, start=start, end=start + limit)
    return LeafPage(
        items=[
            LeafHash(
                leaf_index=r["leaf_index"],
                seq=r["seq"],
                leaf_hash=_b64(bytes(r["leaf_hash"])),
                format=r["format"],
            )
            for r in rows
        ]
    )


async def get_leaf_formats(conn: asyncpg.Connection) -> LeafFormats:
    """Each run of sealed leaves in one format: from which leaf index each format applies."""
    return LeafFormats(
        ranges=[
            LeafFormatRange(
                format=r["format"], first_leaf=r["first_leaf"], last_leaf=r["last_leaf"]
            )
            for r in await q.select_leaf_format_ranges(conn)
        ]
    )
