"""The reach of a decision before it is approved: the hostings it would take as targets, by
platform, the descendant models it would cover, by relation, the platforms a notice would
go to and the current downloads affected. Computed from the registry as it is now, for a
decision or a draft; reading it writes nothing."""

from __future__ import annotations

import hashlib
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import decommissions as q
from service.db.queries import models as models_q
from service.domain.models import resolve_model_id
from service.domain.platforms import get_platform
from service.errors import InvalidInput, NotFound
from service.schemas.decommissions import (
    Decision,
    DecisionIn,
    DerivativeModel,
    Impact,
    ImpactHosting,
    PlatformImpact,
)

__all__ = [
    "impact_of",
    "impact_of_scope",
    "preview_impact",
    "resolve_platforms",
    "with_digest",
]


async def resolve_platforms(conn: asyncpg.Connection, slugs: list[str] | None) -> list[UUID] | None:
    """The ids of the platforms a decision names (None: every platform); InvalidInput
    naming ``platforms`` for an unknown one."""
    if slugs is None:
        return None
    ids = []
    for slug in dict.fromkeys(slugs):
        try:
            ids.append((await get_platform(conn, slug=slug)).id)
        except NotFound as exc:
            raise InvalidInput(f"no platform {slug!r}", key="platforms") from exc
    return ids


async def impact_of_scope(
    conn: asyncpg.Connection,
    *,
    model_id: UUID,
    model: str,
    include_derivatives: bool,
    platform_ids: list[UUID] | None,
) -> Impact:
    """What a decision on ``model`` with this scope would reach now."""
    rows = await q.select_impact_hostings(
        conn, model_id=model_id, include_derivatives=include_derivatives, platform_ids=platform_ids
    )
    by_platform: dict[UUID, list[asyncpg.Record]] = {}
    for row in rows:
        by_platform.setdefault(row["platform_id"], []).append(row)
    platforms = [
        PlatformImpact(
            platform_id=platform_id,
            platform=hosted[0]["platform"],
            hostings=[
                ImpactHosting(
                    hosting_id=r["hosting_id"],
                    model_id=r["model_id"],
                    model=r["model"],
                    status=r["status"],
                    downloads=r["downloads"],
                )
                for r in hosted
            ],
            downloads=sum(r["downloads"] or 0 for r in hosted),
        )
        for platform_id, hosted in by_platform.items()
    ]
    derivatives: dict[str, list[DerivativeModel]] = {}
    for r in await q.select_impact_models(
        conn, model_id=model_id, include_derivatives=include_derivatives
    ):
        derivatives.setdefault(r["derivation"] or "unspecified", []).append(
            DerivativeModel(model_id=r["model_id"], model=r["model"], base_model=r["base_model"])
        )
    return with_digest(
        Impact(
            model_id=model_id,
            model=model,
            include_derivatives=include_derivatives,
            platforms=platforms,
            derivatives=derivatives,
            notify=[p.platform for p in platforms],
            hostings=len(rows),
            downloads=sum(p.downloads for p in platforms),
        )
    )


def with_digest(impact: Impact) -> Impact:
    """``impact`` with its ``digest``: sha256 of its other fields as JSON, keys sorted."""
    body = msgspec.json.encode(msgspec.structs.replace(impact, digest=""), order="sorted")
    return msgspec.structs.replace(impact, digest="sha256:" + hashlib.sha256(body).hexdigest())


async def impact_of(conn: asyncpg.Connection, decision: Decision) -> Impact:
    """What ``decision`` reaches now (its scope applied to the registry as it is)."""
    return await impact_of_scope(
        conn,
        model_id=decision.model_id,
        model=decision.model,
        include_derivatives=decision.include_derivatives,
        platform_ids=decision.platform_ids,
    )


async def preview_impact(conn: asyncpg.Connection, *, data: DecisionIn) -> Impact:
    """What a draft decision would reach if it were proposed now; nothing is written."""
    model_id = await resolve_model_id(conn, name=data.model, role="model")
    return await impact_of_scope(
        conn,
        model_id=model_id,
        model=await models_q.select_name(conn, model_id=model_id) or data.model,
        include_derivatives=data.include_derivatives,
        platform_ids=await resolve_platforms(conn, data.platforms),
    )
