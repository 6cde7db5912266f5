"""Catalogues are applied in parts, each its own transaction, and resumed by delivery id.

A catalogue of a million lines was one transaction on one connection; its writes (a model,
a hosting and two ledger events a line) could not go faster than one backend writes them.
It is now applied in parts: one transaction checks the whole catalogue and registers the
base models its lines need, then ``parts`` transactions, on as many connections at once,
each apply the lines whose number modulo ``parts`` is theirs, then one transaction removes
what a complete catalogue leaves out and writes the summary.

``catalogue_syncs.state`` is ``applying`` from the first commit until the summary is
written (``done``); the rows already there were answered in one transaction, so they are
``done``. The syncs still ``applying`` are indexed: ``registry_catalogue_syncs_applying``
counts them at every scrape. ``parts`` is fixed when a sync is first claimed, so that a
catalogue resumed after a crash is split as before. ``catalogue_sync_parts`` holds, for each part that
committed, what it did (part ``-1``: the checking transaction's registrations, added to
at each attempt); a part found there is not applied again, and the summary is their sum.

Revision ID: 0025_catalogue_parts
Revises: 0023_platform_purl_type
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0025_catalogue_parts"
down_revision = "0023_platform_purl_type"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    ALTER TABLE catalogue_syncs
      ADD COLUMN state text NOT NULL DEFAULT 'done' CHECK (state IN ('applying', 'done')),
      ADD COLUMN parts smallint NOT NULL DEFAULT 1 CHECK (parts BETWEEN 1 AND 16);
    ALTER TABLE catalogue_syncs ALTER COLUMN state SET DEFAULT 'applying';
    CREATE INDEX catalogue_syncs_applying ON catalogue_syncs (received_at)
      WHERE state = 'applying';

    CREATE TABLE catalogue_sync_parts (
      sync_id    uuid NOT NULL REFERENCES catalogue_syncs (id),
      part       smallint NOT NULL CHECK (part BETWEEN -1 AND 15),
      registered integer NOT NULL CHECK (registered >= 0),
      added      integer NOT NULL CHECK (added >= 0),
      changed    integer NOT NULL CHECK (changed >= 0),
      unchanged  integer NOT NULL CHECK (unchanged >= 0),
      events     integer NOT NULL CHECK (events >= 0),
      applied_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (sync_id, part)
    );
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE catalogue_sync_parts;
    ALTER TABLE catalogue_syncs DROP COLUMN parts, DROP COLUMN state;
    """)
