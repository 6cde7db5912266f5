"""Hostings: which model a platform hosts, under which licence, with which documentation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import hostings as q
from service.domain.as_of import check_moment, from_state, state_as_of
from service.domain.decommission_targets import flag_hosted
from service.domain.ledger import NewEvent, diff, record_event, record_events, to_state
from service.domain.models import resolve_model_id
from service.domain.platforms import get_platform, platform_scope
from service.domain.purls import refresh_purls
from service.domain.times import check_claimed
from service.errors import Conflict, Forbidden, InvalidInput, NotFound
from service.schemas.hostings import (
    DOCUMENT_KINDS,
    Documentation,
    Evidence,
    Hosting,
    HostingIn,
    HostingPatch,
)

__all__ = [
    "BatchWriter",
    "apply_patch",
    "apply_patches",
    "apply_patches_at",
    "get_hosting",
    "list_hostings",
    "lock_hosting_by_external_id",
    "lock_hosting_of",
    "lock_hostings_of",
    "record_hosting",
    "rename_hosting",
    "update_hosting",
]

#: The fields a patch may change besides the documentation.
_WRITABLE = (
    "external_id",
    "url",
    "revision",
    "licence",
    "gated",
    "disabled",
    "status",
    "downloads",
)

#: The ledger kind for a hosting whose status becomes the key.
_STATUS_KINDS = {
    "removed": "hosting.removed",
    "restricted": "hosting.restricted",
    "hosted": "hosting.reinstated",
}


async def _platform_of_new_hosting(
    conn: asyncpg.Connection, *, named: str | None, caller_platform_id: UUID | None
) -> UUID:
    """The platform a new hosting is recorded on: a platform records hostings on its own
    platform only; any other caller names the platform."""
    if caller_platform_id is not None:
        own = await get_platform(conn, platform_id=caller_platform_id)
        if named not in (None, own.slug):
            raise Forbidden("a platform key records hostings on its own platform only")
        return own.id
    if named is None:
        raise InvalidInput("name the platform that hosts the model", key="platform")
    try:
        return (await get_platform(conn, slug=named)).id
    except NotFound as exc:
        raise InvalidInput(f"no platform {named!r}", key="platform") from exc


async def record_hosting(
    conn: asyncpg.Connection,
    *,
    data: HostingIn,
    platform_id: UUID | None = None,
    caller_platform_id: UUID | None = None,
    actor_id: UUID | None,
    extra: dict[str, Any] | None = None,
) -> tuple[Hosting, int]:
    """Record that a platform hosts the model (registered already); returns the hosting and
    the seq of its ledger event.

    The platform is ``platform_id`` when the caller has established it (a verified delivery
    from that platform); otherwise the one ``data.platform`` names, where a platform
    principal (``caller_platform_id``) may record hostings on its own platform only.
    """
    if platform_id is None:
        platform_id = await _platform_of_new_hosting(
            conn, named=data.platform, caller_platform_id=caller_platform_id
        )
    model_id = await resolve_model_id(conn, name=data.model, role="model")
    occurred_at = check_claimed(data.occurred_at or datetime.now(UTC), key="occurred_at")
    row = await q.insert_hosting(
        conn,
        model_id=model_id,
        platform_id=platform_id,
        external_id=data.external_id,
        url=data.url,
        revision=data.revision,
        licence=data.licence,
        gated=data.gated,
        disabled=data.disabled,
        status=data.status,
        downloads=data.downloads,
        downloads_at=occurred_at if data.downloads is not None else None,
        documentation=msgspec.to_builtins(data.documentation),
        name=data.model,
    )
    if row is None:
        raise Conflict(
            f"this platform already records a hosting of {data.model!r}"
            + (f" or of external id {data.external_id!r}" if data.external_id else "")
        )
    hosting = msgspec.convert(dict(row), Hosting)
    await refresh_purls(conn, hosting_ids=[hosting.id])
    seq = await record_event(
        conn,
        stage="prevent",
        kind="hosting.recorded",
        subject_type="hosting",
        subject_id=hosting.id,
        model_id=hosting.model_id,
        platform_id=hosting.platform_id,
        actor_id=actor_id,
        occurred_at=occurred_at,
        state=to_state(hosting),
        extra=extra,
    )
    # A hosting of a model under a decision in force is flagged, and its platform told, now.
    await flag_hosted(conn, hostings=[(hosting.id, hosting.model_id)], actor_id=actor_id)
    return hosting, seq


async def get_hosting(
    conn: asyncpg.Connection,
    *,
    hosting_id: UUID,
    visible_to: UUID | None = None,
    as_of: datetime | None = None,
    for_update: bool = False,
) -> Hosting:
    """One hosting, now or as recorded at ``as_of``; with ``visible_to`` (a platform's id),
    only if that platform hosts it (hosted it then)."""
    if as_of is not None:
        then = await state_as_of(
            conn, subject_type="hosting", subject_id=hosting_id, as_of=as_of, record=Hosting
        )
        if then is None or visible_to not in (None, then.platform_id):
            raise NotFound(f"no hosting {hosting_id} was recorded at {as_of.isoformat()}")
        return then
    row = await q.select_hosting(
        conn, hosting_id=hosting_id, platform_id=visible_to, for_update=for_update
    )
    if row is None:
        raise NotFound(f"no hosting {hosting_id}")
    return msgspec.convert(dict(row), Hosting)


async def lock_hosting_of(
    conn: asyncpg.Connection, *, platform_id: UUID, model: str
) -> Hosting | None:
    """The platform's hosting of the model named ``model``, locked until the caller's
    transaction ends, or None when the platform records no such hosting."""
    return (await lock_hostings_of(conn, platform_id=platform_id, models=[model])).get(model)


async def lock_hostings_of(
    conn: asyncpg.Connection, *, platform_id: UUID, models: list[str]
) -> dict[str, Hosting]:
    """The platform's hostings by the names it hosts them under (the model's name unless
    it renamed the hosting), as given (names are case-insensitive), locked in name order
    until the caller's transaction ends; a name it does not host is left out."""
    rows = await q.select_hostings_of(conn, platform_id=platform_id, models=models)
    by_folded = {row["name"].lower(): msgspec.convert(dict(row), Hosting) for row in rows}
    return {name: by_folded[name.lower()] for name in models if name.lower() in by_folded}


async def lock_hosting_by_external_id(
    conn: asyncpg.Connection, *, platform_id: UUID, external_id: str
) -> Hosting | None:
    """The platform's hosting it knows by ``external_id``, locked, or None."""
    row = await q.select_hosting_by_external_id(
        conn, platform_id=platform_id, external_id=external_id
    )
    return None if row is None else msgspec.convert(dict(row), Hosting)


async def rename_hosting(
    conn: asyncpg.Connection,
    *,
    before: Hosting,
    name: str,
    url: str,
    external_id: str | None,
    occurred_at: datetime,
    actor_id: UUID | None,
    extra: dict[str, Any] | None = None,
) -> tuple[Hosting, int | None]:
    """Give a locked hosting the platform's new name and URL for it (and its own id, when
    given); the hosting keeps its id, model, history, grants and decisions. Returns the
    hosting and the seq of its ``hosting.renamed`` event (None when nothing changed)."""
    external = before.external_id if external_id is None else external_id
    if (name, url, external) == (before.name, before.url, before.external_id):
        return before, None
    row = await q.rename_hosting(
        conn, hosting_id=before.id, name=name, url=url, external_id=external
    )
    if row is None:
        raise Conflict(
            f"this platform already records another hosting named {name!r}"
            + (f" or of external id {external!r}" if external != before.external_id else "")
        )
    after = msgspec.convert(dict(row), Hosting)
    await refresh_purls(conn, hosting_ids=[after.id])
    state = to_state(after)
    seq = await record_event(
        conn,
        stage="prevent",
        kind="hosting.renamed",
        subject_type="hosting",
        subject_id=after.id,
        model_id=after.model_id,
        platform_id=after.platform_id,
        actor_id=actor_id,
        occurred_at=occurred_at,
        state=state,
        changes=diff(to_state(before), state),
        extra=extra,
    )
    return after, seq


async def list_hostings(
    conn: asyncpg.Connection,
    *,
    platform: str | None = None,
    visible_to: UUID | None = None,
    model_id: UUID | None = None,
    status: str | None = None,
    licence: str | None = None,
    min_downloads: int | None = None,
    missing: str | None = None,
    after: UUID | None = None,
    limit: int,
    as_of: datetime | None = None,
) -> list[Hosting]:
    """Hostings matching every filter; a platform (``visible_to``) sees its own only.

    With ``as_of``, each in its state recorded then, leaving out those not recorded yet; the
    filters select by today's values (a hosting's platform and model never change)."""
    scope = await platform_scope(conn, slug=platform, visible_to=visible_to)
    if scope.empty:
        return []
    if as_of is not None:
        check_moment(as_of)
    # With ``as_of``, the page and each one's state then in one statement.
    rows = await q.select_hostings(
        conn,
        platform_id=scope.platform_id,
        model_id=model_id,
        status=status,
        licence=licence,
        min_downloads=min_downloads,
        missing=missing,
        after=after,
        limit=limit,
        as_of=as_of,
    )
    if as_of is not None:
        return [from_state(state, Hosting) for state in rows]
    return [msgspec.convert(row, Hosting) for row in rows]


async def update_hosting(
    conn: asyncpg.Connection,
    *,
    hosting_id: UUID,
    patch: HostingPatch,
    actor_id: UUID | None,
    visible_to: UUID | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[Hosting, int | None]:
    """Apply a change; returns the hosting and the ledger seq (None when nothing changed)."""
    before = await get_hosting(conn, hosting_id=hosting_id, visible_to=visible_to, for_update=True)
    return await apply_patch(conn, before=before, patch=patch, actor_id=actor_id, extra=extra)


async def apply_patch(
    conn: asyncpg.Connection,
    *,
    before: Hosting,
    patch: HostingPatch,
    actor_id: UUID | None,
    extra: dict[str, Any] | None = None,
) -> tuple[Hosting, int | None]:
    """Apply a change to ``before``, a hosting the caller has locked (``get_hosting`` with
    ``for_update``, or ``lock_hosting_of``); returns the hosting and the ledger seq (None
    when nothing changed)."""
    change = _plan(before, patch)
    if change is None:
        return before, None  # nothing would change: no write, no event
    row = await q.update_hosting(conn, hosting_id=before.id, values=change.values)
    after = msgspec.convert(dict(row), Hosting)
    if after.revision != before.revision:
        await refresh_purls(conn, hosting_ids=[after.id])
    event = _event(change, after, actor_id=actor_id, extra=extra)
    seq = None if event is None else (await record_events(conn, [event]))[0]
    await _flag_rehosted(conn, [(before, after)], actor_id=actor_id)
    return after, seq


async def apply_patches(
    conn: asyncpg.Connection,
    *,
    changes: Sequence[tuple[Hosting, HostingPatch, dict[str, Any] | None]],
    actor_id: UUID | None,
) -> list[int | None]:
    """``apply_patch`` for many locked hostings at once, each at most once and each with
    the extra its event carries: one statement writes them all and one appends their
    events. Returns each change's ledger seq, in the order of ``changes`` (None for a
    hosting that did not change)."""
    if len({before.id for before, _, _ in changes}) != len(changes):
        raise ValueError("a hosting may appear only once in one call")
    planned = [(_plan(before, patch), extra) for before, patch, extra in changes]
    written = [change for change, _ in planned if change is not None]
    if not written:
        return [None] * len(changes)
    rows = await q.update_hostings(conn, [(c.before.id, c.values) for c in written])
    after = {row["id"]: msgspec.convert(dict(row), Hosting) for row in rows}
    revised = [c.before.id for c in written if after[c.before.id].revision != c.before.revision]
    await refresh_purls(conn, hosting_ids=revised)
    events = [
        None
        if change is None
        else _event(change, after[change.before.id], actor_id=actor_id, extra=extra)
        for change, extra in planned
    ]
    seqs = iter(await record_events(conn, [e for e in events if e is not None]))
    await _flag_rehosted(conn, [(c.before, after[c.before.id]) for c in written], actor_id=actor_id)
    return [None if event is None else next(seqs) for event in events]


#: Writes a batch's hostings, each ``(id, values)``, and appends its events in one go;
#: returns how many hostings it wrote and the events' seqs, in order.
BatchWriter = Callable[
    [list[tuple[UUID, list[object]]], list[NewEvent]], Awaitable[tuple[int, list[int]]]
]


async def apply_patches_at(
    conn: asyncpg.Connection,
    *,
    changes: Sequence[tuple[Hosting, HostingPatch, dict[str, Any] | None]],
    now: datetime,
    actor_id: UUID | None,
    write: BatchWriter,
) -> list[int | None]:
    """``apply_patches`` with the hostings and their events written by one call of
    ``write`` (a single statement): each record after its change is worked out here, from
    the columns written and ``now``, the transaction's time, which the database gives
    ``updated_at``, instead of being read back first."""
    if len({before.id for before, _, _ in changes}) != len(changes):
        raise ValueError("a hosting may appear only once in one call")
    planned = [(_plan(before, patch), extra) for before, patch, extra in changes]
    written = [change for change, _ in planned if change is not None]
    if not written:
        return [None] * len(changes)
    after = {c.before.id: _after(c, now) for c in written}
    events = [
        None
        if change is None
        else _event(change, after[change.before.id], actor_id=actor_id, extra=extra)
        for change, extra in planned
    ]
    count, appended = await write(
        [(c.before.id, c.values) for c in written], [e for e in events if e is not None]
    )
    if count != len(written):  # each was locked by the caller: never
        raise RuntimeError(f"{len(written)} hostings to write, {count} written")
    await refresh_purls(
        conn,
        hosting_ids=[
            c.before.id for c in written if after[c.before.id].revision != c.before.revision
        ],
    )
    await _flag_rehosted(conn, [(c.before, after[c.before.id]) for c in written], actor_id=actor_id)
    seqs = iter(appended)
    return [None if event is None else next(seqs) for event in events]


def _after(change: _Change, now: datetime) -> Hosting:
    """The record as the database has it once ``change`` is written at ``now``."""
    (external_id, url, revision, licence, gated, disabled, status, downloads, downloads_at) = (
        change.values[:9]
    )
    evidence = change.values[9:]
    documentation = Documentation(
        **{
            kind: Evidence(present=evidence[2 * k], url=evidence[2 * k + 1])  # type: ignore[arg-type]
            for k, kind in enumerate(DOCUMENT_KINDS)
        }
    )
    return msgspec.structs.replace(
        change.before,
        external_id=external_id,
        url=url,
        revision=revision,
        licence=licence,
        gated=gated,
        disabled=disabled,
        status=status,
        downloads=downloads,
        # The database keeps the instant and answers it in UTC.
        downloads_at=None if downloads_at is None else downloads_at.astimezone(UTC),  # type: ignore[attr-defined]
        documentation=documentation,
        updated_at=now,
    )


async def _flag_rehosted(
    conn: asyncpg.Connection, changed: Sequence[tuple[Hosting, Hosting]], *, actor_id: UUID | None
) -> None:
    """The one place a hosting that exists becomes ``hosted`` again, on every path (REST,
    each webhook and adapter, the group-commit batch): a decision in force over its model
    takes it back as a late target, and its platform is told."""
    rehosted = [
        (after.id, after.model_id)
        for before, after in changed
        if after.status == "hosted" and before.status != "hosted"
    ]
    if rehosted:
        await flag_hosted(conn, hostings=rehosted, actor_id=actor_id)


@dataclass(frozen=True, slots=True)
class _Change:
    """What a patch writes to a hosting: its writable columns, and when it happened."""

    before: Hosting
    values: list[object]
    occurred_at: datetime


def _plan(before: Hosting, patch: HostingPatch) -> _Change | None:
    """The columns ``patch`` would give ``before``; None when nothing would change."""
    state = msgspec.structs.asdict(before)
    # ``__struct_fields__``, not ``msgspec.structs.fields``: that one re-evaluates the
    # type annotations on every call, which cost more CPU than the rest of an update.
    for name in patch.__struct_fields__:
        value = getattr(patch, name)
        if value is msgspec.UNSET or name in ("documentation", "occurred_at"):
            continue
        state[name] = value
    documentation = msgspec.to_builtins(before.documentation)
    if patch.documentation is not msgspec.UNSET:
        for kind in DOCUMENT_KINDS:
            evidence = getattr(patch.documentation, kind)
            if evidence is not msgspec.UNSET:
                documentation[kind] = msgspec.to_builtins(evidence)
    occurred_at = (
        datetime.now(UTC)
        if patch.occurred_at is msgspec.UNSET
        else check_claimed(patch.occurred_at, key="occurred_at")
    )
    downloads_at = before.downloads_at
    if patch.downloads is not msgspec.UNSET and patch.downloads != before.downloads:
        downloads_at = None if patch.downloads is None else occurred_at
    if documentation == msgspec.to_builtins(before.documentation) and all(
        state[name] == getattr(before, name) for name in _WRITABLE
    ):
        return None
    values = q.writable_values(
        external_id=state["external_id"],
        url=state["url"],
        revision=state["revision"],
        licence=state["licence"],
        gated=state["gated"],
        disabled=state["disabled"],
        status=state["status"],
        downloads=state["downloads"],
        downloads_at=downloads_at,
        documentation=documentation,
    )
    return _Change(before=before, values=values, occurred_at=occurred_at)


def _event(
    change: _Change, after: Hosting, *, actor_id: UUID | None, extra: dict[str, Any] | None
) -> NewEvent | None:
    """The ledger event for a written change; None when the record came out the same."""
    state = to_state(after)
    changes = diff(to_state(change.before), state)
    if not changes:
        return None
    return NewEvent(
        stage="prevent",
        kind=_STATUS_KINDS[after.status] if "status" in changes else "hosting.updated",
        subject_type="hosting",
        subject_id=after.id,
        model_id=after.model_id,
        platform_id=after.platform_id,
        actor_id=actor_id,
        occurred_at=change.occurred_at,
        state=state,
        changes=changes,
        extra=extra,
    )
