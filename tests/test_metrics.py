"""``GET /metrics``: the exposition format, per-route request metrics, deliveries, probes."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from service import metrics


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> str:
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


async def test_metrics_needs_no_key_and_lists_every_family(client: httpx.AsyncClient) -> None:
    text = await scrape(client)
    names = {f.name for f in text_string_to_metric_families(text)}
    for expected in (
        "registry_http_requests",
        "registry_http_request_duration_seconds",
        "registry_http_requests_in_flight",
        "registry_webhook_deliveries",
        "registry_outbox_backlog",
        "registry_outbox_oldest_age_seconds",
        "registry_outbox_delivery_attempts",
        "registry_checkpoint_lag_events",
        "registry_checkpoint_lag_seconds",
        "registry_ledger_head_seq",
        "registry_db_pool_connections",
        "registry_db_pool_max_connections",
        "process_cpu_seconds",
    ):
        assert expected in names, expected


async def test_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    route = "/v1/models/{model_id}"
    labels = {"method": "GET", "route": route, "status": "404"}
    before = await scrape(client)
    missing = "/v1/models/00000000-0000-0000-0000-000000000000"
    for _ in range(3):
        assert (await client.get(missing, headers=admin)).status_code == 404
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/no/such/path")).status_code == 404
    after = await scrape(client)

    assert value(after, "registry_http_requests_total", **labels) - value(
        before, "registry_http_requests_total", **labels
    ) == pytest.approx(3)
    count = "registry_http_request_duration_seconds_count"
    assert value(after, count, **labels) - value(before, count, **labels) == pytest.approx(3)
    # Raw paths never become label values; unmatched paths share one.
    assert missing not in after
    unmatched = {"method": "GET", "route": "(unmatched)", "status": "404"}
    assert value(after, "registry_http_requests_total", **unmatched) >= 1
    assert value(
        after, "registry_http_requests_total", method="GET", route="/healthz", status="200"
    )


async def test_deliveries_are_counted_by_outcome_and_reason(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    metrics.record_delivery("accepted")
    metrics.record_delivery("duplicate", reason="ignored for non-rejections")
    metrics.record_delivery("rejected", reason="bad_signature")
    metrics.record_delivery("rejected", reason="bad_signature")
    after = await scrape(client)
    name = "registry_webhook_deliveries_total"

    def delta(**labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(outcome="accepted", reason="") == 1
    assert delta(outcome="duplicate", reason="") == 1
    assert delta(outcome="rejected", reason="bad_signature") == 2
    with pytest.raises(ValueError, match="unknown delivery outcome"):
        metrics.record_delivery("lost")


def test_the_setters_feed_the_registry() -> None:
    # Read the registry directly: a scrape would run the probes, which set these anew.
    metrics.set_outbox_backlog(pending=7, oldest_age_seconds=12.5)
    metrics.set_checkpoint_lag(events=3, seconds=-1)
    metrics.record_outbox_attempt("failed")
    text = generate_latest(metrics.REGISTRY).decode()
    assert value(text, "registry_outbox_backlog") == 7
    assert value(text, "registry_outbox_oldest_age_seconds") == 12.5
    assert value(text, "registry_checkpoint_lag_events") == 3
    assert value(text, "registry_checkpoint_lag_seconds") == 0
    assert value(text, "registry_outbox_delivery_attempts_total", outcome="failed") >= 1


async def test_pool_and_ledger_are_read_at_scrape_time(
    client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    r = await client.post(
        "/v1/platforms",
        json={"slug": f"m-{uniq}", "name": "Metrics", "kind": "model_hub"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    before = await scrape(client)
    text = await scrape(client)
    assert value(text, "registry_db_pool_max_connections") >= 1
    assert value(text, "registry_db_pool_connections", state="idle") >= 1
    assert value(text, "registry_ledger_head_seq") >= 1
    # The tests run no sealer, so the platform's event is not in a checkpoint yet.
    assert value(text, "registry_checkpoint_lag_events") >= 1
    assert value(text, "registry_checkpoint_lag_seconds") >= 0
    assert value(text, "registry_outbox_backlog") >= 0
    failures = "registry_metrics_probe_failures_total"
    for probe in ("probe_ledger_head", "probe_checkpoint_lag", "probe_outbox"):
        assert value(text, failures, probe=probe) == value(before, failures, probe=probe)


async def test_a_failing_probe_is_counted_and_the_scrape_still_answers(
    client: httpx.AsyncClient,
) -> None:
    async def probe_missing_table(conn: object) -> None:
        await conn.fetchval("SELECT count(*) FROM no_such_table_for_metrics")  # type: ignore[attr-defined]

    probes = client._transport.app.state.metric_probes  # type: ignore[attr-defined]
    probes.append(probe_missing_table)
    try:
        text = await scrape(client)
    finally:
        probes.remove(probe_missing_table)
    failures = "registry_metrics_probe_failures_total"
    assert value(text, failures, probe="probe_missing_table") >= 1
    assert value(text, "registry_ledger_head_seq") >= 0
