"""What a notice tells a platform: the decision, each of the platform's own hostings it
applies to under the platform's own name, id and URL, the successor by name, and who
proposed and approved it with the ledger events that record it.

The parts that need the database are read once per decision (``notice_parts``); the body
for each platform is then built from them (``notice_for``, ``withdrawal_for``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import notices as q
from service.schemas.decommissions import Decision
from service.schemas.notices import (
    Approval,
    DecommissionNoticeData,
    DecommissionWithdrawnData,
    NoticeHosting,
)

__all__ = ["NoticeParts", "notice_for", "notice_parts", "withdrawal_for"]


@dataclass(frozen=True, slots=True)
class NoticeParts:
    """What every notice about one decision shares, read from the database once."""

    decision: Decision
    hostings: dict[UUID, asyncpg.Record]
    successor_model: str | None
    approvals: list[Approval]


async def notice_parts(conn: asyncpg.Connection, decision: Decision) -> NoticeParts:
    rows = await q.select_notice_hostings(
        conn, hosting_ids=[t.hosting_id for t in decision.targets]
    )
    successor = None
    if decision.successor_model_id is not None:
        successor = await q.select_model_name(conn, model_id=decision.successor_model_id)
    approvals = [
        msgspec.convert(dict(row), Approval)
        for row in await q.select_approvals(conn, decision_id=decision.id)
    ]
    return NoticeParts(
        decision=decision,
        hostings={row["id"]: row for row in rows},
        successor_model=successor,
        approvals=approvals,
    )


def _hostings(parts: NoticeParts, platform_id: UUID, only: set[UUID] | None) -> list[NoticeHosting]:
    listed = []
    for t in parts.decision.targets:
        if t.platform_id != platform_id or (only is not None and t.hosting_id not in only):
            continue
        row = parts.hostings[t.hosting_id]
        listed.append(
            NoticeHosting(
                hosting_id=t.hosting_id,
                name=row["name"],
                external_id=row["external_id"],
                url=row["url"],
                model=t.model,
                model_id=t.model_id,
                inherited=t.inherited,
                late=t.late,
            )
        )
    return listed


def notice_for(
    parts: NoticeParts, platform_id: UUID, *, only: set[UUID] | None = None
) -> dict[str, Any]:
    """The ``decommission.notice`` data for one platform: its own hostings among the
    decision's targets (with ``only``, just those)."""
    d = parts.decision
    data = DecommissionNoticeData(
        decision_id=d.id,
        action=d.action,
        model=d.model,
        model_id=d.model_id,
        revisions=d.revisions,
        reason=d.reason,
        policy_clause=d.policy_clause,
        include_derivatives=d.include_derivatives,
        effective_at=d.effective_at,
        sunset_at=d.sunset_at,
        successor_model=parts.successor_model,
        successor_model_id=d.successor_model_id,
        old_licence=d.old_licence,
        new_licence=d.new_licence,
        prohibited_uses=d.prohibited_uses,
        confirm_by=d.confirm_by,
        hostings=_hostings(parts, platform_id, only),
        approvals=parts.approvals,
    )
    built: dict[str, Any] = msgspec.to_builtins(data)
    return built


def withdrawal_for(parts: NoticeParts, platform_id: UUID, *, reason: str) -> dict[str, Any]:
    """The ``decommission.withdrawn`` data for one platform."""
    d = parts.decision
    data = DecommissionWithdrawnData(
        decision_id=d.id,
        model=d.model,
        model_id=d.model_id,
        reason=reason,
        hostings=_hostings(parts, platform_id, None),
    )
    built: dict[str, Any] = msgspec.to_builtins(data)
    return built
