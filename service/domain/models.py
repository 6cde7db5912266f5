"""Models and their lineage.

A model may name the base model it was derived from (a fine-tune, a quantisation, ...).
The lineage graph is a forest: a change that would make a model its own ancestor is refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import models as q
from service.domain.as_of import check_moment, state_as_of
from service.domain.ledger import diff, record_event, to_state
from service.domain.purls import purls_of_models
from service.errors import Conflict, InvalidInput, NotFound
from service.schemas.models import Lineage, LineageNode, Model, ModelIn, ModelPatch, Openness

__all__ = [
    "get_lineage",
    "get_model",
    "get_models",
    "list_models",
    "model_state",
    "register_model",
    "resolve_model_id",
    "update_model",
]


def model_state(model: Model) -> dict[str, Any]:
    """A model as its ledger events carry it: without its purls, which its hostings and
    their platforms give it (they change without a change of the model)."""
    state = to_state(model)
    state.pop("purls", None)
    return state


async def _with_purls(
    conn: asyncpg.Connection, models: list[Model], *, visible_to: UUID | None
) -> list[Model]:
    purls = await purls_of_models(conn, model_ids=[m.id for m in models], visible_to=visible_to)
    return [msgspec.structs.replace(m, purls=purls[m.id]) if m.id in purls else m for m in models]


def _openness(o: Openness) -> tuple[str, str, str, str]:
    return (o.weights, o.code, o.data, o.model_card)


async def resolve_model_id(conn: asyncpg.Connection, *, name: str, role: str) -> UUID:
    """The id of the model named ``name``; ``role`` says what the name was for, for errors."""
    row = await q.select_model(conn, name=name)
    if row is None:
        raise InvalidInput(f"{role} {name!r} is not registered", key=role)
    return row["id"]  # type: ignore[no-any-return]


async def register_model(
    conn: asyncpg.Connection,
    *,
    data: ModelIn,
    actor_id: UUID | None,
    platform_id: UUID | None = None,
    occurred_at: datetime | None = None,
) -> tuple[Model, int]:
    """Register a model; returns it and the seq of its ledger event."""
    base_id = None
    if data.base_model is not None:
        if data.base_model.lower() == data.name.lower():
            raise InvalidInput("a model cannot be its own base model", key="base_model")
        base_id = await resolve_model_id(conn, name=data.base_model, role="base_model")
    elif data.derivation is not None:
        raise InvalidInput("derivation needs a base_model", key="derivation")
    derivation = data.derivation or ("other" if base_id is not None else None)
    model_id = await q.insert_model(
        conn,
        name=data.name,
        provider=data.provider,
        modalities=data.modalities,
        tasks=data.tasks,
        base_model_id=base_id,
        derivation=derivation,
        openness=_openness(data.openness),
    )
    if model_id is None:
        raise Conflict(f"a model named {data.name!r} is registered already")
    model = await get_model(conn, model_id=model_id)
    seq = await record_event(
        conn,
        stage="prevent",
        kind="model.registered",
        subject_type="model",
        subject_id=model.id,
        model_id=model.id,
        platform_id=platform_id,
        actor_id=actor_id,
        occurred_at=occurred_at,
        state=model_state(model),
    )
    return model, seq


async def get_model(
    conn: asyncpg.Connection,
    *,
    model_id: UUID | None = None,
    name: str | None = None,
    as_of: datetime | None = None,
    visible_to: UUID | None = None,
) -> Model:
    """One model by id or name, now or as recorded at ``as_of`` (every role sees models;
    a platform, ``visible_to``, the purls of its own hostings only)."""
    if as_of is not None:
        if model_id is None:
            raise ValueError("a point-in-time read names the model by id")
        then = await state_as_of(
            conn, subject_type="model", subject_id=model_id, as_of=as_of, record=Model
        )
        if then is None:
            raise NotFound(f"no model {model_id} was recorded at {as_of.isoformat()}")
        return then
    # The model and its purls in one statement.
    row = await q.select_model_with_purls(conn, model_id=model_id, name=name, visible_to=visible_to)
    if row is None:
        raise NotFound(f"no model {name or model_id}")
    return msgspec.convert(dict(row), Model)


async def list_models(
    conn: asyncpg.Connection,
    *,
    name_prefix: str | None = None,
    provider: str | None = None,
    base_model_id: UUID | None = None,
    task: str | None = None,
    modality: str | None = None,
    after: UUID | None = None,
    limit: int,
    visible_to: UUID | None = None,
) -> list[Model]:
    rows = await q.select_models(
        conn,
        name_prefix=name_prefix,
        provider=provider,
        base_model_id=base_model_id,
        task=task,
        modality=modality,
        after=after,
        limit=limit,
    )
    models = [msgspec.convert(dict(row), Model) for row in rows]
    return await _with_purls(conn, models, visible_to=visible_to)


async def get_models(
    conn: asyncpg.Connection, *, model_ids: list[UUID], visible_to: UUID | None = None
) -> list[Model]:
    """The models of ``model_ids`` that exist, in id order."""
    models = []
    for model_id in sorted(set(model_ids)):
        row = await q.select_model(conn, model_id=model_id)
        if row is not None:
            models.append(msgspec.convert(dict(row), Model))
    return await _with_purls(conn, models, visible_to=visible_to)


async def update_model(
    conn: asyncpg.Connection, *, model_id: UUID, patch: ModelPatch, actor_id: UUID | None
) -> Model:
    before = await get_model(conn, model_id=model_id)
    base_id = before.base_model_id
    derivation = before.derivation
    if patch.base_model is not msgspec.UNSET:
        if patch.base_model is None:
            base_id, derivation = None, None
        else:
            base_id = await resolve_model_id(conn, name=patch.base_model, role="base_model")
            await _refuse_cycle(conn, model_id=model_id, base_id=base_id)
            derivation = derivation or "other"
    if patch.derivation is not msgspec.UNSET:
        if patch.derivation is not None and base_id is None:
            raise InvalidInput("derivation needs a base_model", key="derivation")
        derivation = patch.derivation if base_id is not None else None
        if base_id is not None and derivation is None:
            derivation = "other"

    def pick(value: object, current: object) -> object:
        return current if value is msgspec.UNSET else value

    await q.update_model(
        conn,
        model_id=model_id,
        provider=pick(patch.provider, before.provider),  # type: ignore[arg-type]
        modalities=pick(patch.modalities, before.modalities),  # type: ignore[arg-type]
        tasks=pick(patch.tasks, before.tasks),  # type: ignore[arg-type]
        base_model_id=base_id,
        derivation=derivation,
        openness=_openness(pick(patch.openness, before.openness)),  # type: ignore[arg-type]
    )
    after = await get_model(conn, model_id=model_id)
    changes = diff(model_state(before), model_state(after))
    if changes:
        await record_event(
            conn,
            stage="prevent",
            kind="model.updated",
            subject_type="model",
            subject_id=model_id,
            model_id=model_id,
            actor_id=actor_id,
            state=model_state(after),
            changes=changes,
        )
    return after


async def _refuse_cycle(conn: asyncpg.Connection, *, model_id: UUID, base_id: UUID) -> None:
    if base_id == model_id:
        raise InvalidInput("a model cannot be its own base model", key="base_model")
    ancestors = await q.select_ancestors(conn, model_id=base_id)
    if any(row["id"] == model_id for row in ancestors):
        raise Conflict("that base model is derived from this model: lineage cannot loop")


async def get_lineage(
    conn: asyncpg.Connection,
    *,
    model_id: UUID,
    as_of: datetime | None = None,
    visible_to: UUID | None = None,
) -> Lineage:
    """The model's ancestors and descendants with their relation (the model with the purls
    a platform, ``visible_to``, may see).

    With ``as_of``, the lineage as recorded then: ancestors follow each model's base as it
    stood at that moment; descendants are today's descendants whose recorded base then led
    here (a model re-parented away since is not found)."""
    if as_of is not None:
        return await _lineage_as_of(conn, model_id=model_id, as_of=as_of)
    # The model, its purls and both directions in one statement.
    row = await q.select_model_with_lineage(conn, model_id=model_id, visible_to=visible_to)
    if row is None:
        raise NotFound(f"no model {model_id}")
    fields = dict(row)
    nodes: dict[str, list[LineageNode]] = {"ancestor": [], "descendant": []}
    for found in fields.pop("lineage"):
        nodes[found.pop("relation")].append(msgspec.convert(found, LineageNode))
    model = msgspec.convert(fields, Model)
    return Lineage(model=model, ancestors=nodes["ancestor"], descendants=nodes["descendant"])


_MAX_DEPTH = 64


async def _lineage_as_of(conn: asyncpg.Connection, *, model_id: UUID, as_of: datetime) -> Lineage:
    check_moment(as_of)
    # The model then, its ancestors then (the whole chain) and today's descendants in their
    # states then: one statement, where the model and each direction took one each.
    state, chain, found = await q.select_lineage_as_of(
        conn, model_id=model_id, as_of=as_of, depth=_MAX_DEPTH
    )
    if state is None:
        raise NotFound(f"no model {model_id} was recorded at {as_of.isoformat()}")
    model = msgspec.convert(state, Model)
    ancestors: list[LineageNode] = []
    seen = {model.id}
    for depth, ancestor in enumerate(chain, start=1):
        then = msgspec.convert(ancestor, Model)
        ancestors.append(_node(then, depth=depth))
        seen.add(then.id)
    states = {then.id: then for then in (msgspec.convert(d, Model) for d in found)}
    descendants: list[LineageNode] = []
    level, depth = {model_id}, 1
    while level and depth <= _MAX_DEPTH:
        children = sorted(
            (m for m in states.values() if m.base_model_id in level and m.id not in seen),
            key=lambda m: str(m.id),
        )
        descendants.extend(_node(m, depth=depth) for m in children)
        seen.update(m.id for m in children)
        level, depth = {m.id for m in children}, depth + 1
    return Lineage(model=model, ancestors=ancestors, descendants=descendants)


def _node(m: Model, *, depth: int) -> LineageNode:
    return LineageNode(
        id=m.id, name=m.name, depth=depth, base_model_id=m.base_model_id, derivation=m.derivation
    )
