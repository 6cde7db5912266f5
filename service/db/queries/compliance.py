"""SQL for the compliance report. Every figure is computed here, in PostgreSQL.

Queries take the period's ``from`` (inclusive) and ``to`` (exclusive) and a platform id
(NULL for the whole registry), as far as they need them. What "in the period" and "on the platform" mean:

- prevent: hostings with status ``hosted`` recorded before ``to``, in their state then;
  one hosting is one model on one platform;
- detect: incidents reported in the period, on the platform when the platform reported them
  or hosts a hosting they name; merged duplicates are left out of every figure but the
  count by status;
- audits: audits completed in the period, on the platform when it hosts an audited model;
  open findings are those open at ``to``, of audits started before ``to``;
- respond: decisions proposed in the period, on the platform when it is one of their targets.

**As of ``to``.** Every record is read in its state at ``to``, not today's, so the report
for a past period is a function of the ledger up to the period's end and the same request
gives the same figures next month. A record's state then is the newest state its ledger
events recorded before ``to`` (each event carries its subject's full state); a record with
events, none of them before ``to``, did not exist yet. A record the ledger has no event for
at all (rows loaded straight into the tables) is read as it stands. Each lookup is one
backward step on the ``events_subject`` index per record in the window: set-based, and
proportional to the records in scope rather than to the ledger's length.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

__all__ = [
    "INCIDENTS_THEN",
    "select_audits",
    "select_decisions",
    "select_documentation",
    "select_incidents",
    "select_overdue_platforms",
    "select_platforms_in_scope",
    "select_watch_list",
]


def _then(alias: str, to: str) -> str:
    """``<alias>_then.r``: the row ``alias`` as JSON in its state before ``to`` (a
    parameter), NULL when it did not exist yet."""
    return f"""CROSS JOIN LATERAL (
  SELECT CASE
    WHEN t.st IS NOT NULL THEN t.st
    WHEN NOT EXISTS (SELECT 1 FROM events e WHERE e.subject_id = {alias}.id) THEN to_jsonb({alias})
  END AS r
  FROM (SELECT (SELECT e.payload -> 'state' FROM events e
                WHERE e.subject_id = {alias}.id AND e.recorded_at < {to} AND e.payload ? 'state'
                ORDER BY e.seq DESC LIMIT 1) AS st OFFSET 0) t
  -- Not pulled up into the outer query: it would repeat the lookup for every use of r.
  OFFSET 0
) {alias}_then"""


def _present(doc: str) -> str:
    # A row's column, or a ledger state's nested evidence.
    return (
        f"coalesce((r ->> '{doc}_present')::boolean,"
        f" (r #>> '{{documentation,{doc},present}}')::boolean, false) AS {doc}_present"
    )


_HOSTED = f"""
SELECT model_id, platform_id, coalesce((r ->> 'downloads')::bigint, 0) AS downloads,
       {_present("model_card")}, {_present("safety_testing")},
       {_present("risk_analysis")}, {_present("use_guidance")}
FROM (SELECT h.model_id, h.platform_id, h_then.r
      FROM hostings h {_then("h", "$1")}
      WHERE h.created_at < $1 AND ($2::uuid IS NULL OR h.platform_id = $2)) h
WHERE r ->> 'status' = 'hosted'
"""

DOCUMENTATION = f"""
WITH h AS ({_HOSTED})
SELECT count(*) AS hostings,
       count(DISTINCT model_id) AS models,
       coalesce(sum(downloads), 0)::bigint AS downloads,
       count(*) FILTER (WHERE model_card_present) AS model_card,
       count(*) FILTER (WHERE safety_testing_present) AS safety_testing,
       count(*) FILTER (WHERE risk_analysis_present) AS risk_analysis,
       count(*) FILTER (WHERE use_guidance_present) AS use_guidance,
       coalesce(sum(downloads) FILTER (WHERE model_card_present), 0)::bigint
         AS model_card_downloads,
       coalesce(sum(downloads) FILTER (WHERE safety_testing_present), 0)::bigint
         AS safety_testing_downloads,
       coalesce(sum(downloads) FILTER (WHERE risk_analysis_present), 0)::bigint
         AS risk_analysis_downloads,
       coalesce(sum(downloads) FILTER (WHERE use_guidance_present), 0)::bigint
         AS use_guidance_downloads
FROM h
"""

# The most-downloaded models that together carry 99% of downloads: a model is on the list
# while the downloads of the models ranked above it are short of 99% of the total.
WATCH_LIST = f"""
WITH h AS ({_HOSTED}),
per_model AS (
  SELECT model_id, sum(downloads)::bigint AS downloads,
         bool_and(model_card_present) AS model_card,
         bool_and(safety_testing_present) AS safety_testing,
         bool_and(risk_analysis_present) AS risk_analysis,
         bool_and(use_guidance_present) AS use_guidance
  FROM h GROUP BY model_id
),
ranked AS (
  SELECT p.*, sum(downloads) OVER (ORDER BY downloads DESC, model_id) - downloads AS above,
         sum(downloads) OVER () AS total
  FROM per_model p
)
SELECT r.model_id, m.name AS model, r.downloads,
       round(r.downloads::numeric / r.total, 6)::float8 AS share,
       array_remove(ARRAY[
         CASE WHEN NOT r.model_card THEN 'model_card' END,
         CASE WHEN NOT r.safety_testing THEN 'safety_testing' END,
         CASE WHEN NOT r.risk_analysis THEN 'risk_analysis' END,
         CASE WHEN NOT r.use_guidance THEN 'use_guidance' END], NULL) AS gaps
FROM ranked r JOIN models m ON m.id = r.model_id
WHERE r.total > 0 AND r.downloads > 0 AND r.above < 0.99 * r.total
ORDER BY r.downloads DESC, r.model_id
"""


def _at(name: str) -> str:
    return f"(r ->> '{name}')::timestamptz AS {name}"


_INCIDENTS = f"""
SELECT r ->> 'status' AS status, r ->> 'category' AS category, r ->> 'severity' AS severity,
       (r ->> 'serious')::boolean AS serious,
       coalesce((r ->> 'article73_clock')::boolean, (r ->> 'serious')::boolean
                AND r ->> 'status' NOT IN ('rejected', 'duplicate')) AS article73_clock,
       coalesce((r ->> 'report_due_at')::timestamptz,
                (r #>> '{{deadline,due_at}}')::timestamptz) AS report_due_at,
       {_at("reported_at")}, {_at("triaged_at")}, {_at("mitigated_at")}, {_at("closed_at")},
       {_at("authority_initial_report_at")}, {_at("authority_initial_report_recorded_at")}
FROM (SELECT i_then.r
      FROM incidents i {_then("i", "$2")}
      WHERE i.reported_at >= $1 AND i.reported_at < $2
        AND ($3::uuid IS NULL OR i.reporter_platform_id = $3 OR EXISTS (
              SELECT 1 FROM incident_hostings ih JOIN hostings h ON h.id = ih.hosting_id
              WHERE ih.incident_id = i.id AND h.platform_id = $3))) i
WHERE r IS NOT NULL
"""

#: The period's incidents as the ledger held them at ``$2`` (for the series too).
INCIDENTS_THEN = _INCIDENTS


def _seconds(column: str) -> str:
    return f"extract(epoch FROM i.{column} - i.reported_at)"


INCIDENTS = f"""
WITH i AS ({_INCIDENTS}), live AS (SELECT * FROM i WHERE status <> 'duplicate')
SELECT
  (SELECT count(*) FROM live) AS reported,
  (SELECT coalesce(jsonb_object_agg(status, n), '{{}}') FROM
     (SELECT status, count(*) AS n FROM i GROUP BY status) s) AS by_status,
  (SELECT coalesce(jsonb_object_agg(category, n), '{{}}') FROM
     (SELECT category, count(*) AS n FROM live GROUP BY category) s) AS by_category,
  (SELECT coalesce(jsonb_object_agg(severity, n), '{{}}') FROM
     (SELECT severity, count(*) AS n FROM live GROUP BY severity) s) AS by_severity,
  (SELECT count(*) FROM live WHERE serious) AS serious,
  (SELECT count(*) FROM live
     WHERE article73_clock AND authority_initial_report_at <= report_due_at
       AND coalesce(authority_initial_report_recorded_at, authority_initial_report_at)
           <= report_due_at) AS deadline_met,
  (SELECT count(*) FROM live
     WHERE article73_clock AND authority_initial_report_at <= report_due_at
       AND authority_initial_report_recorded_at > report_due_at) AS deadline_recorded_late,
  (SELECT count(*) FROM live
     WHERE article73_clock AND (authority_initial_report_at > report_due_at
       OR (authority_initial_report_at IS NULL AND report_due_at < $2))) AS deadline_missed,
  (SELECT count(*) FROM live
     WHERE article73_clock AND authority_initial_report_at IS NULL AND report_due_at >= $2)
     AS deadline_pending,
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {_seconds("triaged_at")})
     FROM live i WHERE triaged_at IS NOT NULL) AS triage_p50,
  (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY {_seconds("triaged_at")})
     FROM live i WHERE triaged_at IS NOT NULL) AS triage_p90,
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {_seconds("mitigated_at")})
     FROM live i WHERE mitigated_at IS NOT NULL) AS mitigate_p50,
  (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY {_seconds("mitigated_at")})
     FROM live i WHERE mitigated_at IS NOT NULL) AS mitigate_p90,
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {_seconds("closed_at")})
     FROM live i WHERE closed_at IS NOT NULL) AS close_p50,
  (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY {_seconds("closed_at")})
     FROM live i WHERE closed_at IS NOT NULL) AS close_p90
"""

AUDITS = f"""
WITH scope AS (
  SELECT a.id, a_then.r
  FROM audits a {_then("a", "$2")}
  WHERE a.started_at < $2 AND ($3::uuid IS NULL OR EXISTS (
    SELECT 1 FROM audit_models am JOIN hostings h ON h.model_id = am.model_id
    WHERE am.audit_id = a.id AND h.platform_id = $3))
), known AS (
  SELECT id, r, r ->> 'outcome' AS outcome, {_at("completed_at")} FROM scope WHERE r IS NOT NULL
), done AS (SELECT * FROM known WHERE completed_at >= $1 AND completed_at < $2),
findings AS (
  SELECT f ->> 'severity' AS severity, f ->> 'status' AS status
  FROM known k CROSS JOIN LATERAL jsonb_array_elements(k.r -> 'findings') f
  WHERE k.r ? 'findings'
  UNION ALL
  SELECT f.severity::text, f.status::text
  FROM audit_findings f JOIN known k ON k.id = f.audit_id
  WHERE NOT k.r ? 'findings'
)
SELECT
  (SELECT count(*) FROM done) AS completed,
  (SELECT coalesce(jsonb_object_agg(outcome, n), '{{}}') FROM
     (SELECT outcome, count(*) AS n FROM done GROUP BY outcome) s) AS outcomes,
  (SELECT coalesce(jsonb_object_agg(severity, n), '{{}}') FROM
     (SELECT severity, count(*) AS n FROM findings WHERE status = 'open' GROUP BY severity) s)
     AS open_findings_by_severity
"""

_DECISIONS = f"""
SELECT r ->> 'action' AS action, r ->> 'status' AS status,
       {_at("proposed_at")}, {_at("executed_at")}
FROM (SELECT d_then.r
      FROM decommissions d {_then("d", "$2")}
      WHERE d.proposed_at >= $1 AND d.proposed_at < $2
        AND ($3::uuid IS NULL OR EXISTS (
              SELECT 1 FROM decommission_targets t WHERE t.decommission_id = d.id
                AND t.platform_id = $3))) d
WHERE r IS NOT NULL
"""

DECISIONS = f"""
WITH d AS ({_DECISIONS})
SELECT
  (SELECT count(*) FROM d) AS proposed,
  (SELECT coalesce(jsonb_object_agg(action, n), '{{}}') FROM
     (SELECT action, count(*) AS n FROM d GROUP BY action) s) AS by_action,
  (SELECT coalesce(jsonb_object_agg(status, n), '{{}}') FROM
     (SELECT status, count(*) AS n FROM d GROUP BY status) s) AS by_status,
  (SELECT percentile_cont(0.5) WITHIN GROUP (
     ORDER BY extract(epoch FROM executed_at - proposed_at))
     FROM d WHERE executed_at IS NOT NULL) AS to_execution_p50,
  (SELECT percentile_cont(0.9) WITHIN GROUP (
     ORDER BY extract(epoch FROM executed_at - proposed_at))
     FROM d WHERE executed_at IS NOT NULL) AS to_execution_p90
"""

# Platforms that had not confirmed a decision past its confirmation deadline, at `to` ($1):
# the decision's targets as its state then lists them (a row without events: its table).
OVERDUE_PLATFORMS = f"""
WITH open AS (
  SELECT d.id, d_then.r, (d_then.r ->> 'confirm_by')::timestamptz AS confirm_by
  FROM decommissions d {_then("d", "$1")}
  WHERE d.proposed_at < $1 AND d_then.r ->> 'status' IN ('approved', 'notified')
    AND (d_then.r ->> 'confirm_by')::timestamptz < $1
), waiting AS (
  SELECT o.id AS decision, (x ->> 'platform_id')::uuid AS platform_id, o.confirm_by
  FROM open o CROSS JOIN LATERAL jsonb_array_elements(o.r -> 'targets') x
  WHERE o.r ? 'targets' AND x ->> 'confirmed_at' IS NULL
  UNION ALL
  SELECT o.id, t.platform_id, o.confirm_by
  FROM open o JOIN decommission_targets t ON t.decommission_id = o.id
  WHERE NOT o.r ? 'targets' AND (t.confirmed_at IS NULL OR t.confirmed_at >= $1)
)
SELECT p.slug AS platform, count(DISTINCT w.decision) AS decisions,
       count(*) AS hostings, min(w.confirm_by) AS oldest_deadline
FROM waiting w JOIN platforms p ON p.id = w.platform_id
WHERE $2::uuid IS NULL OR w.platform_id = $2
GROUP BY p.slug
ORDER BY p.slug
"""

# Every platform with something in the report's scope, for the per-platform breakdown.
PLATFORMS_IN_SCOPE = """
SELECT p.id, p.slug FROM platforms p
WHERE ($3::uuid IS NULL OR p.id = $3)
  AND (EXISTS (SELECT 1 FROM hostings h WHERE h.platform_id = p.id AND h.created_at < $2)
       OR EXISTS (SELECT 1 FROM incidents i WHERE i.reporter_platform_id = p.id
                  AND i.reported_at >= $1 AND i.reported_at < $2))
ORDER BY p.slug
"""

Window = tuple[datetime, datetime, UUID | None]


async def _one(conn: asyncpg.Connection, sql: str, window: Window) -> asyncpg.Record:
    row = await conn.fetchrow(sql, *window)
    if row is None:
        raise LookupError("an aggregate query returned no row")
    return row


async def select_documentation(conn: asyncpg.Connection, window: Window) -> asyncpg.Record:
    row = await conn.fetchrow(DOCUMENTATION, window[1], window[2])
    if row is None:
        raise LookupError("an aggregate query returned no row")
    return row


async def select_watch_list(conn: asyncpg.Connection, window: Window) -> list[asyncpg.Record]:
    return list(await conn.fetch(WATCH_LIST, window[1], window[2]))


async def select_incidents(conn: asyncpg.Connection, window: Window) -> asyncpg.Record:
    return await _one(conn, INCIDENTS, window)


async def select_audits(conn: asyncpg.Connection, window: Window) -> asyncpg.Record:
    return await _one(conn, AUDITS, window)


async def select_decisions(conn: asyncpg.Connection, window: Window) -> asyncpg.Record:
    return await _one(conn, DECISIONS, window)


async def select_overdue_platforms(
    conn: asyncpg.Connection, window: Window
) -> list[asyncpg.Record]:
    return list(await conn.fetch(OVERDUE_PLATFORMS, window[1], window[2]))


async def select_platforms_in_scope(
    conn: asyncpg.Connection, window: Window
) -> list[asyncpg.Record]:
    return list(await conn.fetch(PLATFORMS_IN_SCOPE, *window))
