"""Catalogue sync: a platform's whole catalogue of hostings compared with what it hosts.

A catalogue is applied in one transaction (not in resumable parts): its lines are COPYed
into a temporary staging table, and set-wise statements find the conflicting lines, the
models to register, the hostings to add, the ones to change and, when the catalogue says it
is complete, the ones to remove. Only real changes are written, each with the ledger event
a ``model.hosted`` webhook would have produced for the same data (``model.registered``,
``hosting.recorded``, ``hosting.updated`` or ``hosting.reinstated``; ``hosting.removed``
for one absent from a complete catalogue), linked to the stored sync. A hosting recorded
or hosted again goes through ``flag_hosted``, the one rule that makes a hosting of a model
under a decision in force a late target. The events of registered models and new hostings
are built by the statements that write them (``catalogue_writes``), with the bytes
``to_state`` would give; the rarer changes and removals are compared here, row by row.
A crash before the commit leaves nothing; the same catalogue sent again (under any delivery
id) changes nothing.

A line that fails validation is rejected with its number and reason, the rest applied; with
``all_or_nothing`` any rejected line refuses the whole catalogue (``InvalidInput``). A line
naming another platform refuses the whole catalogue (``Forbidden``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import catalogue as q
from service.db.queries import catalogue_writes as w
from service.domain.decommission_targets import flag_hosted
from service.domain.ledger import NewEvent, diff, record_events, to_state
from service.domain.purls import refresh_purls
from service.errors import Conflict, Forbidden, InvalidInput
from service.platforms import cyclonedx
from service.schemas.catalogue import (
    CatalogueFormat,
    CatalogueLine,
    CatalogueSummary,
    RejectedLine,
)
from service.schemas.hostings import DOCUMENT_KINDS, Hosting

__all__ = ["MAX_LISTED", "Catalogue", "sync"]

#: Rejected lines listed in the answer; the rest are counted.
MAX_LISTED = 1000
#: Lines changed or removed per statement: their events are built here, which bounds the
#: service's memory.
CHUNK = 2000
#: New hostings per statement: their events are built by the statement, and only their ids
#: come back.
NEW_CHUNK = 20000
#: Lines COPYed per round trip.
COPY_BATCH = 5000

_line_decoder = msgspec.json.Decoder(CatalogueLine)
_loose = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalogue:
    """A verified catalogue, spooled to ``path``, and what its request asked."""

    platform_id: UUID
    platform_slug: str
    delivery_id: str
    format: CatalogueFormat
    path: Path
    body_sha256: bytes
    body_bytes: int
    complete: bool
    all_or_nothing: bool
    occurred_at: datetime


@dataclass(slots=True)
class _Rejections:
    listed: list[RejectedLine] = field(default_factory=list)
    more: int = 0
    names: list[str] = field(default_factory=list)

    def add(self, line: int, reason: str, name: str | None = None) -> None:
        if len(self.listed) < MAX_LISTED:
            self.listed.append(RejectedLine(line=line, reason=reason[:500]))
        else:
            self.more += 1
        if name is not None:
            self.names.append(name)

    @property
    def count(self) -> int:
        return len(self.listed) + self.more


def _ndjson(stream: BinaryIO) -> Iterator[tuple[int, CatalogueLine | str, str | None]]:
    """Each non-blank line: its number, the hosting or why not, and the name it gave."""
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            yield number, _line_decoder.decode(raw), None
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            yield number, str(exc), _name_in(raw)


def _name_in(raw: bytes) -> str | None:
    """The model a line that failed validation names, if it names one: a complete
    catalogue does not remove a hosting whose line was merely malformed."""
    try:
        loose = _loose.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    model = loose.get("model") if isinstance(loose, dict) else None
    return model if isinstance(model, str) else None


def _row(number: int, line: CatalogueLine) -> tuple[Any, ...]:
    """The staging row of a line, in ``q.STAGING_COLUMNS`` order."""
    given = 0
    values: list[Any] = []
    for name in ("external_id", "revision", "licence", "gated", "downloads"):
        value = getattr(line, name)
        if value is not msgspec.UNSET:
            given |= q.GIVEN[name]
            values.append(value)
        else:
            values.append(None)
    documentation = line.documentation
    for kind in DOCUMENT_KINDS:
        evidence = msgspec.UNSET if documentation is msgspec.UNSET else getattr(documentation, kind)
        if evidence is msgspec.UNSET:
            values += [None, None]
        else:
            given |= q.GIVEN[kind]
            values += [evidence.present, evidence.url]
    base = line.base_model
    return (number, line.model, line.url, given, *values, base, line.relation if base else None)


def _lines(catalogue: Catalogue, rejections: _Rejections) -> Iterator[tuple[int, CatalogueLine]]:
    """The valid lines of the catalogue; the others are noted in ``rejections``."""
    with catalogue.path.open("rb") as stream:
        parsed = (
            _ndjson(stream) if catalogue.format == "ndjson" else cyclonedx.hostings(stream.read())
        )
        for number, item, name in parsed:
            if isinstance(item, str):
                rejections.add(number, item, name)
                continue
            if item.platform is not None and item.platform != catalogue.platform_slug:
                raise Forbidden(
                    f"line {number} names platform {item.platform!r}: a platform's catalogue "
                    "lists its own hostings only; nothing was written"
                )
            if item.relation is not None and item.base_model is None:
                rejections.add(number, "relation needs a base_model", item.model)
                continue
            yield number, item


async def _stage(
    conn: asyncpg.Connection, catalogue: Catalogue, rejections: _Rejections, seconds: float
) -> None:
    batch: list[tuple[Any, ...]] = []
    for number, line in _lines(catalogue, rejections):
        batch.append(_row(number, line))
        if len(batch) >= COPY_BATCH:
            await q.copy_lines(conn, batch, seconds=seconds)
            batch = []
    if batch:
        await q.copy_lines(conn, batch, seconds=seconds)
    if rejections.names:
        await q.keep_names(conn, rejections.names, seconds=seconds)


async def _chunks(
    conn: asyncpg.Connection, step: str, seconds: float, size: int = CHUNK
) -> list[tuple[int, int]]:
    """The ``(after, upto)`` line ranges of a step's work, ``size`` items each."""
    bounds = await q.select_chunk_bounds(conn, step=step, size=size, seconds=seconds)
    return list(zip([0, *bounds], bounds, strict=False))


def _hosting_event(
    kind: str,
    after: Hosting,
    *,
    before: Hosting | None,
    occurred_at: datetime,
    extra: dict[str, Any],
) -> NewEvent | None:
    state = to_state(after)
    changes = None if before is None else diff(to_state(before), state)
    if before is not None and not changes:
        return None
    return NewEvent(
        stage="prevent",
        kind=kind,
        subject_type="hosting",
        subject_id=after.id,
        model_id=after.model_id,
        platform_id=after.platform_id,
        actor_id=None,
        occurred_at=occurred_at,
        state=state,
        changes=changes,
        extra=extra,
    )


async def _add_new(
    conn: asyncpg.Connection, catalogue: Catalogue, *, sync_id: UUID, plain: bool, seconds: float
) -> int:
    """Add the new hostings, each with its event; how many. ``plain``: the statements run
    without ON CONFLICT, in a savepoint the caller takes (one for all the chunks, so that a
    catalogue of any size takes one subtransaction); if another writer added one of the
    hostings meanwhile, the caller rolls it back and runs this again with ON CONFLICT DO
    NOTHING, which leaves that hosting to its writer."""
    added = 0
    for lo, hi in await _chunks(conn, "new", seconds, NEW_CHUNK):
        fresh = [
            (r["id"], r["model_id"])
            for r in await w.insert_hostings(
                conn,
                platform_id=catalogue.platform_id,
                after=lo,
                upto=hi,
                occurred_at=catalogue.occurred_at,
                sync_id=sync_id,
                delivery_id=catalogue.delivery_id,
                plain=plain,
                seconds=seconds,
            )
        ]
        await refresh_purls(conn, hosting_ids=[hosting_id for hosting_id, _ in fresh])
        added += len(fresh)
        if fresh:
            await flag_hosted(conn, hostings=fresh, actor_id=None)
    return added


def _hostings(rows: list[asyncpg.Record]) -> list[Hosting]:
    return [msgspec.convert(dict(r), Hosting) for r in rows]


async def sync(
    conn: asyncpg.Connection, catalogue: Catalogue, *, seconds: float
) -> CatalogueSummary:
    """Apply a catalogue in the caller's transaction; the summary of what it changed.

    A delivery id accepted before is answered with its summary (``duplicate``) when the body
    is the same, and is a ``Conflict`` when it is not."""
    claimed = await q.claim_sync(
        conn,
        platform_id=catalogue.platform_id,
        delivery_id=catalogue.delivery_id,
        format=catalogue.format,
        complete=catalogue.complete,
        body_sha256=catalogue.body_sha256,
        body_bytes=catalogue.body_bytes,
    )
    if claimed is None:
        existing = await q.select_sync(
            conn, platform_id=catalogue.platform_id, delivery_id=catalogue.delivery_id
        )
        if existing is None:  # pragma: no cover - a claimed id is never deleted
            raise Conflict("the delivery id is being processed; retry")
        if bytes(existing["body_sha256"]) != catalogue.body_sha256:
            raise Conflict(
                f"catalogue {catalogue.delivery_id!r} was accepted before with a different body"
            )
        summary = msgspec.convert(existing["summary"], CatalogueSummary)
        return msgspec.structs.replace(summary, duplicate=True)
    sync_id: UUID = claimed["id"]
    link = {"catalogue": {"id": str(sync_id), "delivery_id": catalogue.delivery_id}}
    at = catalogue.occurred_at
    platform_id = catalogue.platform_id

    await q.create_staging(conn, seconds=seconds)
    rejections = _Rejections()
    await _stage(conn, catalogue, rejections, seconds)
    for row in await q.reject_conflicts(conn, platform_id=platform_id, seconds=seconds):
        rejections.add(row["line"], row["reason"])
    if rejections.count and catalogue.all_or_nothing:
        listed = rejections.listed
        raise InvalidInput(
            f"{rejections.count} line(s) of the catalogue were rejected and it asked for all "
            f"or nothing; nothing was written. First: line {listed[0].line}: {listed[0].reason}",
            errors=[(f"line {r.line}", r.reason) for r in listed],
        )

    registered = await w.register_models(
        conn, platform_id=platform_id, occurred_at=at, seconds=seconds
    )
    events = registered

    changed = added = removed = 0
    await q.find_changed(conn, platform_id=platform_id, seconds=seconds)
    await q.find_new_hostings(conn, platform_id=platform_id, seconds=seconds)
    unchanged = await q.count_unchanged(conn, seconds=seconds)

    for lo, hi in await _chunks(conn, "changed", seconds):
        before = {
            h.id: h
            for h in _hostings(
                await q.lock_chunk(conn, step="changed", after=lo, upto=hi, seconds=seconds)
            )
        }
        written = _hostings(
            await w.update_hostings(conn, after=lo, upto=hi, occurred_at=at, seconds=seconds)
        )
        unchanged += len(before) - len(written)
        await refresh_purls(
            conn, hosting_ids=[h.id for h in written if h.revision != before[h.id].revision]
        )
        new_events = []
        for h in written:
            old = before[h.id]
            kind = "hosting.reinstated" if old.status != "hosted" else "hosting.updated"
            event = _hosting_event(kind, h, before=old, occurred_at=at, extra=link)
            if event is not None:
                new_events.append(event)
        events += len(await record_events(conn, new_events))
        changed += len(written)
        rehosted = [(h.id, h.model_id) for h in written if before[h.id].status != "hosted"]
        if rehosted:
            await flag_hosted(conn, hostings=rehosted, actor_id=None)

    try:
        async with conn.transaction():
            added = await _add_new(conn, catalogue, sync_id=sync_id, plain=True, seconds=seconds)
    except asyncpg.UniqueViolationError:
        added = await _add_new(conn, catalogue, sync_id=sync_id, plain=False, seconds=seconds)
    events += added

    if catalogue.complete:
        await q.find_gone(conn, platform_id=platform_id, seconds=seconds)
        gone_extra = {**link, "reason": "absent from a complete catalogue"}
        for lo, hi in await _chunks(conn, "gone", seconds):
            before = {
                h.id: h
                for h in _hostings(
                    await q.lock_chunk(conn, step="gone", after=lo, upto=hi, seconds=seconds)
                )
            }
            written = _hostings(await w.remove_hostings(conn, after=lo, upto=hi, seconds=seconds))
            gone_events = [
                _hosting_event(
                    "hosting.removed", h, before=before[h.id], occurred_at=at, extra=gone_extra
                )
                for h in written
            ]
            events += len(await record_events(conn, [e for e in gone_events if e is not None]))
            removed += len(written)

    summary = CatalogueSummary(
        sync_id=sync_id,
        delivery_id=catalogue.delivery_id,
        format=catalogue.format,
        complete=catalogue.complete,
        received_at=claimed["received_at"],
        added=added,
        changed=changed,
        removed=removed,
        unchanged=unchanged,
        registered=registered,
        rejected=sorted(rejections.listed, key=lambda r: r.line),
        rejected_more=rejections.more,
        events=events,
    )
    await q.set_summary(conn, sync_id=sync_id, summary=msgspec.to_builtins(summary))
    return summary
