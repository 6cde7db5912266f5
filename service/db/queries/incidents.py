"""SQL for ``incidents`` and what hangs off them: models, hostings, notes, reporter contacts."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

__all__ = [
    "insert_contact",
    "insert_incident",
    "insert_note",
    "link_hostings",
    "link_models",
    "select_contact",
    "select_duplicate_candidates",
    "select_existing",
    "select_followup",
    "select_hostings_of",
    "select_incident",
    "select_incidents",
    "select_notes",
    "touches_platform",
    "update_authority_reports",
    "update_evidence",
    "update_fields",
    "update_status",
]

COLUMNS = """
i.id, i.ref, i.title, i.description, i.category, i.subcategory, i.harm_types,
i.affected_parties, i.severity, i.serious, i.serious_kind, i.death, i.widespread, i.status,
i.duplicate_of, i.rejection_reason, i.channel, i.reporter_principal_id, i.reporter_platform_id,
coalesce((SELECT array_agg(m.id ORDER BY m.name) FROM incident_models im
          JOIN models m ON m.id = im.model_id WHERE im.incident_id = i.id), '{}') AS model_ids,
coalesce((SELECT array_agg(m.name ORDER BY m.name) FROM incident_models im
          JOIN models m ON m.id = im.model_id WHERE im.incident_id = i.id), '{}') AS models,
i.unlisted_models,
coalesce((SELECT array_agg(ih.hosting_id ORDER BY ih.hosting_id) FROM incident_hostings ih
          WHERE ih.incident_id = i.id), '{}') AS hosting_ids,
i.evidence_urls, i.occurred_at, i.aware_at, i.reported_at, i.triaged_at, i.mitigated_at,
i.closed_at, i.authority_initial_report_at, i.authority_complete_report_at, i.report_due_at,
i.created_at, i.updated_at, i.article73_clock, i.authority_initial_report_recorded_at,
i.authority_complete_report_recorded_at,
coalesce((SELECT jsonb_agg(jsonb_build_object('scheme', a.scheme, 'value', a.value)
                           ORDER BY a.scheme, a.value)
          FROM incident_aliases a WHERE a.incident_id = i.id), '[]') AS aliases
"""

INSERT = """
INSERT INTO incidents (ref, title, description, category, subcategory, harm_types,
                       affected_parties, severity, serious, serious_kind, death, widespread,
                       channel, reporter_principal_id, reporter_platform_id, followup_token_hash,
                       evidence_urls, occurred_at, aware_at, reported_at, unlisted_models,
                       report_due_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
        $20, $21, $22)
RETURNING id
"""

LINK_MODELS = """
INSERT INTO incident_models (incident_id, model_id)
SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING
"""

LINK_HOSTINGS = """
INSERT INTO incident_hostings (incident_id, hosting_id)
SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING
"""

SELECT_HOSTINGS_OF = """
SELECT id, model_id, platform_id FROM hostings WHERE id = ANY ($1::uuid[])
"""

SELECT_ONE = f"""
SELECT {COLUMNS} FROM incidents i
WHERE ($1::uuid IS NULL OR i.id = $1) AND ($2::text IS NULL OR i.ref = $2)
"""

SELECT_ONE_FOR_UPDATE = f"""
SELECT {COLUMNS} FROM incidents i
WHERE ($1::uuid IS NULL OR i.id = $1) AND ($2::text IS NULL OR i.ref = $2)
FOR UPDATE OF i
"""

# Filters shared by both list queries. $7 restricts to what a platform may read (what it
# reported, or what names one of its hostings); $8 to the models an auditor holds grants for.
_FILTERS = """
  ($1::text IS NULL OR i.status = $1)
  AND ($2::text IS NULL OR i.category = $2)
  AND ($3::text IS NULL OR i.severity = $3)
  AND ($4::boolean IS NULL OR i.serious = $4)
  AND ($5::boolean IS NULL OR $5 = (i.article73_clock AND i.authority_initial_report_at IS NULL
                                    AND i.report_due_at < $11))
  AND ($6::text IS NULL OR i.channel = $6)
  AND ($7::uuid IS NULL OR i.reporter_platform_id = $7
       OR EXISTS (SELECT 1 FROM incident_hostings ih JOIN hostings h ON h.id = ih.hosting_id
                  WHERE ih.incident_id = i.id AND h.platform_id = $7))
  AND ($8::uuid[] IS NULL
       OR EXISTS (SELECT 1 FROM incident_models g
                  WHERE g.incident_id = i.id AND g.model_id = ANY ($8::uuid[])))
  AND ($9::uuid IS NULL OR {keyset})
  -- Words in the title or description: a plain substring, never a pattern from input.
  AND ($12::text IS NULL OR strpos(lower(i.title || ' ' || i.description), lower($12)) > 0)
"""

# The page is chosen first by id alone, then read whole: the per-incident subqueries in
# COLUMNS run for the page's rows only, not for every row the sort has to look at.
_SELECT_MANY = f"""
SELECT {{columns}}, false AS inherited{{state}}
FROM incidents i
WHERE i.id IN (SELECT i.id FROM incidents i WHERE {_FILTERS} ORDER BY {{order}} LIMIT $10)
ORDER BY {{order}}
"""

# An incident on any ancestor or descendant of the model counts too, flagged as inherited.
# Walks are bounded in depth so a corrupt graph cannot run away.
_SELECT_BY_MODEL = f"""
WITH RECURSIVE up (id, depth) AS (
  SELECT base_model_id, 1 FROM models WHERE id = $13 AND base_model_id IS NOT NULL AND $14::boolean
  UNION ALL
  SELECT m.base_model_id, up.depth + 1 FROM up JOIN models m ON m.id = up.id
  WHERE m.base_model_id IS NOT NULL AND up.depth < 64
), down (id, depth) AS (
  SELECT id, 1 FROM models WHERE base_model_id = $13 AND $14::boolean
  UNION ALL
  SELECT m.id, down.depth + 1 FROM down JOIN models m ON m.base_model_id = down.id
  WHERE down.depth < 64
), lineage (id) AS (
  SELECT $13::uuid UNION SELECT id FROM up UNION SELECT id FROM down
)
SELECT {{columns}},
       NOT EXISTS (SELECT 1 FROM incident_models d
                   WHERE d.incident_id = i.id AND d.model_id = $13) AS inherited{{state}}
FROM incidents i
WHERE i.id IN (
  SELECT i.id FROM incidents i
  WHERE EXISTS (SELECT 1 FROM incident_models l JOIN lineage ON lineage.id = l.model_id
                WHERE l.incident_id = i.id)
    AND {_FILTERS}
  ORDER BY {{order}}
  LIMIT $10
)
ORDER BY {{order}}
"""


#: The triage queue's orders: a sort key (or the id alone) and whether it ascends. Ids are
#: time-ordered, so the id alone orders by report; the id also breaks ties in a key.
#: "deadline": the pending Article 73 deadline, soonest first (none last), as ``overdue`` reads
#: it; "severity": critical first.
DEADLINE_KEY = (
    "coalesce(CASE WHEN i.serious AND i.authority_initial_report_at IS NULL"
    " AND i.status NOT IN ('duplicate', 'rejected') THEN i.report_due_at END,"
    " 'infinity'::timestamptz)"
)
SEVERITY_KEY = "array_position(ARRAY['critical', 'high', 'medium', 'low'], i.severity)"
SORTS: dict[str, tuple[str | None, str, bool]] = {
    "oldest": (None, "", True),
    "newest": (None, "", False),
    "deadline": (DEADLINE_KEY, "coalesce({p}::timestamptz, 'infinity'::timestamptz)", True),
    "severity": (SEVERITY_KEY, "{p}::int", True),
}


# A point-in-time list reads the incident's record as it is for what the ledger does not
# carry (the reporter, see ``reporters.REPORTER_FIELDS``) and takes the rest from its state.
_AS_OF_COLUMNS = "i.id, i.reporter_principal_id, i.reporter_platform_id"

# Each listed incident's state as the ledger recorded it at {p} (NULL: none by then): a
# point-in-time list in the list's own statement, where the list and the states took two.
_STATE = """,
(SELECT payload -> 'state' FROM events
 WHERE subject_id = i.id AND subject_type = 'incident' AND recorded_at <= {p}
   AND payload ? 'state'
 ORDER BY seq DESC LIMIT 1) AS state"""


def _ordered(
    sql: str, *, sort: str, backwards: bool, key_param: str, as_of_param: str | None
) -> str:
    """The query in one of ``SORTS``, its keyset following the order; ``backwards`` reads the
    page before the cursor (in reverse: the caller turns it round); with ``as_of_param``,
    each row's ``state`` recorded at that moment beside the columns the state lacks."""
    if as_of_param is None:
        sql = sql.replace("{columns}", COLUMNS).replace("{state}", "")
    else:
        sql = sql.replace("{columns}", _AS_OF_COLUMNS)
        sql = sql.replace("{state}", _STATE.format(p=as_of_param))
    key, bound, ascending = SORTS[sort]
    forwards = ascending != backwards
    cmp, direction = (">", "ASC") if forwards else ("<", "DESC")
    if key is None:
        keyset, order = f"i.id {cmp} $9", f"i.id {direction}"
    else:
        keyset = f"({key}, i.id) {cmp} ({bound.format(p=key_param)}, $9)"
        order = f"{key} {direction}, i.id {direction}"
    return sql.replace("{keyset}", keyset).replace("{order}", order)


_KEY_PARAM = {False: "$13", True: "$15"}


def _as_of_param(*, by_model: bool, sort: str) -> str:
    """The parameter after the others: twelve, the model's two, the sort key if any."""
    return f"${12 + 2 * by_model + (SORTS[sort][0] is not None) + 1}"


#: Every order and direction, for all incidents and for a model's lineage, now or with each
#: row's state at a moment; built from the constants above, never from input.
SELECT_ORDERED: dict[tuple[bool, str, bool, bool], str] = {
    (by_model, sort, backwards, as_of): _ordered(
        _SELECT_BY_MODEL if by_model else _SELECT_MANY,
        sort=sort,
        backwards=backwards,
        key_param=_KEY_PARAM[by_model],
        as_of_param=_as_of_param(by_model=by_model, sort=sort) if as_of else None,
    )
    for by_model in (False, True)
    for sort in SORTS
    for backwards in (False, True)
    for as_of in (False, True)
}


SELECT_DUPLICATE_CANDIDATES = f"""
SELECT {COLUMNS}, false AS inherited
FROM incidents i
WHERE i.id <> $1 AND i.category = $2
  AND i.status NOT IN ('duplicate', 'rejected')
  AND i.reported_at BETWEEN $3 AND $4
  AND (EXISTS (SELECT 1 FROM incident_models a JOIN incident_models b ON b.model_id = a.model_id
               WHERE a.incident_id = i.id AND b.incident_id = $1)
       -- Public reports may name models the registry does not know: match those by name,
       -- whatever the case (model names are case-insensitive).
       OR EXISTS (SELECT 1 FROM unnest(i.unlisted_models) u
                  WHERE lower(u) IN (SELECT lower(x) FROM unnest($6::text[]) x)))
ORDER BY i.reported_at, i.id
LIMIT $5
"""

UPDATE_STATUS = """
UPDATE incidents
SET status = $2, duplicate_of = $3, rejection_reason = $4, triaged_at = $5, mitigated_at = $6,
    closed_at = $7, updated_at = now()
WHERE id = $1
"""

UPDATE_FIELDS = """
UPDATE incidents
SET title = $2, description = $3, category = $4, subcategory = $5, harm_types = $6,
    affected_parties = $7, severity = $8, serious = $9, serious_kind = $10, death = $11,
    widespread = $12, report_due_at = $13, updated_at = now()
WHERE id = $1
"""

UPDATE_AUTHORITY = """
UPDATE incidents
SET authority_initial_report_at = $2, authority_complete_report_at = $3, updated_at = now(),
    authority_initial_report_recorded_at = CASE WHEN $2 IS DISTINCT FROM authority_initial_report_at
      THEN now() ELSE authority_initial_report_recorded_at END,
    authority_complete_report_recorded_at = CASE
      WHEN $3 IS DISTINCT FROM authority_complete_report_at
      THEN now() ELSE authority_complete_report_recorded_at END
WHERE id = $1
"""

UPDATE_EVIDENCE = """
UPDATE incidents
SET evidence_urls = ARRAY(SELECT DISTINCT u FROM unnest(evidence_urls || $2::text[]) AS u ORDER BY u),
    updated_at = now()
WHERE id = $1
"""

TOUCHES_PLATFORM = """
SELECT EXISTS (SELECT 1 FROM incident_hostings ih JOIN hostings h ON h.id = ih.hosting_id
               WHERE ih.incident_id = $1 AND h.platform_id = $2)
"""

SELECT_FOLLOWUP = """
SELECT id, followup_token_hash FROM incidents WHERE ref = $1 AND channel = 'public'
"""

INSERT_CONTACT = """
INSERT INTO reporter_contacts (incident_id, contact) VALUES ($1, $2)
"""

SELECT_CONTACT = """
SELECT contact FROM reporter_contacts WHERE incident_id = $1
"""

NOTE_COLUMNS = "id, incident_id, author, body, evidence_urls, share_with_reporter, created_at"

INSERT_NOTE = f"""
INSERT INTO incident_notes (incident_id, author, actor_id, body, evidence_urls,
                            share_with_reporter)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING {NOTE_COLUMNS}
"""

SELECT_NOTES = f"""
SELECT {NOTE_COLUMNS} FROM incident_notes
WHERE incident_id = $1 AND (NOT $2 OR author = 'reporter' OR share_with_reporter)
ORDER BY id
LIMIT $3
"""


async def insert_incident(conn: asyncpg.Connection, **values: Any) -> UUID:
    """Insert one incident; ``values`` are the INSERT's columns by name."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        INSERT,
        values["ref"],
        values["title"],
        values["description"],
        values["category"],
        values["subcategory"],
        values["harm_types"],
        values["affected_parties"],
        values["severity"],
        values["serious"],
        values["serious_kind"],
        values["death"],
        values["widespread"],
        values["channel"],
        values["reporter_principal_id"],
        values["reporter_platform_id"],
        values["followup_token_hash"],
        values["evidence_urls"],
        values["occurred_at"],
        values["aware_at"],
        values["reported_at"],
        values["unlisted_models"],
        values["report_due_at"],
    )


async def link_models(
    conn: asyncpg.Connection, *, incident_id: UUID, model_ids: list[UUID]
) -> None:
    await conn.execute(LINK_MODELS, incident_id, model_ids)


async def link_hostings(
    conn: asyncpg.Connection, *, incident_id: UUID, hosting_ids: list[UUID]
) -> None:
    await conn.execute(LINK_HOSTINGS, incident_id, hosting_ids)


async def select_hostings_of(
    conn: asyncpg.Connection, *, hosting_ids: list[UUID]
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_HOSTINGS_OF, hosting_ids))


async def select_incident(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID | None = None,
    ref: str | None = None,
    for_update: bool = False,
) -> asyncpg.Record | None:
    if incident_id is None and ref is None:
        raise ValueError("select_incident needs an id or a ref")
    sql = SELECT_ONE_FOR_UPDATE if for_update else SELECT_ONE
    return await conn.fetchrow(sql, incident_id, ref)


async def select_incidents(
    conn: asyncpg.Connection,
    *,
    status: str | None,
    category: str | None,
    severity: str | None,
    serious: bool | None,
    overdue: bool | None,
    channel: str | None,
    visible_platform: UUID | None,
    visible_models: list[UUID] | None,
    model_id: UUID | None,
    include_lineage: bool,
    now: datetime,
    after: UUID | None,
    limit: int,
    text: str | None = None,
    newest_first: bool = False,
    sort: str | None = None,
    sort_key: object = None,
    backwards: bool = False,
    as_of: datetime | None = None,
) -> list[asyncpg.Record]:
    """Incidents by filter in ``sort`` (one of ``SORTS``; by default oldest or newest first),
    continuing after (or, ``backwards``, before) the keyset (``sort_key``, ``after``); with
    ``as_of``, each row has its ``state`` recorded then (None if none)."""
    order = sort or ("newest" if newest_first else "oldest")
    args: list[object] = [
        status,
        category,
        severity,
        serious,
        overdue,
        channel,
        visible_platform,
        visible_models,
        after,
        limit,
        now,
        text,
    ]
    by_model = model_id is not None
    if by_model:
        args += [model_id, include_lineage]
    if SORTS[order][0] is not None:
        args.append(sort_key)
    if as_of is not None:
        args.append(as_of)
    sql = SELECT_ORDERED[by_model, order, backwards, as_of is not None]
    return list(await conn.fetch(sql, *args))


async def select_duplicate_candidates(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    category: str,
    since: datetime,
    until: datetime,
    unlisted_models: list[str],
    limit: int,
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            SELECT_DUPLICATE_CANDIDATES, incident_id, category, since, until, limit, unlisted_models
        )
    )


async def update_status(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    status: str,
    duplicate_of: UUID | None,
    rejection_reason: str | None,
    triaged_at: datetime | None,
    mitigated_at: datetime | None,
    closed_at: datetime | None,
) -> None:
    await conn.execute(
        UPDATE_STATUS,
        incident_id,
        status,
        duplicate_of,
        rejection_reason,
        triaged_at,
        mitigated_at,
        closed_at,
    )


async def update_fields(conn: asyncpg.Connection, *, incident_id: UUID, **values: Any) -> None:
    await conn.execute(
        UPDATE_FIELDS,
        incident_id,
        values["title"],
        values["description"],
        values["category"],
        values["subcategory"],
        values["harm_types"],
        values["affected_parties"],
        values["severity"],
        values["serious"],
        values["serious_kind"],
        values["death"],
        values["widespread"],
        values["report_due_at"],
    )


async def update_authority_reports(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    initial_at: datetime | None,
    complete_at: datetime | None,
) -> None:
    await conn.execute(UPDATE_AUTHORITY, incident_id, initial_at, complete_at)


async def update_evidence(
    conn: asyncpg.Connection, *, incident_id: UUID, evidence_urls: list[str]
) -> None:
    await conn.execute(UPDATE_EVIDENCE, incident_id, evidence_urls)


async def touches_platform(
    conn: asyncpg.Connection, *, incident_id: UUID, platform_id: UUID
) -> bool:
    return bool(await conn.fetchval(TOUCHES_PLATFORM, incident_id, platform_id))


async def select_followup(conn: asyncpg.Connection, *, ref: str) -> asyncpg.Record | None:
    return await conn.fetchrow(SELECT_FOLLOWUP, ref)


async def insert_contact(
    conn: asyncpg.Connection, *, incident_id: UUID, contact: dict[str, Any]
) -> None:
    await conn.execute(INSERT_CONTACT, incident_id, contact)


async def select_contact(conn: asyncpg.Connection, *, incident_id: UUID) -> dict[str, Any] | None:
    return await conn.fetchval(SELECT_CONTACT, incident_id)  # type: ignore[no-any-return]


async def insert_note(
    conn: asyncpg.Connection,
    *,
    incident_id: UUID,
    author: str,
    actor_id: UUID | None,
    body: str,
    evidence_urls: list[str],
    share_with_reporter: bool,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        INSERT_NOTE, incident_id, author, actor_id, body, evidence_urls, share_with_reporter
    )
    assert row is not None  # noqa: S101 - INSERT ... RETURNING always yields a row
    return row


async def select_notes(
    conn: asyncpg.Connection, *, incident_id: UUID, reporter_view: bool, limit: int = 500
) -> list[asyncpg.Record]:
    return list(await conn.fetch(SELECT_NOTES, incident_id, reporter_view, limit))


EXISTING = "SELECT array_agg(id) FROM incidents WHERE id = ANY ($1::uuid[])"


async def select_existing(conn: asyncpg.Connection, *, ids: list[UUID]) -> set[UUID]:
    """Those of ``ids`` that name an incident."""
    return set(await conn.fetchval(EXISTING, ids) or [])
