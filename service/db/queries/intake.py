"""SQL for the group-commit batch of webhook deliveries (``service.domain.intake_batch``).

Its statements span ``hostings``, ``webhook_deliveries`` and ``events``, so that a batch
takes two statements between BEGIN and COMMIT: one locks the hostings and claims the
delivery ids, one writes the hostings, appends the events and links them to the deliveries.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from service.db.pool import json_encode
from service.db.queries.hostings import COLUMNS as HOSTING_COLUMNS
from service.db.queries.hostings import FROM as HOSTINGS_FROM
from service.db.queries.hostings import WRITABLE

__all__ = ["claim_with_hostings", "write_batch"]

# A group-commit batch's first statement: lock the hostings its deliveries name (each
# delivery ``n`` names one or more, by the name the platform hosts it under, in any case),
# in (platform, name) order as every path that locks several does, and claim the id of
# each delivery all of whose hostings exist, in (platform, delivery id) order, so that two
# batches holding copies of the same deliveries wait on each other in one order. One row
# per (delivery, hosting found): the hosting, the name it was given as, the delivery's new
# row id (NULL when it was not claimed: a hosting is missing, or the id was delivered
# before), and the transaction's time.
CLAIM_WITH_HOSTINGS = f"""
WITH names AS (
  SELECT n, platform_id, name FROM unnest($1::int[], $2::uuid[], $3::text[])
    AS x(n, platform_id, name)
), locked AS (
  SELECT {HOSTING_COLUMNS.strip()}
  {HOSTINGS_FROM.strip()}
  WHERE (h.platform_id, lower(h.name)) IN (SELECT platform_id, lower(name) FROM names)
  ORDER BY h.platform_id, h.name
  FOR UPDATE OF h
), d AS (
  SELECT n, platform_id, delivery_id, source, event_type, body_sha256, body, headers
  FROM unnest($4::int[], $5::uuid[], $6::text[], $7::text[], $8::text[],
                       $9::bytea[], $10::bytea[], $11::text[])
    AS d(n, platform_id, delivery_id, source, event_type, body_sha256, body, headers)
), claim AS (
  INSERT INTO webhook_deliveries (platform_id, delivery_id, source, event_type, body_sha256,
                                  body, headers)
  SELECT platform_id, delivery_id, source, event_type, body_sha256, body, headers::jsonb
  FROM d
  WHERE NOT EXISTS (
    SELECT 1 FROM names x
    WHERE x.n = d.n AND NOT EXISTS (
      SELECT 1 FROM locked l
      WHERE l.platform_id = x.platform_id AND lower(l.name) = lower(x.name)))
  ORDER BY platform_id, delivery_id
  ON CONFLICT (platform_id, delivery_id) DO NOTHING
  RETURNING id, platform_id, delivery_id
)
SELECT x.n AS member, x.name AS given, c.id AS row_id, now() AS at, l.id, l.model_id, l.model, l.name,
       l.platform_id, l.platform, l.external_id, l.url, l.revision, l.licence, l.gated,
       l.disabled, l.status, l.downloads, l.downloads_at, l.documentation, l.created_at,
       l.updated_at
FROM names x
JOIN locked l ON l.platform_id = x.platform_id AND lower(l.name) = lower(x.name)
LEFT JOIN (
  SELECT d.n, claim.id FROM claim
  JOIN d ON d.platform_id = claim.platform_id AND d.delivery_id = claim.delivery_id
) c ON c.n = x.n
"""

_NEW = ", ".join("n_" + column.strip() for column in WRITABLE.split(","))

# A batch's second statement: the hostings' new columns (one array a column, the id first,
# as ``hostings.UPDATE_MANY`` takes them; ``updated_at`` is the transaction's time), the
# events (as ``events.INSERT_MANY``, their seqs drawn in the order given), and each
# delivery listing the events that link to it (their payload's ``delivery.id``), in seq
# order. Answers how many
# hostings it wrote and the events' seqs.
WRITE_BATCH = f"""
WITH v AS (
  SELECT hosting_id, {_NEW}
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
              $6::boolean[], $7::boolean[], $8::text[], $9::bigint[],
              $10::timestamptz[], $11::boolean[], $12::text[], $13::boolean[],
              $14::text[], $15::boolean[], $16::text[], $17::boolean[], $18::text[])
    AS v(hosting_id, {_NEW})
), h AS (
  UPDATE hostings SET ({WRITABLE}, updated_at) = ({_NEW.replace("n_", "v.n_")}, now())
  FROM v
  WHERE hostings.id = v.hosting_id
  RETURNING hostings.id
), e AS (
  INSERT INTO events (stage, kind, subject_type, subject_id, model_id, platform_id, actor_id,
                      occurred_at, payload)
  SELECT stage, kind, subject_type, subject_id, model_id, platform_id, actor_id,
         coalesce(occurred_at, now()), payload::jsonb
  FROM unnest($19::text[], $20::text[], $21::text[], $22::uuid[], $23::uuid[], $24::uuid[],
              $25::uuid[], $26::timestamptz[], $27::text[])
       WITH ORDINALITY AS e(stage, kind, subject_type, subject_id, model_id, platform_id,
                            actor_id, occurred_at, payload, n)
  ORDER BY n
  RETURNING seq, (payload->'delivery'->>'id')::uuid AS delivery
), linked AS (
  UPDATE webhook_deliveries d SET events = l.seqs
  FROM (SELECT delivery, array_agg(seq ORDER BY seq) AS seqs FROM e GROUP BY delivery) l
  WHERE d.id = l.delivery
)
SELECT (SELECT count(*) FROM h) AS written, ARRAY(SELECT seq FROM e ORDER BY seq) AS seqs
"""


async def claim_with_hostings(
    conn: asyncpg.Connection,
    *,
    names: list[tuple[int, UUID, str]],
    claims: list[tuple[int, UUID, str, str, str, bytes, bytes, dict[str, str]]],
) -> list[asyncpg.Record]:
    """Lock the hostings named, each ``(n, platform_id, name)``, and claim each delivery
    ``(n, platform_id, delivery_id, source, event_type, body_sha256, body, headers)`` whose
    hostings all exist (``CLAIM_WITH_HOSTINGS``): rows of ``member``, ``given``, ``row_id``,
    ``at`` (the transaction's time) and the hosting's columns."""
    name_columns = [list(column) for column in zip(*names, strict=True)]
    claim_columns = [list(column) for column in zip(*claims, strict=True)]
    claim_columns[7] = [json_encode(headers) for headers in claim_columns[7]]
    return list(await conn.fetch(CLAIM_WITH_HOSTINGS, *name_columns, *claim_columns))


async def write_batch(
    conn: asyncpg.Connection,
    *,
    hostings: list[tuple[UUID, list[object]]],
    events: list[tuple[Any, ...]],
) -> tuple[int, list[int]]:
    """Write the hostings, each ``(id, values)`` as ``hostings.writable_values`` orders
    them, and append the events, each as ``events.insert_events`` takes them, linking them
    to their deliveries; how many hostings were written, and the events' seqs in order."""
    columns: list[list[object]] = [[hosting_id for hosting_id, _ in hostings]]
    columns += [list(column) for column in zip(*(values for _, values in hostings), strict=True)]
    event_columns: list[list[Any]] = [list(column) for column in zip(*events, strict=True)]
    if not event_columns:
        event_columns = [[] for _ in range(9)]
    event_columns[8] = [json_encode(payload) for payload in event_columns[8]]
    row = await conn.fetchrow(WRITE_BATCH, *columns, *event_columns)
    assert row is not None  # noqa: S101 - a SELECT without FROM answers one row
    return int(row["written"]), [int(seq) for seq in row["seqs"]]
