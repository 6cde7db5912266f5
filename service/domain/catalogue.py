"""Catalogue sync: a platform's whole catalogue of hostings compared with what it hosts.

A catalogue is applied in parts, each one transaction, resumed by its delivery id:

1. **The checks**, on the request's connection: the sync is claimed (or, for a delivery
   id a crash left half-applied, resumed), every line is COPYed into a temporary table
   (``catalogue_all``), set-wise statements take out the lines in conflict, and the new
   models that some line takes as its base are registered.
2. **The parts**: line *n* belongs to part *n* mod ``parts``. Each part not yet applied
   (``catalogue_sync_parts``) is applied in one transaction: the models only its lines
   name registered, its hostings changed and added. One part runs on the request's
   connection; each helper connection runs another at the same time, its lines COPYed to
   it while the checks stage them. A part without a connection of its own runs after the
   first, in turn.
3. **The end**: when the catalogue says it is complete, the platform's hostings it does
   not name are marked removed; the summary (the sum of the parts' records) is written.

Only real changes are written, each with the ledger event a ``model.hosted`` webhook would
have produced for the same data (``model.registered``, ``hosting.recorded``,
``hosting.updated`` or ``hosting.reinstated``; ``hosting.removed`` for one absent from a
complete catalogue), linked to the stored sync. A hosting recorded or hosted again goes
through ``flag_hosted``, the one rule that makes a hosting of a model under a decision in
force a late target. The events of registered models and new hostings are built by the
statements that write them (``catalogue_writes``), with the bytes ``to_state`` would
give; the rarer changes and removals are compared here, row by row. A crash leaves whole
parts applied or nothing of each; the same delivery sent again applies the rest, and the
same catalogue sent again under another delivery id changes nothing. One request at a
time applies a sync (a session lock); another for the same delivery is a ``Conflict``.

A line that fails validation is rejected with its number and reason, the rest applied; with
``all_or_nothing`` any rejected line refuses the whole catalogue (``InvalidInput``). A line
naming another platform refuses the whole catalogue (``Forbidden``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

import asyncpg
import msgspec

from service.db.pool import DB_FAILURES
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
#: Seconds a platform is asked to wait (``Retry-After``) before sending again a catalogue
#: another request is applying.
BUSY_RETRY_SECONDS = 10

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


_UNSET = msgspec.UNSET
#: The optional fields of a line, and their ``given`` bits.
_FIELDS = tuple(
    (name, q.GIVEN[name]) for name in ("external_id", "revision", "licence", "gated", "downloads")
)
_KINDS = tuple((kind, q.GIVEN[kind]) for kind in DOCUMENT_KINDS)
_NO_DOCUMENTATION = (None,) * (2 * len(DOCUMENT_KINDS))


def _row(number: int, line: CatalogueLine) -> tuple[Any, ...]:
    """The staging row of a line, in ``q.STAGING_COLUMNS`` order. (Run for every line of a
    catalogue while it is staged, which nothing else overlaps: kept to plain loops.)"""
    given = 0
    values: list[Any] = []
    for name, bit in _FIELDS:
        value = getattr(line, name)
        if value is _UNSET:
            value = None
        else:
            given |= bit
        values.append(value)
    documentation = line.documentation
    if documentation is _UNSET:
        values.extend(_NO_DOCUMENTATION)
    else:
        for kind, bit in _KINDS:
            evidence = getattr(documentation, kind)
            if evidence is _UNSET:
                values.extend((None, None))
            else:
                given |= bit
                values.extend((evidence.present, evidence.url))
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


@dataclass(slots=True)
class _Helper:
    """A part applied on a connection of its own, in one transaction: its lines arrive
    while the whole catalogue is staged (``batches``, ``None`` at the end), then it waits
    for the checks (``go``: the rejected lines to leave out) before applying them."""

    conn: asyncpg.Connection
    part: int
    batches: asyncio.Queue[list[tuple[Any, ...]] | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=4)
    )
    go: asyncio.Future[list[int]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    batch: list[tuple[Any, ...]] = field(default_factory=list)
    task: asyncio.Task[None] = field(init=False)

    async def send(self, batch: list[tuple[Any, ...]] | None) -> None:
        """Hand a batch over, unless the helper has failed (then raise its error)."""
        put = asyncio.ensure_future(self.batches.put(batch))
        await asyncio.wait({put, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            self.task.result()


async def _stage(
    conn: asyncpg.Connection,
    catalogue: Catalogue,
    rejections: _Rejections,
    helpers: dict[int, _Helper],
    parts: int,
    seconds: float,
) -> None:
    """COPY the valid lines into ``catalogue_all``, and each helper's share to it. A batch
    is COPYed while the next is parsed (one COPY at a time on the connection)."""
    copying: asyncio.Task[None] | None = None

    async def copy(rows: list[tuple[Any, ...]]) -> None:
        nonlocal copying
        if copying is not None:
            await copying
        copying = asyncio.create_task(
            q.copy_lines(conn, rows, table="catalogue_all", seconds=seconds)
        )

    batch: list[tuple[Any, ...]] = []
    try:
        for number, line in _lines(catalogue, rejections):
            row = _row(number, line)
            batch.append(row)
            helper = helpers.get(number % parts)
            if helper is not None:
                helper.batch.append(row)
                if len(helper.batch) >= COPY_BATCH:
                    await helper.send(helper.batch)
                    helper.batch = []
            if len(batch) >= COPY_BATCH:
                await copy(batch)
                batch = []
        if batch:
            await copy(batch)
    except BaseException:
        if copying is not None:  # the batch under way ends before the rollback
            with suppress(Exception):
                await copying
        raise
    if copying is not None:
        await copying
    for helper in helpers.values():
        if helper.batch:
            await helper.send(helper.batch)
        await helper.send(None)
    if rejections.names:
        await q.keep_names(conn, rejections.names, seconds=seconds)


async def _apply_part(
    conn: asyncpg.Connection, catalogue: Catalogue, *, sync_id: UUID, part: int, seconds: float
) -> None:
    """Apply a part's lines (in ``catalogue_lines``) in the caller's transaction, and record
    what it did with it: the models only its lines name registered, its hostings changed
    and added, each with its event."""
    link = {"catalogue": {"id": str(sync_id), "delivery_id": catalogue.delivery_id}}
    at = catalogue.occurred_at
    platform_id = catalogue.platform_id
    await conn.execute("ANALYZE catalogue_lines", timeout=seconds)
    registered = await w.register_models(
        conn, platform_id=platform_id, occurred_at=at, bases=False, seconds=seconds
    )
    events = registered
    changed = 0
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
    await q.record_part(
        conn,
        sync_id=sync_id,
        part=part,
        registered=registered,
        added=added,
        changed=changed,
        unchanged=unchanged,
        events=events,
        seconds=seconds,
    )


async def _help(helper: _Helper, catalogue: Catalogue, *, sync_id: UUID, seconds: float) -> None:
    """A helper's part, in one transaction on its own connection (see ``_Helper``)."""
    conn = helper.conn
    async with conn.transaction():
        await q.start_work(conn, seconds=seconds)
        await q.create_part(conn, seconds=seconds)
        while (batch := await helper.batches.get()) is not None:
            await q.copy_lines(conn, batch, table="catalogue_lines", seconds=seconds)
        rejected = await helper.go
        if rejected:
            await q.drop_lines(conn, rejected, seconds=seconds)
        await _apply_part(conn, catalogue, sync_id=sync_id, part=helper.part, seconds=seconds)


async def _own_part(
    conn: asyncpg.Connection,
    catalogue: Catalogue,
    *,
    sync_id: UUID,
    parts: int,
    part: int,
    seconds: float,
) -> None:
    """A part applied on the connection holding the whole catalogue, in one transaction."""
    async with conn.transaction():
        await q.start_work(conn, seconds=seconds)
        await q.create_part(conn, seconds=seconds)
        await q.fill_part(conn, parts=parts, part=part, seconds=seconds)
        await _apply_part(conn, catalogue, sync_id=sync_id, part=part, seconds=seconds)


async def _finish(helpers: list[_Helper], error: BaseException | None) -> None:
    """Wait for every helper to end; one still working when ``error`` stopped the sync is
    cancelled, and its transaction rolls back."""
    for helper in helpers:
        if error is not None and not helper.task.done():
            helper.task.cancel()
        await asyncio.wait({helper.task})  # (a cancellation of this task still reaches it)
        failed = None if helper.task.cancelled() else helper.task.exception()
        if failed is not None and error is None:
            raise failed


async def _claim(
    conn: asyncpg.Connection, catalogue: Catalogue, *, parts: int, seconds: float
) -> asyncpg.Record | CatalogueSummary:
    """The sync to apply (new, or one a crash left half-applied), or the answer given to
    its delivery id before (``duplicate``)."""
    claimed = await q.claim_sync(
        conn,
        platform_id=catalogue.platform_id,
        delivery_id=catalogue.delivery_id,
        format=catalogue.format,
        complete=catalogue.complete,
        body_sha256=catalogue.body_sha256,
        body_bytes=catalogue.body_bytes,
        parts=parts,
        seconds=seconds,
    )
    if claimed is not None:
        return claimed
    existing = await q.select_sync(
        conn,
        platform_id=catalogue.platform_id,
        delivery_id=catalogue.delivery_id,
        seconds=seconds,
    )
    if existing is None:  # pragma: no cover - a claimed id is never deleted
        raise Conflict("the delivery id is being processed; retry")
    if bytes(existing["body_sha256"]) != catalogue.body_sha256:
        raise Conflict(
            f"catalogue {catalogue.delivery_id!r} was accepted before with a different body"
        )
    if existing["state"] == "done":
        summary = msgspec.convert(existing["summary"], CatalogueSummary)
        return msgspec.structs.replace(summary, duplicate=True)
    return existing


async def _remove_absent(
    conn: asyncpg.Connection, catalogue: Catalogue, *, sync_id: UUID, seconds: float
) -> tuple[int, int]:
    """Mark removed the platform's hostings a complete catalogue leaves out: how many, and
    the events written."""
    await q.find_gone(conn, platform_id=catalogue.platform_id, seconds=seconds)
    extra = {
        "catalogue": {"id": str(sync_id), "delivery_id": catalogue.delivery_id},
        "reason": "absent from a complete catalogue",
    }
    removed = events = 0
    for lo, hi in await _chunks(conn, "gone", seconds):
        before = {
            h.id: h
            for h in _hostings(
                await q.lock_chunk(conn, step="gone", after=lo, upto=hi, seconds=seconds)
            )
        }
        written = _hostings(await w.remove_hostings(conn, after=lo, upto=hi, seconds=seconds))
        gone = [
            _hosting_event(
                "hosting.removed",
                h,
                before=before[h.id],
                occurred_at=catalogue.occurred_at,
                extra=extra,
            )
            for h in written
        ]
        events += len(await record_events(conn, [e for e in gone if e is not None]))
        removed += len(written)
    return removed, events


async def sync(
    conn: asyncpg.Connection,
    catalogue: Catalogue,
    *,
    helpers: Sequence[asyncpg.Connection] = (),
    parts: int = 1,
    seconds: float,
) -> CatalogueSummary:
    """Apply a catalogue; the summary of what it changed. ``conn`` is in no transaction:
    the sync runs its own (see the module's description). ``parts``: how many parts a new
    sync is applied in; ``helpers``: connections, each in no transaction, on which parts
    are applied at the same time as one on ``conn``.

    A delivery id accepted before is answered with its summary (``duplicate``) when the body
    is the same and it was applied whole, resumed when it was not (a part that committed is
    not applied again), and is a ``Conflict`` when the body is not the same or another
    request is applying it."""
    sync_id: UUID | None = None
    helping: list[_Helper] = []
    error: BaseException | None = None
    try:
        # The checks, in one transaction: the sync claimed (or resumed), the whole catalogue
        # staged, lines in conflict taken out, the base models its lines need registered.
        async with conn.transaction():
            await q.start_work(conn, seconds=seconds)
            claim = await _claim(conn, catalogue, parts=parts, seconds=seconds)
            if isinstance(claim, CatalogueSummary):
                return claim
            if not await q.lock_sync(conn, sync_id=claim["id"], seconds=seconds):
                raise Conflict(
                    f"catalogue {catalogue.delivery_id!r} is being applied by another "
                    "request; send it again once that one has answered",
                    retry_after=BUSY_RETRY_SECONDS,
                )
            sync_id = claim["id"]
            received_at: datetime = claim["received_at"]
            total: int = claim["parts"]
            done = await q.select_parts(conn, sync_id=sync_id, seconds=seconds)
            pending = [part for part in range(total) if part not in done]
            for helper_conn, part in zip(helpers, pending[1:], strict=False):
                helper = _Helper(helper_conn, part)
                helper.task = asyncio.create_task(
                    _help(helper, catalogue, sync_id=sync_id, seconds=seconds)
                )
                helping.append(helper)
            own = [part for part in pending if part not in {h.part for h in helping}]
            await q.create_whole(conn, seconds=seconds)
            await q.create_part(conn, seconds=seconds)
            rejections = _Rejections()
            await _stage(conn, catalogue, rejections, {h.part: h for h in helping}, total, seconds)
            rejected: list[int] = []
            for row in await q.reject_conflicts(
                conn, platform_id=catalogue.platform_id, seconds=seconds
            ):
                rejections.add(row["line"], row["reason"])
                rejected.append(row["line"])
            if rejections.count and catalogue.all_or_nothing:
                listed = rejections.listed
                raise InvalidInput(
                    f"{rejections.count} line(s) of the catalogue were rejected and it asked "
                    "for all or nothing; nothing was written. First: line "
                    f"{listed[0].line}: {listed[0].reason}",
                    errors=[(f"line {r.line}", r.reason) for r in listed],
                )
            registered = await w.register_models(
                conn,
                platform_id=catalogue.platform_id,
                occurred_at=catalogue.occurred_at,
                bases=True,
                seconds=seconds,
            )
            await q.record_checks(conn, sync_id=sync_id, registered=registered, seconds=seconds)

        # The parts, at once: each its own transaction.
        for helper in helping:
            helper.go.set_result([line for line in rejected if line % total == helper.part])

        async def own_parts() -> None:
            for part in own:
                await _own_part(
                    conn, catalogue, sync_id=sync_id, parts=total, part=part, seconds=seconds
                )

        outcomes = await asyncio.gather(
            own_parts(), *(h.task for h in helping), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

        # What a complete catalogue leaves out, and the summary of every part.
        async with conn.transaction():
            await q.start_work(conn, seconds=seconds)
            await q.create_part(conn, seconds=seconds)
            removed, removal_events = (
                await _remove_absent(conn, catalogue, sync_id=sync_id, seconds=seconds)
                if catalogue.complete
                else (0, 0)
            )
            did = await q.sum_parts(conn, sync_id=sync_id, seconds=seconds)
            summary = CatalogueSummary(
                sync_id=sync_id,
                delivery_id=catalogue.delivery_id,
                format=catalogue.format,
                complete=catalogue.complete,
                received_at=received_at,
                added=did["added"],
                changed=did["changed"],
                removed=removed,
                unchanged=did["unchanged"],
                registered=did["registered"],
                rejected=sorted(rejections.listed, key=lambda r: r.line),
                rejected_more=rejections.more,
                events=did["events"] + removal_events,
            )
            await q.set_summary(
                conn, sync_id=sync_id, summary=msgspec.to_builtins(summary), seconds=seconds
            )
        return summary
    except BaseException as exc:
        error = exc
        raise
    finally:
        await _finish(helping, error)
        if sync_id is not None:
            # A connection lost or abandoned took its session's tables and lock with it.
            with suppress(*DB_FAILURES):
                await q.drop_whole(conn, seconds=seconds)
                await q.unlock_sync(conn, sync_id=sync_id, seconds=seconds)
