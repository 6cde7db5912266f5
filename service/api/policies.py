"""``/v1/decommission-policies``: when a decision is proposed automatically, as data."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from service.api.auth import ADMIN, READERS, allow
from service.api.deps import Caller, Db
from service.api.pagination import Cursor, Limit, decode_uuid_cursor, paginate
from service.api.problems import problem_responses
from service.domain import policies as domain
from service.schemas.policies import Policy, PolicyIn, PolicyPage, PolicyPatch, PolicyVersionIn

__all__ = ["PolicyController"]


class PolicyController(Controller):
    path = "/v1/decommission-policies"
    tags = ["decommissions"]

    @post(
        operation_id="createPolicy",
        summary="Create a policy (version 1 of its name)",
        guards=[allow(*ADMIN)],
        responses=problem_responses(400, 401, 403, 409, 413, 415, 422),
    )
    async def create(self, data: JSONBody[PolicyIn], db: Db, principal: Caller) -> Policy:
        return await domain.create_policy(db, data=data, actor_id=principal.id)

    @post(
        "/{name:str}/versions",
        operation_id="createPolicyVersion",
        summary="Add the next version of a policy; it replaces the active one",
        guards=[allow(*ADMIN)],
        responses=problem_responses(400, 401, 403, 404, 413, 415, 422),
    )
    async def version(
        self,
        name: Annotated[str, Parameter(max_length=63)],
        data: JSONBody[PolicyVersionIn],
        db: Db,
        principal: Caller,
    ) -> Policy:
        return await domain.create_version(db, name=name, data=data, actor_id=principal.id)

    @get(
        operation_id="listPolicies",
        summary="List policy versions",
        guards=[allow(*READERS)],
        responses=problem_responses(400, 401, 403),
    )
    async def index(
        self,
        db: Db,
        name: Annotated[str | None, Parameter(max_length=63)] = None,
        active: FromQuery[bool | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> PolicyPage:
        items = await domain.list_policies(
            db, name=name, active=active, after=decode_uuid_cursor(cursor), limit=limit + 1
        )
        page, next_cursor = paginate(items, limit, lambda p: p.id)
        return PolicyPage(items=page, next_cursor=next_cursor)

    @get(
        "/{policy_id:uuid}",
        operation_id="getPolicy",
        summary="One policy version",
        guards=[allow(*READERS)],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read(self, policy_id: FromPath[UUID], db: Db) -> Policy:
        return await domain.get_policy(db, policy_id=policy_id)

    @patch(
        "/{policy_id:uuid}",
        operation_id="updatePolicy",
        summary="Retire a policy version, or make it the active one again",
        guards=[allow(*ADMIN)],
        responses=problem_responses(400, 401, 403, 404, 413, 415, 422),
    )
    async def update(
        self, policy_id: FromPath[UUID], data: JSONBody[PolicyPatch], db: Db, principal: Caller
    ) -> Policy:
        return await domain.set_policy_active(
            db, policy_id=policy_id, patch=data, actor_id=principal.id
        )
