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

from service.db.queries.compliance_series import SERIES, SERIES_COLUMNS, TRIAGE_BOUNDS

__all__ = [
    "select_audits",
    "select_decisions",
    "select_incidents",
    "select_overdue_platforms",
    "select_platforms_in_scope",
    "select_prevent",
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


def _scopes(ids: str) -> str:
    """The scopes figures are grouped by, as ``s.scope``: NULL (the report's whole scope)
    and each platform id of the breakdown (``ids``, a parameter; possibly empty)."""
    return f"(SELECT NULL::uuid AS scope UNION ALL SELECT unnest({ids}::uuid[])) s"


_HOSTED = f"""
SELECT model_id, platform_id, coalesce((r ->> 'downloads')::bigint, 0) AS downloads,
       {_present("model_card")}, {_present("safety_testing")},
       {_present("risk_analysis")}, {_present("use_guidance")}
FROM (SELECT h.model_id, h.platform_id, h_then.r
      FROM hostings h {_then("h", "$1")}
      WHERE h.created_at < $1 AND ($2::uuid IS NULL OR h.platform_id = $2)) h
WHERE r ->> 'status' = 'hosted'
"""

# $1 to, $2 the platform (or NULL), $3 the breakdown's platform ids: the hosted hostings,
# each read once and counted in every scope it is in.
_HOSTED_IN_SCOPES = f"""
h AS MATERIALIZED ({_HOSTED}),
x AS (SELECT NULL::uuid AS scope, h.* FROM h
      UNION ALL
      SELECT h.platform_id, h.* FROM h WHERE h.platform_id = ANY($3::uuid[]))
"""

# One row per scope with hosted hostings (``scope`` NULL: the whole report): the
# documentation figures, and the watch list: the most-downloaded models that together carry
# 99% of downloads (a model is on it while the downloads of the models ranked above it are
# short of 99% of the total), most first. One query, so each hosting's state is read once.
PREVENT = f"""
WITH {_HOSTED_IN_SCOPES},
per_model AS (
  SELECT scope, model_id, sum(downloads)::bigint AS downloads,
         bool_and(model_card_present) AS model_card,
         bool_and(safety_testing_present) AS safety_testing,
         bool_and(risk_analysis_present) AS risk_analysis,
         bool_and(use_guidance_present) AS use_guidance
  FROM x GROUP BY scope, model_id
),
ranked AS (
  SELECT p.*,
         sum(downloads) OVER (PARTITION BY scope ORDER BY downloads DESC, model_id)
           - downloads AS above,
         sum(downloads) OVER (PARTITION BY scope) AS total
  FROM per_model p
),
watch AS (
  -- Column by column (arrays in rank order): building a JSON object per model cost more.
  SELECT r.scope,
         array_agg(r.model_id ORDER BY r.downloads DESC, r.model_id) AS watch_ids,
         array_agg(m.name ORDER BY r.downloads DESC, r.model_id) AS watch_names,
         array_agg(r.downloads ORDER BY r.downloads DESC, r.model_id) AS watch_downloads,
         array_agg(round(r.downloads::numeric / r.total, 6)::float8
                   ORDER BY r.downloads DESC, r.model_id) AS watch_shares,
         -- Each model's gaps as one text, the documents' names joined by commas.
         array_agg(concat_ws(',',
             CASE WHEN NOT r.model_card THEN 'model_card' END,
             CASE WHEN NOT r.safety_testing THEN 'safety_testing' END,
             CASE WHEN NOT r.risk_analysis THEN 'risk_analysis' END,
             CASE WHEN NOT r.use_guidance THEN 'use_guidance' END)
           ORDER BY r.downloads DESC, r.model_id) AS watch_gaps
  FROM ranked r JOIN models m ON m.id = r.model_id
  WHERE r.total > 0 AND r.downloads > 0 AND r.above < 0.99 * r.total
  GROUP BY r.scope
),
documentation AS (
  SELECT scope,
         count(*) AS hostings,
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
  FROM x
  GROUP BY scope
)
SELECT d.*, w.watch_ids, w.watch_names, w.watch_downloads, w.watch_shares, w.watch_gaps
FROM documentation d LEFT JOIN watch w ON w.scope IS NOT DISTINCT FROM d.scope
"""


def _at(name: str) -> str:
    return f"(r ->> '{name}')::timestamptz AS {name}"


# An incident's figures, from its state then (``r``).
_INCIDENT_FIELDS = f"""
r ->> 'status' AS status, r ->> 'category' AS category, r ->> 'severity' AS severity,
(r ->> 'serious')::boolean AS serious,
coalesce((r ->> 'article73_clock')::boolean, (r ->> 'serious')::boolean
         AND r ->> 'status' NOT IN ('rejected', 'duplicate')) AS article73_clock,
coalesce((r ->> 'report_due_at')::timestamptz,
         (r #>> '{{deadline,due_at}}')::timestamptz) AS report_due_at,
{_at("reported_at")}, {_at("triaged_at")}, {_at("mitigated_at")}, {_at("closed_at")},
{_at("authority_initial_report_at")}, {_at("authority_initial_report_recorded_at")}
"""


def _on_platform(platform: str) -> str:
    """An incident ``i`` is on a platform when the platform reported it or hosts a hosting
    it names."""
    return f"""(i.reporter_platform_id = {platform} OR EXISTS (
  SELECT 1 FROM incident_hostings ih JOIN hostings h ON h.id = ih.hosting_id
  WHERE ih.incident_id = i.id AND h.platform_id = {platform}))"""


def _live(condition: str) -> str:
    """An aggregate's filter: merged duplicates count only by status."""
    return f"FILTER (WHERE status <> 'duplicate' AND {condition})"


def _percentile(share: float, column: str) -> str:
    return (
        f"percentile_cont({share}) WITHIN GROUP "
        f"(ORDER BY extract(epoch FROM {column} - reported_at)) "
        f"{_live(f'{column} IS NOT NULL')}"
    )


_MET = """article73_clock AND authority_initial_report_at <= report_due_at
  AND coalesce(authority_initial_report_recorded_at, authority_initial_report_at)
      <= report_due_at"""
_RECORDED_LATE = """article73_clock AND authority_initial_report_at <= report_due_at
  AND authority_initial_report_recorded_at > report_due_at"""
_MISSED = """article73_clock AND (authority_initial_report_at > report_due_at
  OR (authority_initial_report_at IS NULL AND report_due_at < period_to))"""
_PENDING = """article73_clock AND authority_initial_report_at IS NULL
  AND report_due_at >= period_to"""

# $1 the previous period's start, $2 the period's start, $3 its end, $4 the platform (or
# NULL), $5 the breakdown's platform ids, $6 the triage series' bounds. Both periods in one
# pass: each incident is read in its state at the end of its own period (``period_to``),
# once, and counted in every scope it is in; one row per scope and period that has
# incidents, the series (``compliance_series``) beside the whole report's figures for the
# period itself.
INCIDENTS = f"""
WITH i AS MATERIALIZED (
  SELECT i.id, i.reporter_platform_id, t.period_to, i_then.r
  FROM incidents i
  CROSS JOIN LATERAL (SELECT CASE WHEN i.reported_at >= $2 THEN $3::timestamptz
                                  ELSE $2::timestamptz END AS period_to) t
  {_then("i", "t.period_to")}
  WHERE i.reported_at >= $1 AND i.reported_at < $3 AND ($4::uuid IS NULL OR {_on_platform("$4")})
), on_platform AS (
  -- Each incident once per platform of the breakdown it is on (see _on_platform).
  SELECT i.id, i.reporter_platform_id AS scope FROM i WHERE i.reporter_platform_id = ANY($5)
  UNION
  SELECT ih.incident_id, h.platform_id
  FROM incident_hostings ih JOIN hostings h ON h.id = ih.hosting_id
  WHERE h.platform_id = ANY($5) AND ih.incident_id IN (SELECT id FROM i)
), m AS MATERIALIZED (
  SELECT s.scope, i.period_to, {_INCIDENT_FIELDS}
  FROM i JOIN (SELECT id, NULL::uuid AS scope FROM i UNION ALL SELECT id, scope FROM on_platform) s
    ON s.id = i.id
  WHERE i.r IS NOT NULL
), counts AS (
  SELECT scope, period_to,
         count(*) {_live("true")} AS reported,
         count(*) {_live("serious")} AS serious,
         count(*) {_live(_MET)} AS deadline_met,
         count(*) {_live(_RECORDED_LATE)} AS deadline_recorded_late,
         count(*) {_live(_MISSED)} AS deadline_missed,
         count(*) {_live(_PENDING)} AS deadline_pending,
         {_percentile(0.5, "triaged_at")} AS triage_p50,
         {_percentile(0.9, "triaged_at")} AS triage_p90,
         {_percentile(0.5, "mitigated_at")} AS mitigate_p50,
         {_percentile(0.9, "mitigated_at")} AS mitigate_p90,
         {_percentile(0.5, "closed_at")} AS close_p50,
         {_percentile(0.9, "closed_at")} AS close_p90
  FROM m GROUP BY scope, period_to
), maps AS (
  SELECT scope, period_to,
         coalesce(jsonb_object_agg(k, n) FILTER (WHERE d = 'status'), '{{}}') AS by_status,
         coalesce(jsonb_object_agg(k, n) FILTER (WHERE d = 'category'), '{{}}') AS by_category,
         coalesce(jsonb_object_agg(k, n) FILTER (WHERE d = 'severity'), '{{}}') AS by_severity
  FROM (SELECT scope, period_to, 'status' AS d, status AS k, count(*) AS n
        FROM m GROUP BY scope, period_to, status
        UNION ALL
        SELECT scope, period_to, 'category', category, count(*)
        FROM m WHERE status <> 'duplicate' GROUP BY scope, period_to, category
        UNION ALL
        SELECT scope, period_to, 'severity', severity, count(*)
        FROM m WHERE status <> 'duplicate' GROUP BY scope, period_to, severity) c
  GROUP BY scope, period_to
), {SERIES}
SELECT c.*, maps.by_status, maps.by_category, maps.by_severity, {SERIES_COLUMNS}
FROM counts c JOIN maps ON maps.scope IS NOT DISTINCT FROM c.scope
                       AND maps.period_to = c.period_to
LEFT JOIN series ON c.scope IS NULL AND c.period_to = $3
"""


def _audited_on(platform: str) -> str:
    """An audit ``a`` is on a platform when the platform hosts a model it audits."""
    return f"""EXISTS (
  SELECT 1 FROM audit_models am JOIN hostings h ON h.model_id = am.model_id
  WHERE am.audit_id = a.id AND h.platform_id = {platform})"""


# $1 from, $2 to, $3 the platform (or NULL), $4 the breakdown's platform ids: one row per
# scope, the whole report's first.
AUDITS = f"""
WITH a AS MATERIALIZED (
  SELECT a.id, a_then.r
  FROM audits a {_then("a", "$2")}
  WHERE a.started_at < $2 AND ($3::uuid IS NULL OR {_audited_on("$3")})
), known AS MATERIALIZED (
  SELECT s.scope, a.id, a.r, a.r ->> 'outcome' AS outcome, {_at("completed_at")}
  FROM a JOIN {_scopes("$4")} ON s.scope IS NULL OR {_audited_on("s.scope")}
  WHERE a.r IS NOT NULL
), done AS (SELECT * FROM known WHERE completed_at >= $1 AND completed_at < $2),
findings AS (
  SELECT k.scope, f ->> 'severity' AS severity, f ->> 'status' AS status
  FROM known k CROSS JOIN LATERAL jsonb_array_elements(k.r -> 'findings') f
  WHERE k.r ? 'findings'
  UNION ALL
  SELECT k.scope, f.severity::text, f.status::text
  FROM audit_findings f JOIN known k ON k.id = f.audit_id
  WHERE NOT k.r ? 'findings'
)
SELECT s.scope,
  (SELECT count(*) FROM done d WHERE d.scope IS NOT DISTINCT FROM s.scope) AS completed,
  (SELECT coalesce(jsonb_object_agg(outcome, n), '{{}}') FROM
     (SELECT outcome, count(*) AS n FROM done d WHERE d.scope IS NOT DISTINCT FROM s.scope
      GROUP BY outcome) o) AS outcomes,
  (SELECT coalesce(jsonb_object_agg(severity, n), '{{}}') FROM
     (SELECT severity, count(*) AS n FROM findings f
      WHERE f.scope IS NOT DISTINCT FROM s.scope AND status = 'open' GROUP BY severity) o)
     AS open_findings_by_severity
FROM {_scopes("$4")}
"""


def _targets(platform: str) -> str:
    return f"""EXISTS (SELECT 1 FROM decommission_targets t
  WHERE t.decommission_id = d.id AND t.platform_id = {platform})"""


def _execution(share: float) -> str:
    return f"""(SELECT percentile_cont({share}) WITHIN GROUP (
     ORDER BY extract(epoch FROM executed_at - proposed_at))
     FROM d WHERE d.scope IS NOT DISTINCT FROM s.scope AND executed_at IS NOT NULL)"""


# $1 from, $2 to, $3 the platform (or NULL), $4 the breakdown's platform ids: one row per
# scope, the whole report's first.
DECISIONS = f"""
WITH d AS MATERIALIZED (
  SELECT s.scope, r ->> 'action' AS action, r ->> 'status' AS status,
         {_at("proposed_at")}, {_at("executed_at")}
  FROM (SELECT d.id, d_then.r
        FROM decommissions d {_then("d", "$2")}
        WHERE d.proposed_at >= $1 AND d.proposed_at < $2
          AND ($3::uuid IS NULL OR {_targets("$3")})) d
  JOIN {_scopes("$4")} ON s.scope IS NULL OR {_targets("s.scope")}
  WHERE r IS NOT NULL
)
SELECT s.scope,
  (SELECT count(*) FROM d WHERE d.scope IS NOT DISTINCT FROM s.scope) AS proposed,
  (SELECT coalesce(jsonb_object_agg(action, n), '{{}}') FROM
     (SELECT action, count(*) AS n FROM d WHERE d.scope IS NOT DISTINCT FROM s.scope
      GROUP BY action) x) AS by_action,
  (SELECT coalesce(jsonb_object_agg(status, n), '{{}}') FROM
     (SELECT status, count(*) AS n FROM d WHERE d.scope IS NOT DISTINCT FROM s.scope
      GROUP BY status) x) AS by_status,
  {_execution(0.5)} AS to_execution_p50,
  {_execution(0.9)} AS to_execution_p90
FROM {_scopes("$4")}
"""

# Platforms that had not confirmed a decision past its confirmation deadline, at `to` ($1):
# the decision's targets as its state then lists them (a row without events: its table).
# $2 the platform (or NULL), $3 the breakdown's platform ids.
OVERDUE_PLATFORMS = f"""
WITH open AS (
  SELECT d.id, d_then.r, (d_then.r ->> 'confirm_by')::timestamptz AS confirm_by
  FROM decommissions d {_then("d", "$1")}
  WHERE d.proposed_at < $1 AND d_then.r ->> 'status' IN ('approved', 'notified')
    AND (d_then.r ->> 'confirm_by')::timestamptz < $1
), waiting AS MATERIALIZED (
  SELECT o.id AS decision, (x ->> 'platform_id')::uuid AS platform_id, o.confirm_by
  FROM open o CROSS JOIN LATERAL jsonb_array_elements(o.r -> 'targets') x
  WHERE o.r ? 'targets' AND x ->> 'confirmed_at' IS NULL
  UNION ALL
  SELECT o.id, t.platform_id, o.confirm_by
  FROM open o JOIN decommission_targets t ON t.decommission_id = o.id
  WHERE NOT o.r ? 'targets' AND (t.confirmed_at IS NULL OR t.confirmed_at >= $1)
)
SELECT s.scope, p.slug AS platform, count(DISTINCT w.decision) AS decisions,
       count(*) AS hostings, min(w.confirm_by) AS oldest_deadline
FROM waiting w JOIN platforms p ON p.id = w.platform_id
JOIN {_scopes("$3")} ON s.scope IS NULL OR w.platform_id = s.scope
WHERE $2::uuid IS NULL OR w.platform_id = $2
GROUP BY s.scope, p.slug
ORDER BY s.scope NULLS FIRST, p.slug
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

# Each ``seconds``: how long to wait for the statement's answer, for a report whose
# statements read every record of a period and may rightly run longer than the pool's
# answer timeout (which tells a hung database); None keeps the pool's.


async def select_prevent(
    conn: asyncpg.Connection,
    *,
    until: datetime,
    platform_id: UUID | None,
    breakdown: list[UUID],
    seconds: float | None = None,
) -> list[asyncpg.Record]:
    """One row per scope with hosted hostings (``scope`` NULL: the whole report)."""
    return list(await conn.fetch(PREVENT, until, platform_id, breakdown, timeout=seconds))


async def select_incidents(
    conn: asyncpg.Connection,
    *,
    previous_from: datetime,
    since: datetime,
    until: datetime,
    platform_id: UUID | None,
    breakdown: list[UUID],
    seconds: float | None = None,
) -> list[asyncpg.Record]:
    """One row per scope and period (``period_to``, the period's end) with incidents; the
    whole report's row for the period itself carries the series."""
    bounds = [float(b) for b in TRIAGE_BOUNDS]
    return list(
        await conn.fetch(
            INCIDENTS, previous_from, since, until, platform_id, breakdown, bounds, timeout=seconds
        )
    )


async def select_audits(
    conn: asyncpg.Connection, window: Window, *, breakdown: list[UUID], seconds: float | None = None
) -> list[asyncpg.Record]:
    """One row per scope, the whole report's first."""
    return list(await conn.fetch(AUDITS, *window, breakdown, timeout=seconds))


async def select_decisions(
    conn: asyncpg.Connection, window: Window, *, breakdown: list[UUID], seconds: float | None = None
) -> list[asyncpg.Record]:
    """One row per scope, the whole report's first."""
    return list(await conn.fetch(DECISIONS, *window, breakdown, timeout=seconds))


async def select_overdue_platforms(
    conn: asyncpg.Connection,
    *,
    until: datetime,
    platform_id: UUID | None,
    breakdown: list[UUID],
    seconds: float | None = None,
) -> list[asyncpg.Record]:
    """Every scope's overdue platforms, by slug."""
    return list(await conn.fetch(OVERDUE_PLATFORMS, until, platform_id, breakdown, timeout=seconds))


async def select_platforms_in_scope(
    conn: asyncpg.Connection, window: Window, *, seconds: float | None = None
) -> list[asyncpg.Record]:
    return list(await conn.fetch(PLATFORMS_IN_SCOPE, *window, timeout=seconds))
