"""SQL for bulk exports: one SELECT per dataset, streamed out with ``COPY ... TO STDOUT``.

Every query takes the same five filters, in this order, each NULL when unused:
``$1`` from (inclusive), ``$2`` to (exclusive), ``$3`` platform id, ``$4`` stage,
``$5`` model id. The time range applies to ``recorded_at`` for events and to
``created_at`` for records. Rows come in a stable order (sequence or id), so two exports of
the same range are byte-identical.

The column lists here are the export's contract: CSV headers and JSON keys, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

__all__ = ["COLUMNS", "DATASETS", "copy_csv", "copy_jsonl", "count_rows"]


def _ts(column: str) -> str:
    """A timestamp as RFC 3339 text in UTC, the same in CSV and in JSON lines."""
    name = column.split(".")[-1]
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS {name}"""


EVENTS = f"""
SELECT e.seq, e.stage, e.kind, e.subject_type, e.subject_id, e.model_id, e.platform_id,
       e.actor_id, {_ts("e.occurred_at")}, {_ts("e.recorded_at")}, e.payload
FROM events e
WHERE ($1::timestamptz IS NULL OR e.recorded_at >= $1)
  AND ($2::timestamptz IS NULL OR e.recorded_at < $2)
  AND ($3::uuid IS NULL OR e.platform_id = $3)
  AND ($4::text IS NULL OR e.stage = $4)
  AND ($5::uuid IS NULL OR e.model_id = $5)
ORDER BY e.seq
"""

MODELS = f"""
SELECT m.id, m.name, m.provider, m.modalities, m.tasks, m.base_model_id, b.name AS base_model,
       m.derivation, m.weights_openness, m.code_openness, m.data_openness,
       m.model_card_openness, {_ts("m.created_at")}, {_ts("m.updated_at")}
FROM models m LEFT JOIN models b ON b.id = m.base_model_id
WHERE ($1::timestamptz IS NULL OR m.created_at >= $1)
  AND ($2::timestamptz IS NULL OR m.created_at < $2)
  AND ($3::uuid IS NULL OR EXISTS (
        SELECT 1 FROM hostings h WHERE h.model_id = m.id AND h.platform_id = $3))
  AND ($4::text IS NULL OR $4 = 'prevent')
  AND ($5::uuid IS NULL OR m.id = $5)
ORDER BY m.id
"""

HOSTINGS = f"""
SELECT h.id, h.model_id, m.name AS model, h.platform_id, p.slug AS platform, h.external_id,
       h.url, h.revision, h.licence, h.gated, h.disabled, h.status, h.downloads,
       {_ts("h.downloads_at")}, h.model_card_present, h.model_card_url, h.safety_testing_present,
       h.safety_testing_url, h.risk_analysis_present, h.risk_analysis_url,
       h.use_guidance_present, h.use_guidance_url, {_ts("h.created_at")}, {_ts("h.updated_at")}
FROM hostings h JOIN models m ON m.id = h.model_id JOIN platforms p ON p.id = h.platform_id
WHERE ($1::timestamptz IS NULL OR h.created_at >= $1)
  AND ($2::timestamptz IS NULL OR h.created_at < $2)
  AND ($3::uuid IS NULL OR h.platform_id = $3)
  AND ($4::text IS NULL OR $4 = 'prevent')
  AND ($5::uuid IS NULL OR h.model_id = $5)
ORDER BY h.id
"""

#: dataset -> its SELECT.
DATASETS: dict[str, str] = {
    "events": EVENTS,
    "models": MODELS,
    "hostings": HOSTINGS,
}

#: dataset -> its columns, in order (the CSV header and the JSON keys).
COLUMNS: dict[str, tuple[str, ...]] = {
    "events": (
        "seq",
        "stage",
        "kind",
        "subject_type",
        "subject_id",
        "model_id",
        "platform_id",
        "actor_id",
        "occurred_at",
        "recorded_at",
        "payload",
    ),
    "models": (
        "id",
        "name",
        "provider",
        "modalities",
        "tasks",
        "base_model_id",
        "base_model",
        "derivation",
        "weights_openness",
        "code_openness",
        "data_openness",
        "model_card_openness",
        "created_at",
        "updated_at",
    ),
    "hostings": (
        "id",
        "model_id",
        "model",
        "platform_id",
        "platform",
        "external_id",
        "url",
        "revision",
        "licence",
        "gated",
        "disabled",
        "status",
        "downloads",
        "downloads_at",
        "model_card_present",
        "model_card_url",
        "safety_testing_present",
        "safety_testing_url",
        "risk_analysis_present",
        "risk_analysis_url",
        "use_guidance_present",
        "use_guidance_url",
        "created_at",
        "updated_at",
    ),
}

Filters = tuple[datetime | None, datetime | None, UUID | None, str | None, UUID | None]
Sink = Callable[[bytes], Coroutine[Any, Any, None]]


async def copy_csv(
    conn: asyncpg.Connection, *, dataset: str, filters: Filters, output: Sink, seconds: float
) -> str:
    """Stream the dataset as RFC 4180 CSV with a header row; returns ``COPY <rows>``."""
    return await conn.copy_from_query(
        DATASETS[dataset], *filters, output=output, format="csv", header=True, timeout=seconds
    )


async def copy_jsonl(
    conn: asyncpg.Connection, *, dataset: str, filters: Filters, output: Sink, seconds: float
) -> str:
    """Stream the dataset as one JSON object per line; returns ``COPY <rows>``.

    PostgreSQL renders each row with ``row_to_json``, which escapes every control character,
    so no line break or byte below 0x20 occurs inside a row. COPY's CSV mode with a quote and
    delimiter from that excluded range then passes each row through untouched, where its
    text mode would double every backslash.
    """
    query = f"SELECT row_to_json(x) FROM ({DATASETS[dataset]}) x"
    return await conn.copy_from_query(
        query,
        *filters,
        output=output,
        format="csv",
        quote="\x01",
        delimiter="\x02",
        timeout=seconds,
    )


async def count_rows(conn: asyncpg.Connection, *, dataset: str, filters: Filters) -> int:
    query = f"SELECT count(*) FROM ({DATASETS[dataset]}) x"
    return int(await conn.fetchval(query, *filters))
