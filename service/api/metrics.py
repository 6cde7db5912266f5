"""``GET /metrics``: Prometheus's text exposition format, without a key."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from litestar import Controller, Response, get
from litestar.datastructures import State

from service.metrics import (
    CONTENT_TYPE_LATEST,
    DEFAULT_PROBES,
    Probe,
    exposition,
    observe_pool,
    run_probes,
)

__all__ = ["MetricsController"]


class MetricsController(Controller):
    tags = ["operations"]

    @get(
        "/metrics",
        operation_id="metrics",
        summary="Prometheus metrics in the text exposition format",
        description=(
            "Unauthenticated, like the health checks: scrapers carry no API key, and the "
            "output holds only counts, timings and route templates, never registry data. "
            "Keep it off the public proxy (the shipped nginx and Kubernetes setups do)."
        ),
        opt={"exclude_from_auth": True},
        media_type=CONTENT_TYPE_LATEST,
    )
    async def metrics(self, state: State) -> Response[bytes]:
        """Unauthenticated on purpose: scrapers hold no key and the output holds no records."""
        pool: asyncpg.Pool | None = state.pool
        probes: Sequence[Probe] = state.get("metric_probes", DEFAULT_PROBES)
        observe_pool(pool)
        if pool is not None and probes:
            # Bounded well under a scraper's own timeout, so an outage shows as failed
            # probes and stale gauges instead of a scrape that hangs.
            await run_probes(pool, probes, within=min(1.0, state.acquire_timeout))
            observe_pool(pool)
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
