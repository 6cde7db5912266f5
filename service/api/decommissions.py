"""``/v1/decommissions``: decisions to recall, restrict, relicense or deprecate a model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from service.api.auth import ADMIN, ANY_ROLE, allow
from service.api.deps import Caller, Db
from service.api.pagination import Cursor, Limit, decode_uuid_cursor, paginate
from service.api.problems import problem_responses
from service.domain import decommission_impact as reach
from service.domain import decommission_targets as targets
from service.domain import decommissions as domain
from service.schemas.decommissions import (
    ApprovalIn,
    Decision,
    DecisionIn,
    DecisionPage,
    DecisionStatus,
    Impact,
    OverduePage,
    WithdrawIn,
)

__all__ = ["DecommissionController"]


class DecommissionController(Controller):
    path = "/v1/decommissions"
    tags = ["decommissions"]

    @post(
        operation_id="proposeDecommission",
        summary="Propose a decision; a second admin must approve it",
        guards=[allow(*ADMIN)],
        responses=problem_responses(400, 401, 403, 413, 415, 422),
    )
    async def create(self, data: JSONBody[DecisionIn], db: Db, principal: Caller) -> Decision:
        return await domain.propose_decision(db, data=data, actor_id=principal.id)

    @get(
        operation_id="listDecommissions",
        summary="List decisions (a platform key sees only notified ones that apply to it)",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403),
    )
    async def index(
        self,
        db: Db,
        principal: Caller,
        status: FromQuery[DecisionStatus | None] = None,
        model_id: FromQuery[UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> DecisionPage:
        items = await domain.list_decisions(
            db,
            status=status,
            model_id=model_id,
            platform_id=principal.platform_id,
            after=decode_uuid_cursor(cursor),
            limit=limit + 1,
        )
        page, next_cursor = paginate(items, limit, lambda d: d.id)
        return DecisionPage(items=page, next_cursor=next_cursor)

    @get(
        "/overdue",
        operation_id="listOverdueConfirmations",
        summary="Platforms that have not confirmed a notified decision by its deadline",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403),
    )
    async def overdue(
        self,
        db: Db,
        principal: Caller,
        decision_id: FromQuery[UUID | None] = None,
        limit: Limit = 200,
    ) -> OverduePage:
        items = await targets.list_overdue(
            db,
            now=datetime.now(UTC),
            platform_id=principal.platform_id,
            decision_id=decision_id,
            limit=limit,
        )
        return OverduePage(items=items)

    @post(
        "/impact",
        operation_id="previewDecommissionImpact",
        summary="What a draft decision would reach, before anything is proposed",
        description=(
            "The body is a proposal as `POST /v1/decommissions` takes it; nothing is written. "
            "The answer lists the hostings in scope by platform, the descendant models by "
            "relation, the platforms a notice would go to and the current downloads affected."
        ),
        guards=[allow(*ADMIN)],
        status_code=200,
        responses=problem_responses(400, 401, 403, 413, 415, 422),
    )
    async def preview_impact(self, data: JSONBody[DecisionIn], db: Db) -> Impact:
        return await reach.preview_impact(db, data=data)

    @get(
        "/{decision_id:uuid}/impact",
        operation_id="getDecommissionImpact",
        summary="What a decision reaches now: hostings by platform, derivatives, downloads",
        description=(
            "The decision's scope applied to the registry as it is now: the hostings in scope "
            "(not removed) by platform, the descendant models by relation, the platforms a "
            "notice goes to and the current downloads affected. The proposal's ledger event "
            "records the impact as it was when proposed."
        ),
        guards=[allow(*ADMIN)],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read_impact(self, decision_id: FromPath[UUID], db: Db) -> Impact:
        decision = await domain.get_decision(db, decision_id=decision_id)
        return await reach.impact_of(db, decision)

    @get(
        "/{decision_id:uuid}",
        operation_id="getDecommission",
        summary="One decision, with its targets and who confirmed",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read(
        self,
        decision_id: FromPath[UUID],
        db: Db,
        principal: Caller,
        as_of: Annotated[
            datetime | None,
            Parameter(
                description="RFC 3339 moment: the decision, its targets and confirmations as "
                "the registry recorded them then."
            ),
        ] = None,
    ) -> Decision:
        return await domain.get_decision(
            db, decision_id=decision_id, visible_to=principal.platform_id, as_of=as_of
        )

    @post(
        "/{decision_id:uuid}/approve",
        operation_id="approveDecommission",
        summary="Approve a proposed decision (four-eyes: a second person)",
        description=(
            "Only a second person may approve: 403 for the proposer, for a principal the "
            "proposer created (directly or through principals it created) and for a "
            "principal created after the proposal, since the decision's state allows "
            "approval but this caller may not give it. A decision that is not proposed "
            "gets 409. The body is optional: `impact_digest` quotes the `digest` of the "
            "impact the approver reviewed, and the approval is then refused with 409 if "
            "the decision's reach has changed since (new hostings, derivatives or "
            "platforms). The approval's ledger event records the digest approved."
        ),
        guards=[allow(*ADMIN)],
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
    )
    async def approve(
        self,
        decision_id: FromPath[UUID],
        db: Db,
        principal: Caller,
        data: JSONBody[ApprovalIn | None] = None,
    ) -> Decision:
        return await domain.approve_decision(
            db,
            decision_id=decision_id,
            actor_id=principal.id,
            impact_digest=None if data is None else data.impact_digest,
        )

    @post(
        "/{decision_id:uuid}/notify",
        operation_id="notifyDecommission",
        summary="Notify every platform the approved decision applies to",
        guards=[allow(*ADMIN)],
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def notify(
        self, decision_id: FromPath[UUID], db: Db, principal: Caller, state: State
    ) -> Decision:
        hours = state.settings.decommission_confirm_hours
        return await domain.notify_decision(
            db,
            decision_id=decision_id,
            actor_id=principal.id,
            confirm_within=timedelta(hours=hours),
        )

    @post(
        "/{decision_id:uuid}/withdraw",
        operation_id="withdrawDecommission",
        summary="Withdraw a decision; platforms already notified are told",
        guards=[allow(*ADMIN)],
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
    )
    async def withdraw(
        self, decision_id: FromPath[UUID], data: JSONBody[WithdrawIn], db: Db, principal: Caller
    ) -> Decision:
        return await domain.withdraw_decision(
            db, decision_id=decision_id, reason=data.reason, actor_id=principal.id
        )
