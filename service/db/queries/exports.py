"""SQL for bulk exports: one SELECT per dataset, streamed out with ``COPY ... TO STDOUT``.

Every query takes the same five filters, in this order, each NULL when unused:
``$1`` from (inclusive), ``$2`` to (exclusive), ``$3`` platform id, ``$4`` stage,
``$5`` model id, and ``$6``, a JSON object of narrowing filters (see ``NARROWING``) that
only hostings, incidents and decisions take. The time range applies to ``recorded_at`` for
events and to ``created_at`` for records (``reported_at`` for incidents, ``proposed_at`` for
decisions). Rows come in a stable order (sequence or id), so two exports of
the same range are byte-identical.

The column lists here are the export's contract: CSV headers and JSON keys, in order.

CSV is read by spreadsheets, which run a cell that begins with ``=``, ``+``, ``-``, ``@``,
TAB or CR as a formula (CSV injection). The CSV variant of each query therefore prefixes
such a text cell with ``'`` (OWASP's advice), in PostgreSQL, so the export stays a bare
``COPY``; numbers, booleans, identifiers, timestamps, arrays (``{...}``) and JSON
(``{...}``/``[...]``) are left as they are, and JSON lines carry every value unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

__all__ = [
    "ARTICLE73",
    "COLUMNS",
    "CONSTRAINED",
    "CSV_DATASETS",
    "DATASETS",
    "FORMULA_STARTS",
    "GUARDED",
    "NARROWING",
    "REDACTED",
    "copy_csv",
    "copy_jsonl",
    "count_rows",
    "csv_query_for",
    "query_for",
    "select_subjects_after",
    "set_export_session",
]


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
  AND $6::jsonb IS NULL
ORDER BY e.seq
"""

MODELS = f"""
SELECT m.id, m.name, m.provider, m.modalities, m.tasks, m.base_model_id, b.name AS base_model,
       m.derivation, m.weights_openness, m.code_openness, m.data_openness,
       m.model_card_openness,
       ARRAY(SELECT DISTINCT h.purl COLLATE "C" FROM hostings h
             WHERE h.model_id = m.id AND h.status <> 'removed' AND h.purl IS NOT NULL
               AND ($3::uuid IS NULL OR h.platform_id = $3)
             ORDER BY 1) AS purls,
       {_ts("m.created_at")}, {_ts("m.updated_at")}
FROM models m LEFT JOIN models b ON b.id = m.base_model_id
WHERE ($1::timestamptz IS NULL OR m.created_at >= $1)
  AND ($2::timestamptz IS NULL OR m.created_at < $2)
  AND ($3::uuid IS NULL OR EXISTS (
        SELECT 1 FROM hostings h WHERE h.model_id = m.id AND h.platform_id = $3))
  AND ($4::text IS NULL OR $4 = 'prevent')
  AND ($5::uuid IS NULL OR m.id = $5)
  AND $6::jsonb IS NULL
ORDER BY m.id
"""

#: The documentation elements a hosting records, each as ``<element>_present``.
DOCUMENTS = ("model_card", "safety_testing", "risk_analysis", "use_guidance")


def _document(alias: str, element: str) -> str:
    """Whether the hosting has the element named by the SQL text ``element``."""
    cases = " ".join(f"WHEN '{d}' THEN {alias}.{d}_present" for d in DOCUMENTS)
    return f"CASE {element} {cases} END"


#: Article 73 outcomes of a serious incident, as the compliance report counts them: only
#: incidents on the clock (serious, neither rejected nor a duplicate) have one.
ARTICLE73 = {
    "met": "i.article73_clock AND i.authority_initial_report_at <= i.report_due_at"
    " AND coalesce(i.authority_initial_report_recorded_at, i.authority_initial_report_at)"
    " <= i.report_due_at",
    "recorded_late": "i.article73_clock AND i.authority_initial_report_at <= i.report_due_at"
    " AND i.authority_initial_report_recorded_at > i.report_due_at",
    "missed": "i.article73_clock AND (i.authority_initial_report_at > i.report_due_at"
    " OR (i.authority_initial_report_at IS NULL AND i.report_due_at < coalesce($2, now())))",
    "pending": "i.article73_clock AND i.authority_initial_report_at IS NULL"
    " AND i.report_due_at >= coalesce($2, now())",
}
_ARTICLE73_CASES = "".join(f"\n       WHEN '{k}' THEN {v}" for k, v in ARTICLE73.items())

#: The narrowing filters (``$6``) each dataset takes; any other dataset takes none.
NARROWING: dict[str, frozenset[str]] = {
    "hostings": frozenset({"status", "documented", "undocumented"}),
    "incidents": frozenset({"status", "category", "serious", "duplicates", "article73"}),
    "decisions": frozenset({"status", "action"}),
}

HOSTINGS = f"""
SELECT h.id, h.model_id, m.name AS model, h.platform_id, p.slug AS platform, h.external_id,
       h.url, h.revision, h.purl, h.licence, h.gated, h.disabled, h.status, h.downloads,
       {_ts("h.downloads_at")}, h.model_card_present, h.model_card_url, h.safety_testing_present,
       h.safety_testing_url, h.risk_analysis_present, h.risk_analysis_url,
       h.use_guidance_present, h.use_guidance_url, {_ts("h.created_at")}, {_ts("h.updated_at")}
FROM hostings h JOIN models m ON m.id = h.model_id JOIN platforms p ON p.id = h.platform_id
WHERE ($1::timestamptz IS NULL OR h.created_at >= $1)
  AND ($2::timestamptz IS NULL OR h.created_at < $2)
  AND ($3::uuid IS NULL OR h.platform_id = $3)
  AND ($4::text IS NULL OR $4 = 'prevent')
  AND ($5::uuid IS NULL OR h.model_id = $5)
  AND ($6::jsonb->>'status' IS NULL OR h.status::text = $6::jsonb->>'status')
  AND ($6::jsonb->>'documented' IS NULL OR {_document("h", "$6::jsonb->>'documented'")})
  AND ($6::jsonb->>'undocumented' IS NULL
       OR NOT {_document("h", "$6::jsonb->>'undocumented'")})
ORDER BY h.id
"""

_INCIDENT_FROM = f"""
FROM incidents i LEFT JOIN platforms rp ON rp.id = i.reporter_platform_id
WHERE ($1::timestamptz IS NULL OR i.reported_at >= $1)
  AND ($2::timestamptz IS NULL OR i.reported_at < $2)
  AND ($3::uuid IS NULL OR i.reporter_platform_id = $3 OR EXISTS (
        SELECT 1 FROM incident_hostings ih JOIN hostings h ON h.id = ih.hosting_id
        WHERE ih.incident_id = i.id AND h.platform_id = $3))
  AND ($4::text IS NULL OR $4 = 'detect')
  AND ($5::uuid IS NULL OR EXISTS (
        SELECT 1 FROM incident_models im WHERE im.incident_id = i.id AND im.model_id = $5))
  AND ($6::jsonb->>'status' IS NULL OR i.status::text = $6::jsonb->>'status')
  AND ($6::jsonb->>'category' IS NULL OR i.category::text = $6::jsonb->>'category')
  AND ($6::jsonb->>'serious' IS NULL OR i.serious = ($6::jsonb->>'serious')::boolean)
  AND ($6::jsonb->>'duplicates' IS NULL OR ($6::jsonb->>'duplicates')::boolean
       OR i.status::text <> 'duplicate')
  AND ($6::jsonb->>'article73' IS NULL OR CASE $6::jsonb->>'article73'{_ARTICLE73_CASES} END)
ORDER BY i.id
"""


def _incidents(text: str) -> str:
    """The incidents dataset; ``text`` renders title and description (or redacts them).

    The follow-up token's hash, the reporting principal and the confidential reporter's
    contact details (a table of their own) are never selected.
    """
    return f"""
SELECT i.id, i.ref, {text}, i.category, i.subcategory, i.harm_types,
       i.affected_parties, i.severity, i.serious, i.serious_kind, i.death, i.widespread,
       i.status, i.duplicate_of, i.rejection_reason, i.channel,
       rp.slug AS reporter_platform,
       ARRAY(SELECT m.name FROM incident_models im JOIN models m ON m.id = im.model_id
             WHERE im.incident_id = i.id ORDER BY m.name) AS models,
       i.unlisted_models,
       ARRAY(SELECT ih.hosting_id FROM incident_hostings ih WHERE ih.incident_id = i.id
             ORDER BY ih.hosting_id) AS hostings,
       ARRAY(SELECT a.scheme || ':' || a.value FROM incident_aliases a
             WHERE a.incident_id = i.id ORDER BY a.scheme, a.value) AS aliases,
       i.evidence_urls, {_ts("i.occurred_at")}, {_ts("i.aware_at")}, {_ts("i.reported_at")},
       {_ts("i.triaged_at")}, {_ts("i.mitigated_at")}, {_ts("i.closed_at")},
       {_ts("i.report_due_at")}, {_ts("i.authority_initial_report_at")},
       {_ts("i.authority_complete_report_at")}
{_INCIDENT_FROM}"""


INCIDENTS = _incidents("i.title, i.description")
#: The same rows with the free text withheld (the regulator redaction policy).
INCIDENTS_REDACTED = _incidents(
    "'[redacted]'::text AS title, CASE WHEN i.description = '' THEN '' "
    "ELSE '[redacted]' END AS description"
)

AUDITS = f"""
SELECT a.id, a.auditor_id, a.method, a.components, a.summary, {_ts("a.started_at")},
       {_ts("a.completed_at")}, a.outcome,
       ARRAY(SELECT m.name FROM audit_models am JOIN models m ON m.id = am.model_id
             WHERE am.audit_id = a.id ORDER BY m.name) AS models,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                 'id', f.id, 'title', f.title, 'severity', f.severity, 'status', f.status,
                 'incident_id', f.incident_id) ORDER BY f.id), '[]')
        FROM audit_findings f WHERE f.audit_id = a.id) AS findings,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                 'metric', e.metric, 'value', e.value, 'dataset', e.dataset,
                 'method', e.method) ORDER BY e.id), '[]')
        FROM audit_evaluations e WHERE e.audit_id = a.id) AS evaluations,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('url', x.url, 'sha256', x.sha256)
                 ORDER BY x.id), '[]')
        FROM audit_artefacts x WHERE x.audit_id = a.id) AS artefacts
FROM audits a
WHERE ($1::timestamptz IS NULL OR a.started_at >= $1)
  AND ($2::timestamptz IS NULL OR a.started_at < $2)
  AND ($3::uuid IS NULL OR EXISTS (
        SELECT 1 FROM audit_models am JOIN hostings h ON h.model_id = am.model_id
        WHERE am.audit_id = a.id AND h.platform_id = $3))
  AND ($4::text IS NULL OR $4 = 'detect')
  AND ($5::uuid IS NULL OR EXISTS (
        SELECT 1 FROM audit_models am WHERE am.audit_id = a.id AND am.model_id = $5))
  AND $6::jsonb IS NULL
ORDER BY a.id
"""

DECISIONS = f"""
SELECT d.id, d.model_id, m.name AS model, d.revisions, d.action, d.reason, d.policy_id,
       d.policy_clause, d.include_derivatives, d.platform_ids, {_ts("d.effective_at")},
       {_ts("d.sunset_at")}, s.name AS successor_model, d.old_licence, d.new_licence,
       d.prohibited_uses, d.status, d.proposed_by, d.approved_by, {_ts("d.proposed_at")},
       {_ts("d.approved_at")}, {_ts("d.notified_at")}, {_ts("d.executed_at")},
       {_ts("d.withdrawn_at")}, {_ts("d.confirm_by")},
       ARRAY(SELECT di.incident_id FROM decommission_incidents di
             WHERE di.decommission_id = d.id ORDER BY di.incident_id) AS incidents,
       ARRAY(SELECT df.finding_id FROM decommission_findings df
             WHERE df.decommission_id = d.id ORDER BY df.finding_id) AS findings,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                 'platform', p.slug, 'hosting_id', t.hosting_id, 'model_id', t.model_id,
                 'inherited', t.inherited, 'confirmed_at', t.confirmed_at)
                 ORDER BY p.slug, t.hosting_id), '[]')
        FROM decommission_targets t JOIN platforms p ON p.id = t.platform_id
        WHERE t.decommission_id = d.id) AS targets
FROM decommissions d JOIN models m ON m.id = d.model_id
LEFT JOIN models s ON s.id = d.successor_model_id
WHERE ($1::timestamptz IS NULL OR d.proposed_at >= $1)
  AND ($2::timestamptz IS NULL OR d.proposed_at < $2)
  AND ($3::uuid IS NULL OR EXISTS (
        SELECT 1 FROM decommission_targets t WHERE t.decommission_id = d.id
          AND t.platform_id = $3))
  AND ($4::text IS NULL OR $4 = 'respond')
  AND ($5::uuid IS NULL OR d.model_id = $5)
  AND ($6::jsonb->>'status' IS NULL OR d.status::text = $6::jsonb->>'status')
  AND ($6::jsonb->>'action' IS NULL OR d.action::text = $6::jsonb->>'action')
ORDER BY d.id
"""


#: dataset -> its SELECT.
DATASETS: dict[str, str] = {
    "events": EVENTS,
    "models": MODELS,
    "hostings": HOSTINGS,
    "incidents": INCIDENTS,
    "audits": AUDITS,
    "decisions": DECISIONS,
}
#: The queries used instead when a dataset's free text is redacted.
REDACTED: dict[str, str] = {"incidents": INCIDENTS_REDACTED}

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
        "purls",
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
        "purl",
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
    "incidents": (
        "id",
        "ref",
        "title",
        "description",
        "category",
        "subcategory",
        "harm_types",
        "affected_parties",
        "severity",
        "serious",
        "serious_kind",
        "death",
        "widespread",
        "status",
        "duplicate_of",
        "rejection_reason",
        "channel",
        "reporter_platform",
        "models",
        "unlisted_models",
        "hostings",
        "aliases",
        "evidence_urls",
        "occurred_at",
        "aware_at",
        "reported_at",
        "triaged_at",
        "mitigated_at",
        "closed_at",
        "report_due_at",
        "authority_initial_report_at",
        "authority_complete_report_at",
    ),
    "audits": (
        "id",
        "auditor_id",
        "method",
        "components",
        "summary",
        "started_at",
        "completed_at",
        "outcome",
        "models",
        "findings",
        "evaluations",
        "artefacts",
    ),
    "decisions": (
        "id",
        "model_id",
        "model",
        "revisions",
        "action",
        "reason",
        "policy_id",
        "policy_clause",
        "include_derivatives",
        "platform_ids",
        "effective_at",
        "sunset_at",
        "successor_model",
        "old_licence",
        "new_licence",
        "prohibited_uses",
        "status",
        "proposed_by",
        "approved_by",
        "proposed_at",
        "approved_at",
        "notified_at",
        "executed_at",
        "withdrawn_at",
        "confirm_by",
        "incidents",
        "findings",
        "targets",
    ),
}

#: The first characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_STARTS_SQL = "'=', '+', '-', '@', E'\\t', E'\\r'"

#: Text columns the database's CHECK constraints hold to a lower-case first letter: no
#: guard needed. The ledger export, the big one, has no other text column, so its CSV
#: query is the bare query, at the full speed of ``COPY``.
CONSTRAINED: dict[str, frozenset[str]] = {"events": frozenset({"stage", "kind", "subject_type"})}

#: dataset -> its text columns the CSV variant neutralises: every text column but those
#: above and the timestamps rendered by ``_ts`` (they begin with a digit).
GUARDED: dict[str, frozenset[str]] = {
    "events": frozenset(),
    "models": frozenset(
        {
            "name",
            "provider",
            "base_model",
            "derivation",
            "weights_openness",
            "code_openness",
            "data_openness",
            "model_card_openness",
        }
    ),
    "hostings": frozenset(
        {
            "model",
            "platform",
            "external_id",
            "url",
            "revision",
            "purl",
            "licence",
            "status",
            "model_card_url",
            "safety_testing_url",
            "risk_analysis_url",
            "use_guidance_url",
        }
    ),
    "incidents": frozenset(
        {
            "ref",
            "title",
            "description",
            "category",
            "subcategory",
            "severity",
            "serious_kind",
            "status",
            "rejection_reason",
            "channel",
            "reporter_platform",
        }
    ),
    "audits": frozenset({"method", "summary", "outcome"}),
    "decisions": frozenset(
        {
            "model",
            "action",
            "reason",
            "policy_clause",
            "successor_model",
            "old_licence",
            "new_licence",
            "status",
        }
    ),
}


def _neutralised(column: str) -> str:
    """``x.<column>`` with a leading ``'`` if it begins like a formula (NULL stays NULL)."""
    value = f"x.{column}"
    return (
        f"CASE WHEN left({value}, 1) IN ({_STARTS_SQL}) THEN '''' || {value} "
        f"ELSE {value} END AS {column}"
    )


def _csv(dataset: str, query: str) -> str:
    """The dataset's query with its text cells neutralised, its columns in the same order."""
    guarded = GUARDED[dataset]
    if not guarded:
        return query
    columns = ", ".join(_neutralised(c) if c in guarded else f"x.{c}" for c in COLUMNS[dataset])
    return f"SELECT {columns} FROM ({query}) x"


#: The CSV variants, built once from the constants above.
CSV_DATASETS: dict[str, str] = {name: _csv(name, sql) for name, sql in DATASETS.items()}
CSV_REDACTED: dict[str, str] = {name: _csv(name, sql) for name, sql in REDACTED.items()}

Filters = tuple[
    datetime | None, datetime | None, UUID | None, str | None, UUID | None, dict[str, Any] | None
]
Sink = Callable[[bytes], Coroutine[Any, Any, None]]


def query_for(dataset: str, *, redact: bool = False) -> str:
    """The dataset's SELECT; with ``redact``, its free-text-withheld variant if it has one."""
    return REDACTED.get(dataset, DATASETS[dataset]) if redact else DATASETS[dataset]


def csv_query_for(dataset: str, *, redact: bool = False) -> str:
    """``query_for``'s CSV variant: the same rows, formula-like text cells neutralised."""
    if redact:
        return CSV_REDACTED.get(dataset, CSV_DATASETS[dataset])
    return CSV_DATASETS[dataset]


def _through(query: str, dataset: str, through_seq: int | None) -> tuple[str, tuple[Any, ...]]:
    """The events query cut at ``through_seq`` (a bundle's checkpoint), and its parameter."""
    if dataset != "events" or through_seq is None:
        return query, ()
    return f"SELECT * FROM ({query}) c WHERE c.seq <= $7", (through_seq,)


async def copy_csv(
    conn: asyncpg.Connection,
    *,
    dataset: str,
    filters: Filters,
    output: Sink,
    seconds: float,
    redact: bool = False,
    through_seq: int | None = None,
) -> str:
    """Stream the dataset as RFC 4180 CSV with a header row; returns ``COPY <rows>``.

    A text cell that a spreadsheet would run as a formula starts with ``'`` (see above).
    ``through_seq`` cuts the events at that seq (other datasets ignore it).
    """
    query, extra = _through(csv_query_for(dataset, redact=redact), dataset, through_seq)
    return await conn.copy_from_query(
        query,
        *filters,
        *extra,
        output=output,
        format="csv",
        header=True,
        timeout=seconds,
    )


async def copy_jsonl(
    conn: asyncpg.Connection,
    *,
    dataset: str,
    filters: Filters,
    output: Sink,
    seconds: float,
    redact: bool = False,
    through_seq: int | None = None,
) -> str:
    """Stream the dataset as one JSON object per line; returns ``COPY <rows>``.

    PostgreSQL renders each row with ``row_to_json``, which escapes every control character,
    so no line break or byte below 0x20 occurs inside a row. COPY's CSV mode with a quote and
    delimiter from that excluded range then passes each row through untouched, where its
    text mode would double every backslash.
    """
    query, extra = _through(query_for(dataset, redact=redact), dataset, through_seq)
    query = f"SELECT row_to_json(x) FROM ({query}) x"
    return await conn.copy_from_query(
        query,
        *filters,
        *extra,
        output=output,
        format="csv",
        quote="\x01",
        delimiter="\x02",
        timeout=seconds,
    )


async def count_rows(
    conn: asyncpg.Connection,
    *,
    dataset: str,
    filters: Filters,
    seconds: float | None = None,
    through_seq: int | None = None,
) -> int:
    """Rows a dataset holds; ``seconds`` overrides the pool's answer timeout (a big count)."""
    query, extra = _through(DATASETS[dataset], dataset, through_seq)
    query = f"SELECT count(*) FROM ({query}) x"
    return int(await conn.fetchval(query, *filters, *extra, timeout=seconds))


#: The subjects of events after a seq (a bundle's cut), a bounded list.
SUBJECTS_AFTER = """
SELECT count(*) AS events, coalesce(
  (SELECT array_agg(DISTINCT s.subject_id::text) FROM (
     SELECT subject_id FROM events WHERE seq > $1 ORDER BY seq LIMIT 100000) s), '{}'
) AS subjects
FROM events WHERE seq > $1
"""


async def select_subjects_after(conn: asyncpg.Connection, *, seq: int) -> tuple[int, list[str]]:
    """How many events follow ``seq``, and the subjects of (up to 100,000 of) them."""
    row = await conn.fetchrow(SUBJECTS_AFTER, seq)
    assert row is not None  # noqa: S101 - an aggregate always yields a row
    return int(row["events"]), sorted(row["subjects"])


#: A bulk read runs as long as it needs, and renders times in UTC whatever the server's zone.
EXPORT_SESSION = "SET LOCAL statement_timeout = 0; SET LOCAL TimeZone = 'UTC'"


async def set_export_session(conn: asyncpg.Connection) -> None:
    """Ready the current transaction for an export (see ``EXPORT_SESSION``)."""
    await conn.execute(EXPORT_SESSION)
