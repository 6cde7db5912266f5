"""Verifying a registry from outside: its signed checkpoints, and an export of its events.

:func:`verify_registry` needs only the registry's URL (an ``httpx.AsyncClient`` pointed at
it) and its checkpoint verifier key. It

1. fetches the newest checkpoint and checks its Ed25519 signature;
2. checks it is consistent with every checkpoint seen before (``Seen``, which the caller
   keeps between runs): same root at the same size, an RFC 9162 consistency proof across
   sizes;
3. given an export of the events (one JSON object per line, as ``GET /v1/events`` serves
   them, in seq order; :func:`export_events` writes one), recomputes each leaf from the
   canonical encoding in the leaf's format (``/v1/ledger/leaf-formats``: RFC 8785 from
   the index where it began, the earlier sorted-key JSON before) and the root; on a
   mismatch it fetches the published leaf hashes, proves them against the signed root,
   and names every event whose content no longer matches what was sealed.

The ``verify`` and ``ledger-export`` commands are thin shells over this module.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import msgspec

from service.domain import merkle
from service.domain.checkpoints import Checkpoint, CheckpointError, open_checkpoint
from service.domain.ledger import LEAF_FORMAT_JCS, canonical_entry
from service.domain.reconciliation import describe
from service.domain.record_check import check_records
from service.domain.witnesses import CosignatureError, parse_witness_key, verify_cosignature

__all__ = ["Mismatch", "Report", "Seen", "export_events", "read_export", "verify_registry"]

_LEAF_PAGE = 10_000


class Seen(msgspec.Struct, kw_only=True):
    """What the verifier remembers between runs."""

    origin: str | None = None
    checkpoints: list[dict[str, Any]] = msgspec.field(default_factory=list)


class Mismatch(msgspec.Struct, frozen=True, kw_only=True):
    leaf_index: int
    seq: int | None
    reason: str


class Report(msgspec.Struct, kw_only=True):
    ok: bool = True
    origin: str | None = None
    tree_size: int | None = None
    root_hash: str | None = None
    consistent_with: list[int] = msgspec.field(default_factory=list)
    events_checked: int = 0
    events_unsealed: int = 0
    sealed_after_export: int = 0
    mismatches: list[Mismatch] = msgspec.field(default_factory=list)
    #: ``--records``: rows compared per dataset, rows left unchecked, and each that differs.
    records_checked: dict[str, int] = msgspec.field(default_factory=dict)
    records_unchecked: int = 0
    divergences: list[str] = msgspec.field(default_factory=list)
    problems: list[str] = msgspec.field(default_factory=list)
    #: The witnesses whose cosignature of the checkpoint verified.
    witnessed_by: list[str] = msgspec.field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def read_export(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                yield msgspec.json.decode(line)


async def export_events(
    http: httpx.AsyncClient, path: Path, *, progress: Callable[[int], None] | None = None
) -> int:
    """Write every event, oldest first, one JSON object per line, exactly as served.

    The file appears only once complete: a failed download leaves nothing at ``path``.
    ``progress`` is told the number of events written after each page.
    """
    count, cursor = 0, None
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as out:
            while True:
                params: dict[str, str | int] = {"order": "oldest", "limit": 200}
                if cursor:
                    params["cursor"] = cursor
                r = await http.get("/v1/events", params=params)
                r.raise_for_status()
                page = msgspec.json.decode(r.content)
                for item in page["items"]:
                    out.write(msgspec.json.encode(item) + b"\n")
                    count += 1
                if progress is not None:
                    progress(count)
                cursor = page["next_cursor"]
                if cursor is None:
                    break
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count


async def _check_consistency(
    http: httpx.AsyncClient, report: Report, seen: Seen, cp: Checkpoint
) -> None:
    for old in seen.checkpoints:
        size, root = int(old["tree_size"]), base64.b64decode(old["root_hash"])
        if size > cp.tree_size:
            report.fail(f"the registry shrank: a checkpoint of size {size} was seen before")
        elif size == cp.tree_size:
            if root != cp.root_hash:
                report.fail(f"two different roots were signed for size {size}: a fork")
            else:
                report.consistent_with.append(size)
        else:
            r = await http.get(
                "/v1/ledger/proofs/consistency", params={"first": size, "second": cp.tree_size}
            )
            if r.status_code != 200:
                report.fail(f"no consistency proof from {size} to {cp.tree_size}: {r.status_code}")
                continue
            proof = [base64.b64decode(h) for h in r.json()["hashes"]]
            try:
                merkle.verify_consistency(
                    first=size,
                    second=cp.tree_size,
                    first_root=root,
                    second_root=cp.root_hash,
                    proof=proof,
                )
            except merkle.ProofError as exc:
                report.fail(f"checkpoint {cp.tree_size} is not consistent with {size}: {exc}")
            else:
                report.consistent_with.append(size)


async def _published_leaves(http: httpx.AsyncClient, size: int) -> list[tuple[int, bytes]]:
    leaves: list[tuple[int, bytes]] = []
    while len(leaves) < size:
        r = await http.get(
            "/v1/ledger/leaves",
            params={"start": len(leaves), "limit": min(_LEAF_PAGE, size - len(leaves))},
        )
        r.raise_for_status()
        items = r.json()["items"]
        if not items:
            break
        leaves.extend((int(i["seq"]), base64.b64decode(i["leaf_hash"])) for i in items)
    return leaves[:size]


async def _leaf_formats(http: httpx.AsyncClient) -> Callable[[int], int]:
    """The format of leaf ``i``, as the registry publishes the runs of each format.

    A registry that publishes none sealed every leaf in format 1. Trusting the registry
    here costs nothing: a leaf computed in the wrong format does not match the signed root.
    """
    r = await http.get("/v1/ledger/leaf-formats")
    if r.status_code == 404:
        return lambda _: 1
    r.raise_for_status()
    ranges = [
        (int(x["first_leaf"]), int(x["last_leaf"]), int(x["format"])) for x in r.json()["ranges"]
    ]

    def format_of(index: int) -> int:
        for first, last, leaf_format in ranges:
            if first <= index <= last:
                return leaf_format
        return LEAF_FORMAT_JCS  # not sealed yet: the format the registry now writes

    return format_of


def _entry(event: dict[str, Any], leaf_format: int) -> bytes:
    try:
        return canonical_entry(event, leaf_format)
    except ValueError:  # not canonicalisable: hash its sorted JSON, which will not match
        return canonical_entry(event, 1)


async def _check_export(
    http: httpx.AsyncClient, report: Report, cp: Checkpoint, export: Path
) -> None:
    events = list(read_export(export))
    events.sort(key=lambda e: e["seq"] if isinstance(e.get("seq"), int) else -1)
    format_of = await _leaf_formats(http)
    entries: list[tuple[int | None, bytes]] = []
    for index, event in enumerate(events):
        seq = event.get("seq")
        entries.append((seq if isinstance(seq, int) else None, _entry(event, format_of(index))))
    sealed = entries[: cp.tree_size]
    report.events_checked = len(sealed)
    report.events_unsealed = len(entries) - len(sealed)
    # An export older than the checkpoint is checked as a prefix, leaf by leaf.
    report.sealed_after_export = cp.tree_size - len(sealed)
    leaves = [merkle.leaf_hash(entry) for _, entry in sealed]
    if len(sealed) == cp.tree_size:
        if merkle.root_from_leaf_hashes(leaves) == cp.root_hash:
            return
        report.fail("the export does not hash to the checkpoint's root")
    published = await _published_leaves(http, cp.tree_size)
    if merkle.root_from_leaf_hashes(h for _, h in published) != cp.root_hash:
        report.fail("the registry's published leaf hashes do not match its signed checkpoint")
        return
    # Matched by seq, not by position: an event missing from the export is named once,
    # and the events after it still line up with their leaves.
    mine: dict[int | None, bytes] = {}
    for seq, entry in entries:
        mine.setdefault(seq, merkle.leaf_hash(entry))
    last_sealed = published[-1][0] if published else 0
    newest = max((s for s, _ in entries if s is not None), default=0)
    for index, (seq, leaf) in enumerate(published):
        if seq > newest:
            break  # sealed after the export was taken
        if seq not in mine:
            why = "missing from the export: it holds no event with this seq"
            report.mismatches.append(Mismatch(leaf_index=index, seq=seq, reason=why))
        elif mine[seq] != leaf:
            why = "the event's content differs from what was sealed"
            report.mismatches.append(Mismatch(leaf_index=index, seq=seq, reason=why))
    sealed_seqs = {seq for seq, _ in published}
    for seq, _ in entries:
        if seq is None or (seq <= last_sealed and seq not in sealed_seqs):
            why = "in the export but not in the sealed ledger"
            report.mismatches.append(Mismatch(leaf_index=-1, seq=seq, reason=why))
    present = sum(1 for seq, _ in entries if seq in sealed_seqs)
    report.events_checked = present
    report.events_unsealed = sum(1 for s, _ in entries if s is not None and s > last_sealed)
    report.sealed_after_export = sum(1 for seq, _ in published if seq > newest)


async def verify_registry(
    http: httpx.AsyncClient,
    *,
    verifier_key: str,
    state: Seen,
    export: Path | None = None,
    records: Path | None = None,
    witness_keys: Sequence[str] = (),
) -> Report:
    """Run every check against the registry ``http`` points at; ``state`` gains the checkpoint.

    ``records`` (a directory of exports, or a bundle) is checked row by row against the
    events of ``export`` once they are proved sealed (else against the events file in it).
    With ``witness_keys``, the checkpoint must carry a valid cosignature by each.
    """
    report = Report()
    r = await http.get("/v1/ledger/checkpoint")
    if r.status_code != 200:
        report.fail(f"no checkpoint: the registry answered {r.status_code}")
        return report
    try:
        cp = open_checkpoint(r.text, verifier_key, origin=state.origin)
    except CheckpointError as exc:
        report.fail(str(exc))
        return report
    report.origin, report.tree_size, report.root_hash = cp.origin, cp.tree_size, _b64(cp.root_hash)
    for vkey in witness_keys:
        try:
            key = parse_witness_key(vkey)
            verify_cosignature(r.text, key)
        except CosignatureError as exc:
            report.fail(f"witness: {exc}")
        else:
            report.witnessed_by.append(key.name)
    await _check_consistency(http, report, state, cp)
    if export is not None:
        await _check_export(http, report, cp, export)
    if records is not None:
        found = check_records(records, events=export)
        report.records_checked = found.checked
        report.records_unchecked = found.unchecked
        report.divergences = [describe(d) for d in found.divergences]
        for problem in found.problems:
            report.fail(f"records: {problem}")
    if report.mismatches or report.divergences:
        report.ok = False
    if report.ok:
        state.origin = cp.origin
        if all(int(c["tree_size"]) != cp.tree_size for c in state.checkpoints):
            state.checkpoints.append({"tree_size": cp.tree_size, "root_hash": _b64(cp.root_hash)})
            # Consistency is transitive: the newest few are enough to catch a rewrite.
            state.checkpoints = sorted(state.checkpoints, key=lambda c: c["tree_size"])[-8:]
    return report
