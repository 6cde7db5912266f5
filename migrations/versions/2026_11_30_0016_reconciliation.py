"""Records reconciled with the ledger: what the background pass found, and where it is.

- ``record_divergences``: one row per field of a record that differs from the state its
  newest ledger event carries (or a record no event carries), as the last pass over that
  record found it; a later pass that finds the record agreeing removes its rows.
- ``reconciliation_progress``: per dataset, the last record id a pass reached (keyset), so
  that replicas taking turns continue one another's pass instead of starting over.

Revision ID: 0016_reconciliation
Revises: 0017_report_snapshots_witnesses
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0016_reconciliation"
down_revision = "0017_report_snapshots_witnesses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    CREATE TABLE record_divergences (
      id            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
      dataset       text NOT NULL,
      record_id     uuid NOT NULL,
      field         text NOT NULL,
      found         text,
      expected      text,
      event_seq     bigint,
      first_seen_at timestamptz NOT NULL DEFAULT now(),
      last_seen_at  timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (dataset, record_id, field)
    );

    CREATE TABLE reconciliation_progress (
      dataset         text PRIMARY KEY,
      after_id        uuid,
      passes          bigint NOT NULL DEFAULT 0,
      pass_started_at timestamptz,
      last_pass_at    timestamptz,
      last_pass_seconds double precision
    );
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE reconciliation_progress;
    DROP TABLE record_divergences;
    """)
