"""``/v1/audit-grants`` and ``/v1/audit-access``: auditors' access to models.

An admin grants an auditor principal access to one model's components for a window and
may revoke it. ``/v1/audit-access/models/{id}`` shows what the caller may see of a model:
public metadata always, platform locations and documentation only inside an active grant
(see ``service.domain.grants``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from service.api.auth import ADMIN, allow
from service.api.deps import Caller, Db
from service.api.pagination import Cursor, Limit, decode_uuid_cursor, paginate
from service.api.problems import problem_responses
from service.domain import grants as domain
from service.schemas.audits import AuditGrant, AuditGrantIn, AuditGrantPage, ModelAccess

__all__ = ["AuditAccessController", "AuditGrantController"]


class AuditGrantController(Controller):
    path = "/v1/audit-grants"
    tags = ["audits"]

    @post(
        operation_id="createAuditGrant",
        summary="Grant an auditor access to a model's components for a time window",
        guards=[allow(*ADMIN)],
        responses=problem_responses(400, 401, 403, 413, 415, 422),
    )
    async def create(self, data: JSONBody[AuditGrantIn], db: Db, principal: Caller) -> AuditGrant:
        return await domain.create_grant(db, data=data, actor_id=principal.id)

    @get(
        operation_id="listAuditGrants",
        summary="List grants (an auditor sees its own)",
        guards=[allow("admin", "auditor", "regulator")],
        responses=problem_responses(400, 401, 403),
    )
    async def index(
        self,
        db: Db,
        principal: Caller,
        auditor_id: FromQuery[UUID | None] = None,
        model_id: FromQuery[UUID | None] = None,
        active: Annotated[
            bool, Parameter(description="Only grants in force now (not expired or revoked).")
        ] = False,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> AuditGrantPage:
        items = await domain.list_grants(
            db,
            visible_to=principal,
            auditor_id=auditor_id,
            model_id=model_id,
            active_at=datetime.now(UTC) if active else None,
            after=decode_uuid_cursor(cursor),
            limit=limit + 1,
        )
        page, next_cursor = paginate(items, limit, lambda g: g.id)
        return AuditGrantPage(items=page, next_cursor=next_cursor)

    @get(
        "/{grant_id:uuid}",
        operation_id="getAuditGrant",
        summary="One grant",
        guards=[allow("admin", "auditor", "regulator")],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read(self, grant_id: FromPath[UUID], db: Db, principal: Caller) -> AuditGrant:
        return await domain.get_grant(db, grant_id=grant_id, visible_to=principal)

    @post(
        "/{grant_id:uuid}/revoke",
        operation_id="revokeAuditGrant",
        summary="Revoke a grant now",
        guards=[allow(*ADMIN)],
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def revoke(self, grant_id: FromPath[UUID], db: Db, principal: Caller) -> AuditGrant:
        return await domain.revoke_grant(db, grant_id=grant_id, actor_id=principal.id)


class AuditAccessController(Controller):
    path = "/v1/audit-access"
    tags = ["audits"]

    @get(
        "/models/{model_id:uuid}",
        operation_id="getModelAccess",
        summary="What the caller may see of a model: public metadata, or more under a grant",
        guards=[allow("admin", "auditor", "regulator")],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def model(self, model_id: FromPath[UUID], db: Db, principal: Caller) -> ModelAccess:
        return await domain.get_model_access(
            db, model_id=model_id, visible_to=principal, at=datetime.now(UTC)
        )
