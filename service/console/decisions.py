"""``/console/decisions``: decommissioning decisions, for admins.

The list, a decision's page (its targets per platform, who confirmed, overdue platforms
standing out, the actions its state allows) and a propose form whose only button is
*Preview the impact*: the proposal can be sent only from the preview, which shows what the
draft would reach. Every step calls the function behind the matching
``/v1/decommissions`` route, so the four-eyes rule and the workflow are the domain's: a
refusal (the proposer approving, say) comes back as a page with the domain's reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict, State
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from service.api.deps import Db
from service.console.web import Form, Viewer, page, require
from service.domain import decommission_impact as reach
from service.domain import decommission_targets as targets
from service.domain import decommissions as domain
from service.domain.csaf import build_decision_advisory
from service.domain.keys import name_principals
from service.errors import InvalidInput
from service.schemas.decommissions import Decision, DecisionIn, Target, WithdrawIn

__all__ = ["DecisionPageController", "draft_of"]

ACTIONS = ("recall", "restrict", "licence_change", "deprecate")
STATUSES = ("proposed", "approved", "notified", "executed", "withdrawn")
#: The propose form's fields, carried from the form to the preview and on to the proposal.
FIELDS = (
    "model",
    "action",
    "reason",
    "revisions",
    "platforms",
    "include_derivatives",
    "effective_at",
    "confirm_by",
    "sunset_at",
    "successor_model",
    "old_licence",
    "new_licence",
    "prohibited_uses",
    "incident_ids",
)
_advisory_encoder = msgspec.json.Encoder(order="sorted")


def _text(form: FormMultiDict, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _list(text: str, *, lines: bool = False) -> list[str]:
    parts = text.splitlines() if lines else text.replace("\n", ",").split(",")
    return [p.strip() for p in parts if p.strip()]


def _moment(text: str, name: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM`` from a datetime picker, read as UTC."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"'{name}' is not a date and time: {text!r}", key=name) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def draft_of(form: FormMultiDict) -> dict[str, str]:
    """The form's fields as typed, to show again and to carry to the proposal."""
    return {name: _text(form, name) for name in FIELDS}


def decision_request(draft: dict[str, str]) -> DecisionIn:
    """The draft as the API's request body: the same checks apply to both."""
    data: dict[str, Any] = {
        "model": draft["model"],
        "action": draft["action"],
        "reason": draft["reason"],
        "revisions": _list(draft["revisions"]),
        "platforms": _list(draft["platforms"]) or None,
        "include_derivatives": draft["include_derivatives"] == "yes",
        "effective_at": _moment(draft["effective_at"], "effective_at"),
        "confirm_by": _moment(draft["confirm_by"], "confirm_by"),
        "sunset_at": _moment(draft["sunset_at"], "sunset_at"),
        "successor_model": draft["successor_model"] or None,
        "old_licence": draft["old_licence"] or None,
        "new_licence": draft["new_licence"] or None,
        "prohibited_uses": _list(draft["prohibited_uses"], lines=True),
        "incident_ids": _list(draft["incident_ids"]),
    }
    try:
        return msgspec.convert(data, DecisionIn)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from exc


def by_platform(items: list[Target]) -> list[tuple[str, list[Target]]]:
    grouped: dict[str, list[Target]] = {}
    for t in items:
        grouped.setdefault(t.platform, []).append(t)
    return sorted(grouped.items())


def actions_for(decision: Decision) -> list[str]:
    """The steps the decision's state allows (the domain's workflow), as buttons."""
    allowed = domain.TRANSITIONS[decision.status]
    return [step for step in ("approved", "notified", "withdrawn") if step in allowed]


def _back(decision_id: UUID) -> Redirect:
    return Redirect(f"/console/decisions/{decision_id}", status_code=303)


class DecisionPageController(Controller):
    path = "/console/decisions"

    @get("/")
    async def index(
        self,
        db: Db,
        viewer: Viewer,
        status: Annotated[str | None, QueryParameter(max_length=20)] = None,
    ) -> Template:
        require(viewer, "admin")
        if status and status not in STATUSES:
            raise InvalidInput(f"no decision status {status!r}", key="status")
        decisions = await domain.list_decisions(db, status=status or None, limit=200)
        overdue = await targets.list_overdue(db, now=datetime.now(UTC), limit=200)
        late: dict[UUID, int] = {}
        for o in overdue:
            late[o.decision_id] = late.get(o.decision_id, 0) + 1
        return page(
            "decisions.html",
            viewer=viewer,
            title="Decisions",
            decisions=decisions,
            overdue=overdue,
            late=late,
            statuses=STATUSES,
            status=status or "",
        )

    @get("/new")
    async def new(self, viewer: Viewer) -> Template:
        require(viewer, "admin")
        return page(
            "decision_new.html",
            viewer=viewer,
            title="Propose a decision",
            draft=dict.fromkeys(FIELDS, ""),
            actions=ACTIONS,
            impact=None,
        )

    @post("/preview", status_code=200)
    async def preview(self, db: Db, viewer: Viewer, form: Form) -> Template:
        """The draft's impact, computed as ``POST /v1/decommissions/impact`` does."""
        require(viewer, "admin")
        draft = draft_of(form)
        impact = await reach.preview_impact(db, data=decision_request(draft))
        return page(
            "decision_new.html",
            viewer=viewer,
            title="Propose a decision: its impact",
            draft=draft,
            actions=ACTIONS,
            impact=impact,
        )

    @post("/")
    async def propose(self, db: Db, viewer: Viewer, form: Form) -> Redirect:
        require(viewer, "admin")
        data = decision_request(draft_of(form))
        decision = await domain.propose_decision(db, data=data, actor_id=viewer.principal.id)
        return _back(decision.id)

    @get("/{decision_id:uuid}")
    async def show(self, decision_id: FromPath[UUID], db: Db, viewer: Viewer) -> Template:
        require(viewer, "admin")
        decision = await domain.get_decision(db, decision_id=decision_id)
        overdue = await targets.list_overdue(
            db, now=datetime.now(UTC), decision_id=decision_id, limit=200
        )
        impact = await reach.impact_of(db, decision)
        people = await name_principals(
            db,
            principal_ids=[
                p
                for p in (decision.proposed_by, decision.approved_by, decision.withdrawn_by)
                if p is not None
            ],
        )
        late_platforms = {o.platform_id for o in overdue}
        return page(
            "decision.html",
            viewer=viewer,
            title=f"Decision: {decision.action.replace('_', ' ')} of {decision.model}",
            decision=decision,
            groups=by_platform(decision.targets),
            overdue=overdue,
            late_platforms=late_platforms,
            impact=impact,
            people=people,
            steps=actions_for(decision),
            confirmed=sum(1 for t in decision.targets if t.confirmed_at is not None),
        )

    @post("/{decision_id:uuid}/approve")
    async def approve(
        self, decision_id: FromPath[UUID], db: Db, viewer: Viewer, form: Form
    ) -> Redirect:
        require(viewer, "admin")
        # The page quotes the impact it showed: a reach grown since is refused (409).
        shown = str(form.get("impact_digest", "")).strip() or None
        await domain.approve_decision(
            db, decision_id=decision_id, actor_id=viewer.principal.id, impact_digest=shown
        )
        return _back(decision_id)

    @post("/{decision_id:uuid}/notify")
    async def notify(
        self, decision_id: FromPath[UUID], db: Db, viewer: Viewer, form: Form, state: State
    ) -> Redirect:
        require(viewer, "admin")
        hours = state.settings.decommission_confirm_hours
        await domain.notify_decision(
            db,
            decision_id=decision_id,
            actor_id=viewer.principal.id,
            confirm_within=timedelta(hours=hours),
        )
        return _back(decision_id)

    @post("/{decision_id:uuid}/withdraw")
    async def withdraw(
        self, decision_id: FromPath[UUID], db: Db, viewer: Viewer, form: Form
    ) -> Redirect:
        require(viewer, "admin")
        reason = _text(form, "reason")
        if not reason:
            raise InvalidInput("say why the decision is withdrawn", key="reason")
        try:
            data = msgspec.convert({"reason": reason}, WithdrawIn)
        except msgspec.ValidationError as exc:
            raise InvalidInput(str(exc), key="reason") from exc
        await domain.withdraw_decision(
            db, decision_id=decision_id, reason=data.reason, actor_id=viewer.principal.id
        )
        return _back(decision_id)

    @get("/{decision_id:uuid}/csaf")
    async def csaf(
        self, decision_id: FromPath[UUID], db: Db, viewer: Viewer, state: State
    ) -> Response[bytes]:
        """The decision's CSAF 2.0 advisory, as ``GET /v1/exports/csaf/decisions/{id}``."""
        require(viewer, "admin")
        decision = await domain.get_decision(db, decision_id=decision_id)
        settings = state.settings
        advisory = await build_decision_advisory(
            db,
            decision,
            publisher_name=settings.csaf_publisher_name,
            publisher_namespace=settings.csaf_publisher_namespace,
        )
        return Response(
            _advisory_encoder.encode(advisory),
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="decision-{decision_id}.csaf.json"'
            },
        )
