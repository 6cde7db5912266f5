"""Prometheus metrics: what the service counts, and the probes read at scrape time.

``GET /metrics`` (``service.api.metrics``) serves them in the text exposition format. This
module imports no web framework, so the domain's workers can record what they do.

The metric objects are process-wide (one process serves one app), kept in a registry of
the service's own rather than the client library's global one, so nothing else a library
registers leaks into the output. Code elsewhere records what happens through the small
functions below; values that live in the database or the pool are read at scrape time.

    registry_http_requests_total{method,route,status}           counter
    registry_http_request_duration_seconds{method,route,status} histogram
    registry_http_requests_in_flight                            gauge
    registry_webhook_deliveries_total{outcome,reason}           counter
    registry_webhook_batch_size                                 histogram
    registry_outbox_backlog                                     gauge (probe)
    registry_outbox_oldest_age_seconds                          gauge (probe)
    registry_outbox_delivery_attempts_total{outcome}            counter
    registry_checkpoint_lag_events                              gauge (probe)
    registry_checkpoint_lag_seconds                             gauge (probe)
    registry_ledger_head_seq                                    gauge (probe)
    registry_records_divergent                                  gauge (probe)
    registry_catalogue_syncs_applying                           gauge (probe)
    registry_db_pool_connections{state}                         gauge (scrape time)
    registry_db_pool_max_connections                            gauge (scrape time)
    registry_metrics_probe_failures_total{probe}                counter
    process_*, python_*                                         the client library's own

``route`` is the route *template* (``/v1/models/{model_id}``), never the raw path, and
``(unmatched)`` for paths no route matches, so label values stay few.

A *probe* is an ``async def probe(conn) -> None`` that reads something from the database
and sets gauges; the app lists its probes in ``create_app`` and the metrics endpoint runs
them with one pooled connection per scrape. A probe that fails (the database is down, a
table is missing) is counted and skipped: ``/metrics`` still answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from service.db.pool import DB_FAILURES, connection
from service.db.queries import catalogue as catalogue_q
from service.db.queries import ledger_tree as ledger_q
from service.db.queries import outbox as outbox_q
from service.db.queries import reconciliation as reconciliation_q
from service.errors import Unavailable

__all__ = [
    "CONTENT_TYPE_LATEST",
    "DEFAULT_PROBES",
    "DELIVERY_OUTCOMES",
    "REGISTRY",
    "Probe",
    "exposition",
    "observe_batch",
    "observe_pool",
    "observe_request",
    "probe_catalogue_syncs_applying",
    "probe_checkpoint_lag",
    "probe_ledger_head",
    "probe_outbox",
    "probe_records_divergent",
    "record_delivery",
    "record_outbox_attempt",
    "run_probes",
    "set_checkpoint_lag",
    "set_outbox_backlog",
]

log = logging.getLogger(__name__)

#: Reads the database at scrape time and sets gauges.
Probe = Callable[[asyncpg.Connection], Awaitable[None]]

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

#: Seconds, chosen around what the service promises: most answers in milliseconds, a
#: 503 within 2 s when the database is gone, and nothing much past the statement timeout.
_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

HTTP_REQUESTS = Counter(
    "registry_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "registry_http_request_duration_seconds",
    "Time from receiving a request to sending the last byte of its answer.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
HTTP_IN_FLIGHT = Gauge(
    "registry_http_requests_in_flight",
    "Requests being answered now.",
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "registry_webhook_deliveries",
    "Webhook deliveries by outcome (accepted, duplicate, rejected) and rejection reason.",
    ["outcome", "reason"],
    registry=REGISTRY,
)
WEBHOOK_BATCH_SIZE = Histogram(
    "registry_webhook_batch_size",
    "Deliveries that shared one group-commit transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)
OUTBOX_BACKLOG = Gauge(
    "registry_outbox_backlog",
    "Notifications waiting in the outbox to be delivered.",
    registry=REGISTRY,
)
OUTBOX_OLDEST_AGE = Gauge(
    "registry_outbox_oldest_age_seconds",
    "Age of the oldest notification still waiting in the outbox (0 when it is empty).",
    registry=REGISTRY,
)
OUTBOX_ATTEMPTS = Counter(
    "registry_outbox_delivery_attempts",
    "Attempts to deliver an outbox notification, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
CHECKPOINT_LAG_EVENTS = Gauge(
    "registry_checkpoint_lag_events",
    "Ledger events recorded but not yet covered by a signed checkpoint.",
    registry=REGISTRY,
)
CHECKPOINT_LAG_SECONDS = Gauge(
    "registry_checkpoint_lag_seconds",
    "Age of the oldest ledger event not yet covered by a signed checkpoint (0 when none).",
    registry=REGISTRY,
)
LEDGER_HEAD = Gauge(
    "registry_ledger_head_seq",
    "Sequence number of the newest ledger event.",
    registry=REGISTRY,
)
RECORDS_DIVERGENT = Gauge(
    "registry_records_divergent",
    "Records the background reconciliation found differing from their newest ledger state.",
    registry=REGISTRY,
)
CATALOGUE_SYNCS_APPLYING = Gauge(
    "registry_catalogue_syncs_applying",
    "Catalogue syncs being applied, or cut off midway and not sent again (applied in part).",
    registry=REGISTRY,
)
POOL_CONNECTIONS = Gauge(
    "registry_db_pool_connections",
    "Connections in the database pool, by state (in_use, idle).",
    ["state"],
    registry=REGISTRY,
)
POOL_MAX = Gauge(
    "registry_db_pool_max_connections",
    "The most connections the pool will open.",
    registry=REGISTRY,
)
RATE_LIMIT = Gauge(
    "registry_rate_limit_per_process",
    "A limit each replica keeps in its own memory, by channel: public_reports in requests "
    "per client address per window, webhooks in deliveries per platform per second. Not "
    "shared: behind N replicas a sender may get up to N times this.",
    ["channel"],
    registry=REGISTRY,
)
RATE_LIMIT_WINDOW = Gauge(
    "registry_rate_limit_window_seconds",
    "The window over which a per-process limit refills, by channel.",
    ["channel"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "registry_rate_limited",
    "Requests this process refused with 429 under a per-process limit, by channel.",
    ["channel"],
    registry=REGISTRY,
)
PROBE_FAILURES = Counter(
    "registry_metrics_probe_failures",
    "Scrape-time probes that failed (the database did not answer, or a query failed).",
    ["probe"],
    registry=REGISTRY,
)

#: The outcomes a webhook delivery can have; anything else is a programming error.
DELIVERY_OUTCOMES = frozenset({"accepted", "duplicate", "rejected"})
_MAX_LABEL = 64


#: Labelled children by (method, route, status): ``labels()`` costs more than the count.
_request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request (called by the request middleware)."""
    key = (method, route, status)
    series = _request_series.get(key)
    if series is None:
        labels = (method, route, str(status))
        series = _request_series.setdefault(
            key, (HTTP_REQUESTS.labels(*labels), HTTP_LATENCY.labels(*labels))
        )
    series[0].inc()
    series[1].observe(seconds)


def record_delivery(outcome: str, reason: str | None = None) -> None:
    """Count one webhook delivery.

    ``outcome`` is ``accepted``, ``duplicate`` or ``rejected``; ``reason`` says why a
    delivery was rejected and must come from a short fixed vocabulary (``bad_signature``,
    ``stale_timestamp``, ``too_large``, ...), never from the request, because every distinct
    value becomes a time series. It is ignored for the other outcomes.
    """
    if outcome not in DELIVERY_OUTCOMES:
        raise ValueError(f"unknown delivery outcome {outcome!r}")
    label = (reason or "unspecified")[:_MAX_LABEL] if outcome == "rejected" else ""
    WEBHOOK_DELIVERIES.labels(outcome, label).inc()


def describe_rate_limits(
    *, public_limit: int, public_window: float, webhook_rate: float, webhook_burst: int
) -> None:
    """Publish this process's own limits (set once, when the app is built)."""
    RATE_LIMIT.labels("public_reports").set(public_limit)
    RATE_LIMIT_WINDOW.labels("public_reports").set(public_window)
    RATE_LIMIT.labels("webhooks").set(webhook_rate)
    # A bucket of ``burst`` refilling at ``rate`` a second: its window is burst / rate.
    RATE_LIMIT_WINDOW.labels("webhooks").set(webhook_burst / max(webhook_rate, 1e-6))


def record_rate_limited(channel: str) -> None:
    """Count one request refused by a per-process limit (``public_reports``, ``webhooks``)."""
    RATE_LIMITED.labels(channel).inc()


def observe_batch(size: int) -> None:
    WEBHOOK_BATCH_SIZE.observe(size)


def record_outbox_attempt(outcome: str) -> None:
    """Count one attempt to deliver an outbox notification (``delivered``, ``failed``, ...)."""
    OUTBOX_ATTEMPTS.labels(outcome[:_MAX_LABEL]).inc()


def set_outbox_backlog(*, pending: int, oldest_age_seconds: float) -> None:
    """Set the outbox gauges; meant for a probe that counts the waiting rows."""
    OUTBOX_BACKLOG.set(pending)
    OUTBOX_OLDEST_AGE.set(max(0.0, oldest_age_seconds))


def set_checkpoint_lag(*, events: int, seconds: float) -> None:
    """Set the checkpoint gauges; meant for a probe comparing the ledger with the last seal."""
    CHECKPOINT_LAG_EVENTS.set(events)
    CHECKPOINT_LAG_SECONDS.set(max(0.0, seconds))


# The probes' queries (``service.db.queries``) are each an index lookup or a bounded scan,
# cheap on any ledger size.


async def probe_ledger_head(conn: asyncpg.Connection) -> None:
    """The newest ledger sequence number."""
    LEDGER_HEAD.set(await ledger_q.select_ledger_head(conn))


async def probe_checkpoint_lag(conn: asyncpg.Connection) -> None:
    """How far the signed checkpoints trail the ledger, in events and in seconds."""
    events, seconds = await ledger_q.select_checkpoint_lag(conn)
    set_checkpoint_lag(events=events, seconds=seconds)


async def probe_outbox(conn: asyncpg.Connection) -> None:
    """Notifications waiting in the outbox, and how long the oldest has waited."""
    pending, oldest = await outbox_q.select_backlog(conn)
    set_outbox_backlog(pending=pending, oldest_age_seconds=oldest)


async def probe_records_divergent(conn: asyncpg.Connection) -> None:
    """Records found differing from their ledger state (by any replica's reconciler)."""
    RECORDS_DIVERGENT.set(await reconciliation_q.count_divergent_records(conn))


async def probe_catalogue_syncs_applying(conn: asyncpg.Connection) -> None:
    """Catalogue syncs not applied whole: under way, or cut off and waiting to be resent."""
    CATALOGUE_SYNCS_APPLYING.set(await catalogue_q.count_applying(conn))


#: Probes every app runs; a capability with gauges of its own adds its probe here.
DEFAULT_PROBES: tuple[Probe, ...] = (
    probe_ledger_head,
    probe_checkpoint_lag,
    probe_outbox,
    probe_records_divergent,
    probe_catalogue_syncs_applying,
)


def observe_pool(pool: Any) -> None:
    """Set the pool gauges from an asyncpg pool (at scrape time)."""
    if pool is None:
        return
    size = pool.get_size()
    idle = pool.get_idle_size()
    POOL_CONNECTIONS.labels("in_use").set(size - idle)
    POOL_CONNECTIONS.labels("idle").set(idle)
    POOL_MAX.set(pool.get_max_size())


async def run_probes(pool: asyncpg.Pool, probes: Sequence[Probe], within: float) -> None:
    """Run ``probes`` on one pooled connection, bounded by ``within`` seconds in all."""
    try:
        async with asyncio.timeout(within), connection(pool) as conn:
            for probe in probes:
                try:
                    await probe(conn)
                except asyncpg.PostgresError:
                    # One failed query (a table another revision adds, say) spoils no other.
                    PROBE_FAILURES.labels(probe.__name__).inc()
    except (*DB_FAILURES, Unavailable):
        for probe in probes:
            PROBE_FAILURES.labels(probe.__name__).inc()


def exposition() -> bytes:
    """Everything in the registry, in the text exposition format."""
    return generate_latest(REGISTRY)
