"""``/v1/reports/compliance/snapshots``: compliance reports frozen, signed and served."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from service.api.auth import allow, principal_of
from service.api.deps import Db
from service.api.problems import problem_responses
from service.db.pool import connection
from service.domain import snapshots as domain
from service.domain.checkpoints import Signer
from service.errors import Unavailable
from service.schemas.snapshots import ReportSnapshot, ReportSnapshotIn

__all__ = ["ReportSnapshotController"]

#: How long a request waits for the sealer to cover the period's end before a 503.
WAIT_FOR_SEALER_SECONDS = 5.0


class ReportSnapshotController(Controller):
    path = "/v1/reports/compliance/snapshots"
    tags = ["reports"]

    @post(
        operation_id="createComplianceReportSnapshot",
        guards=[allow("admin", "regulator")],
        summary="Freeze the compliance report for a period that has ended, signed and bound "
        "to the ledger",
        description=(
            "Builds the report for `[from, to)` as `GET /v1/reports/compliance` does (each "
            "record as the ledger held it at `to`), stores it, and signs its RFC 8785 bytes "
            "in a C2SP signed note by the checkpoint key, together with the checkpoint "
            "(origin, tree size, root hash) whose tree covers every event the report read. "
            "`to` must not be later than now. When the sealer has not yet sealed the "
            "ledger up to `to` the request waits for it a few seconds, then answers 503 "
            "with Retry-After. `risk-registry verify-report FILE --key KEY` checks the "
            "document offline."
        ),
        status_code=201,
        responses=problem_responses(400, 401, 403, 404, 413, 415, 422, 503),
    )
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[ReportSnapshotIn], state: State
    ) -> Response[ReportSnapshot]:
        signer: Signer | None = state.get("signer")
        if signer is None:
            raise Unavailable("this registry has no checkpoint signing key yet")
        principal = principal_of(request)
        deadline = time.monotonic() + WAIT_FOR_SEALER_SECONDS
        while True:
            try:
                # The report and the checkpoint it is bound to, from one snapshot.
                async with (
                    connection(state.pool, timeout=state.acquire_timeout) as conn,
                    conn.transaction(isolation="repeatable_read"),
                ):
                    snapshot = await domain.freeze_report(
                        conn,
                        signer=signer,
                        since=data.since,
                        until=data.until,
                        platform=data.platform,
                        created_by=principal.id,
                        now=datetime.now(UTC),
                        seconds=state.settings.report_answer_seconds,
                    )
                break
            except domain.LedgerNotSealed:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.25)
        return Response(
            snapshot,
            status_code=201,
            headers={"Location": f"{self.path}/{snapshot.id}"},
        )

    @get(
        "/{snapshot_id:uuid}",
        operation_id="getComplianceReportSnapshot",
        guards=[allow("admin", "regulator", "auditor")],
        summary="A frozen compliance report, its signed note and its checkpoint",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read(self, snapshot_id: FromPath[UUID], db: Db) -> ReportSnapshot:
        return await domain.get_snapshot(db, snapshot_id=snapshot_id)
