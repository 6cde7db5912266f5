"""Liveness and readiness: the only routes besides the public report channel with no key."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State

from service.api.problems import problem_responses
from service.domain.health import check_ready
from service.errors import Unavailable

__all__ = ["HealthController"]


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str


class HealthController(Controller):
    tags = ["health"]

    @get(
        "/healthz",
        operation_id="healthz",
        summary="The process is alive",
        opt={"exclude_from_auth": True},
        sync_to_thread=False,
    )
    def healthz(self) -> Health:
        return Health(status="ok")

    @get(
        "/readyz",
        operation_id="readyz",
        summary="The database answers",
        opt={"exclude_from_auth": True},
        responses=problem_responses(),
    )
    async def readyz(self, state: State) -> Response[Health]:
        try:
            await check_ready(state.pool, timeout=state.acquire_timeout)
        except Unavailable:
            return Response(
                Health(status="unavailable"),
                status_code=503,
                headers={"Retry-After": str(state.retry_after_seconds)},
            )
        return Response(Health(status="ready"))
