"""Signed export bundles: data files, a manifest describing them, and a signature.

A bundle is a set of files:

- ``<dataset>.<csv|jsonl>`` for each dataset asked for, exactly as the streaming export
  endpoint serves it;
- ``manifest.json``: the format version, the filters, the snapshot's newest ledger sequence
  number, the ledger checkpoint the bundle is consistent with (the newest signed checkpoint
  in the same snapshot, note included, so it can be checked on its own), and for every
  data file its row count, byte size and SHA-256;
- ``manifest.sig``: a C2SP signed note by the registry's Ed25519 key (the checkpoint key,
  kept outside the database) whose text names the SHA-256 of ``manifest.json``.

``verify_bundle`` checks all of that offline, with nothing but the registry's verifier key:
the signature, the manifest's hash, every file's hash, size and row count, that no file is
missing or extra, and the checkpoint's own signature.

All files are built from one REPEATABLE READ snapshot, so they agree with each other.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import msgspec

from service.db.queries import exports as q
from service.db.queries import ledger_tree as ledger_q
from service.domain.bundle_checks import check_coverage, check_records_against
from service.domain.checkpoints import (
    CheckpointError,
    Signer,
    open_checkpoint,
    signed_text,
)
from service.domain.exports import ExportFilters, Format

__all__ = [
    "MANIFEST",
    "SIGNATURE",
    "BundleFile",
    "FileSink",
    "Manifest",
    "build_bundle",
    "local_directory",
    "verify_bundle",
]

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
BUNDLE_FORMAT = "risk-registry-export/1"
_SIGNED_TEXT = "risk-registry export manifest"
_DASH = "\u2014"
_manifest_encoder = msgspec.json.Encoder(order="sorted")
_SEAL_POLL_SECONDS = 0.2
#: No new checkpoint for this long: no sealer is running, and waiting longer is pointless.
_IDLE_SEALER_SECONDS = 5.0


class BundleFile(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    dataset: str
    rows: int
    bytes: int
    sha256: str


class BundleCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    tree_size: int
    root_hash: str
    #: The signed checkpoint note itself, verifiable with the registry's key.
    note: str
    #: The seq of the checkpoint's last leaf: the bundle's events go no further.
    last_seq: int | None = None


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    format: str
    created_at: datetime
    datasets: list[str]
    file_format: Format
    filters: dict[str, Any]
    #: The newest ledger sequence number in the bundle's snapshot.
    ledger_max_seq: int
    checkpoint: BundleCheckpoint | None
    files: list[BundleFile]
    #: Events recorded in the snapshot after the checkpoint's last one, left out of the
    #: events file (the export cut at the checkpoint rather than wait longer for it).
    events_left_out: int = 0
    #: The records those events concern: their rows may be newer than the events file,
    #: so the records check passes over them.
    changed_after_checkpoint: list[str] = msgspec.field(default_factory=list)


class FileSink(Protocol):
    """Where one bundle file goes: a local file, or chunks in the database."""

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


OpenFile = Callable[[str], Awaitable[FileSink]]
Progress = Callable[[int, int], Awaitable[None]]


class _Counting:
    """Hashes, counts and forwards what COPY produces."""

    def __init__(self, sink: FileSink, on_chunk: Callable[[int], Awaitable[None]]) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0
        self.lines = 0
        self._on_chunk = on_chunk

    async def __call__(self, chunk: bytes) -> None:
        data = bytes(chunk)
        self.sha.update(data)
        self.size += len(data)
        self.lines += data.count(b"\n")
        await self.sink.write(data)
        await self._on_chunk(self.lines)


def filters_document(filters: ExportFilters, platform: str | None) -> dict[str, Any]:
    return {
        "from": filters.since.isoformat() if filters.since else None,
        "to": filters.until.isoformat() if filters.until else None,
        "platform": platform,
        "stage": filters.stage,
        "model_id": str(filters.model_id) if filters.model_id else None,
    }


async def count_rows(
    conn: asyncpg.Connection,
    *,
    datasets: Iterable[str],
    filters: ExportFilters,
    seconds: float | None = None,
    through_seq: int | None = None,
) -> int:
    params = filters.as_params()
    return sum(
        [
            await q.count_rows(
                conn, dataset=d, filters=params, seconds=seconds, through_seq=through_seq
            )
            for d in datasets
        ]
    )


async def wait_for_seal(conn: asyncpg.Connection, *, seconds: float) -> bool:
    """Wait up to ``seconds`` for a checkpoint covering the ledger's newest event; True if
    one does. Gives up early when no checkpoint has appeared for a while (no sealer runs)."""
    deadline = time.monotonic() + seconds
    last_size, moved_at = -1, time.monotonic()
    while True:
        head = await ledger_q.select_ledger_head(conn)
        row = await ledger_q.select_latest_checkpoint(conn)
        sealed = int(row["last_seq"]) if row is not None else 0
        if sealed >= head:
            return True
        size = int(row["tree_size"]) if row is not None else 0
        now = time.monotonic()
        if size != last_size:
            last_size, moved_at = size, now
        if now >= deadline or now - moved_at > _IDLE_SEALER_SECONDS:
            return False
        await asyncio.sleep(_SEAL_POLL_SECONDS)


async def build_bundle(
    conn: asyncpg.Connection,
    *,
    datasets: list[str],
    fmt: Format,
    filters: ExportFilters,
    platform: str | None,
    signer: Signer,
    open_file: OpenFile,
    progress: Progress | None = None,
    seconds: float = 3600.0,
    redact: bool = False,
    seal_wait: float = 0.0,
) -> Manifest:
    """Write every file of a bundle through ``open_file``; returns the manifest written.

    Every event in the bundle is covered by the checkpoint its manifest names: the export
    first waits up to ``seal_wait`` seconds for the sealer to cover the ledger's head, then
    cuts the events file at the newest checkpoint and says in the manifest what it left out.
    """
    for dataset in datasets:
        if dataset not in q.DATASETS:
            raise ValueError(f"no dataset {dataset!r}")
    await wait_for_seal(conn, seconds=seal_wait)
    files: list[BundleFile] = []
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await q.set_export_session(conn)
        row = await ledger_q.select_latest_checkpoint(conn)
        through = int(row["last_seq"]) if row is not None else 0
        total = await count_rows(
            conn, datasets=datasets, filters=filters, seconds=seconds, through_seq=through
        )
        max_seq = await ledger_q.select_ledger_head(conn)
        left_out, changed = 0, list[str]()
        if max_seq > through:
            left_out, changed = await q.select_subjects_after(conn, seq=through)
        done_before = 0
        for dataset in datasets:
            name = f"{dataset}.{fmt}"
            sink = await open_file(name)

            async def report(lines: int, base: int = done_before) -> None:
                if progress is not None:
                    await progress(min(base + lines, total), total)

            counting = _Counting(sink, report)
            copy = q.copy_csv if fmt == "csv" else q.copy_jsonl
            status = await copy(
                conn,
                dataset=dataset,
                filters=filters.as_params(),
                output=counting,
                seconds=seconds,
                redact=redact,
                through_seq=through,
            )
            await sink.close()
            rows = int(status.split()[-1])
            done_before += rows
            files.append(
                BundleFile(
                    name=name,
                    dataset=dataset,
                    rows=rows,
                    bytes=counting.size,
                    sha256=counting.sha.hexdigest(),
                )
            )
    checkpoint = None
    if row is not None:
        checkpoint = BundleCheckpoint(
            tree_size=row["tree_size"],
            root_hash=base64.b64encode(bytes(row["root_hash"])).decode(),
            note=row["note"],
            last_seq=through,
        )
    manifest = Manifest(
        format=BUNDLE_FORMAT,
        created_at=datetime.now(UTC),
        datasets=datasets,
        file_format=fmt,
        filters={**filters_document(filters, platform), "redacted": redact},
        ledger_max_seq=max_seq,
        checkpoint=checkpoint,
        files=files,
        events_left_out=left_out if "events" in datasets else 0,
        changed_after_checkpoint=changed,
    )
    encoded = msgspec.json.format(_manifest_encoder.encode(manifest), indent=2) + b"\n"
    for name, data in ((MANIFEST, encoded), (SIGNATURE, sign_manifest(signer, encoded))):
        sink = await open_file(name)
        await sink.write(data)
        await sink.close()
    if progress is not None:
        await progress(total, total)
    return manifest


def sign_manifest(signer: Signer, manifest: bytes) -> bytes:
    body = f"{_SIGNED_TEXT}\nsha256:{hashlib.sha256(manifest).hexdigest()}\n"
    return signer.sign(body).encode()


# -- verification ------------------------------------------------------------------------------


def _count_rows(path: Path, fmt: str) -> int:
    with path.open(newline="", encoding="utf-8") as f:
        if fmt == "csv":
            return max(sum(1 for _ in csv.reader(f)) - 1, 0)
        return sum(1 for line in f if line.strip())


def verify_bundle(directory: Path, vkey: str) -> list[str]:
    """Every problem found in the bundle at ``directory``; an empty list means it is intact."""
    problems: list[str] = []
    try:
        manifest_bytes = (directory / MANIFEST).read_bytes()
        note = (directory / SIGNATURE).read_text()
    except OSError as exc:
        return [f"cannot read the manifest or its signature: {exc.strerror}"]
    try:
        body = signed_text(note, vkey, what="the manifest")
    except CheckpointError as exc:
        return [str(exc)]
    if body != f"{_SIGNED_TEXT}\nsha256:{hashlib.sha256(manifest_bytes).hexdigest()}\n":
        return ["manifest.json does not match its signature: it was changed after signing"]
    try:
        manifest = msgspec.json.decode(manifest_bytes, type=Manifest)
    except msgspec.ValidationError as exc:
        return [f"manifest.json is not a bundle manifest: {exc}"]
    if manifest.format != BUNDLE_FORMAT:
        problems.append(f"unknown bundle format {manifest.format!r}")
    expected = {f.name for f in manifest.files} | {MANIFEST, SIGNATURE}
    present = {p.name for p in directory.iterdir() if p.is_file()}
    problems += [f"{name}: missing" for name in sorted(expected - present)]
    problems += [f"{name}: not listed in the manifest" for name in sorted(present - expected)]
    for entry in manifest.files:
        path = directory / entry.name
        if not path.is_file():
            continue
        sha = hashlib.sha256()
        size = 0
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
                size += len(block)
        if size != entry.bytes:
            problems.append(f"{entry.name}: {size} bytes, the manifest says {entry.bytes}")
        if sha.hexdigest() != entry.sha256:
            problems.append(f"{entry.name}: SHA-256 differs from the manifest")
            continue
        rows = _count_rows(path, manifest.file_format)
        if rows != entry.rows:
            problems.append(f"{entry.name}: {rows} rows, the manifest says {entry.rows}")
    if manifest.checkpoint is not None:
        try:
            checkpoint = open_checkpoint(manifest.checkpoint.note, vkey)
        except CheckpointError as exc:
            problems.append(f"checkpoint: {exc}")
        else:
            if (
                checkpoint.tree_size != manifest.checkpoint.tree_size
                or base64.b64encode(checkpoint.root_hash).decode() != manifest.checkpoint.root_hash
            ):
                problems.append("checkpoint: the note does not say what the manifest says")
            if checkpoint.tree_size > manifest.ledger_max_seq:
                problems.append("checkpoint: covers more events than the bundle's snapshot")
    if problems:
        return problems
    return check_coverage(directory, manifest) + check_records_against(directory, manifest)


class LocalFile:
    """A bundle file written to a local directory."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")

    async def write(self, data: bytes) -> None:
        self._file.write(data)

    async def close(self) -> None:
        self._file.close()


def local_directory(directory: Path) -> OpenFile:
    directory.mkdir(parents=True, exist_ok=True)

    async def open_file(name: str) -> FileSink:
        return LocalFile(directory / name)

    return open_file
