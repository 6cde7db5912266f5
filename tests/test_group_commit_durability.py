"""Nothing is acknowledged before it is committed, even when the COMMIT itself fails.

A deferred constraint trigger refuses one hosting's new revision at COMMIT time, after
every statement of the transaction has succeeded. Deliveries sent together share a
transaction (group commit); the test checks from the outside (HTTP answers, rows in the
database) that every delivery answered 2xx is in the ledger, and that the refused one is
neither answered 2xx nor written. It does not depend on where group commit lives.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg
import httpx

from tests.conftest import PlatformFixture
from tests.helpers.webhooks import deliver, event, hosted_models

REFUSE_AT_COMMIT = """
CREATE FUNCTION refuse_poisoned_revision_{tag}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF NEW.revision = 'poison-{tag}' THEN
    RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END
$fn$;
CREATE CONSTRAINT TRIGGER refuse_poisoned_revision_{tag} AFTER UPDATE ON hostings
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  EXECUTE FUNCTION refuse_poisoned_revision_{tag}();
"""
DROP = """
DROP TRIGGER IF EXISTS refuse_poisoned_revision_{tag} ON hostings;
DROP FUNCTION IF EXISTS refuse_poisoned_revision_{tag}();
"""


async def test_a_batch_whose_commit_fails_acknowledges_only_what_is_committed(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    names = [f"org-{uniq}/d{i}" for i in range(8)]
    secret = await hosted_models(client, admin, platform.slug, names)
    await conn.execute(REFUSE_AT_COMMIT.format(tag=uniq))
    try:
        for attempt in range(3):  # the poisoned delivery at a different place each time
            poisoned = attempt * 3 % len(names)
            revisions = [
                f"poison-{uniq}" if n == poisoned else f"ok-{attempt}-{n}"
                for n in range(len(names))
            ]
            responses = await asyncio.gather(
                *(
                    deliver(
                        client,
                        platform.slug,
                        secret,
                        event("model.updated", {"model": name, "revision": revision}),
                    )
                    for name, revision in zip(names, revisions, strict=True)
                )
            )
            statuses = [r.status_code for r in responses]
            assert not 200 <= statuses[poisoned] < 300, statuses
            assert statuses[poisoned] < 500, responses[poisoned].text
            acknowledged = [
                (n, r.json()["events"]) for n, r in enumerate(responses) if r.is_success
            ]
            assert len(acknowledged) == len(names) - 1, statuses
            for n, seqs in acknowledged:
                rows = await conn.fetch(
                    "SELECT payload->'state'->>'revision' AS revision FROM events "
                    "WHERE seq = ANY($1)",
                    seqs,
                )
                assert [r["revision"] for r in rows] == [revisions[n]], (n, seqs)
            stored = await conn.fetchval(
                "SELECT count(*) FROM hostings WHERE platform_id = $1 AND revision = $2",
                UUID(platform.id),
                f"poison-{uniq}",
            )
            assert stored == 0
    finally:
        await conn.execute(DROP.format(tag=uniq))
