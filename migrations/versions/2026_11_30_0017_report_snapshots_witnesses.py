"""Frozen compliance reports, and witness cosignatures of checkpoints.

- ``report_snapshots``: a compliance report frozen at a request, kept as the RFC 8785
  (JCS) bytes that were signed, with the signed note (the checkpoint key) binding those
  bytes to the checkpoint whose tree covers every event the report read.
- ``witness_cosignatures``: the C2SP ``tlog-cosignature`` lines witnesses returned for a
  checkpoint, one per witness and checkpoint, served with the checkpoint.
- ``witness_progress``: the tree size each witness last cosigned (what it told us, or
  what it said it had on a 409), from which the next consistency proof starts.

Revision ID: 0017_report_snapshots_witnesses
Revises: 0018_console_speed
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0017_report_snapshots_witnesses"
down_revision = "0018_console_speed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    CREATE TABLE report_snapshots (
      id          uuid PRIMARY KEY,
      period_from timestamptz NOT NULL,
      period_to   timestamptz NOT NULL CHECK (period_from < period_to),
      platform    text,
      report      bytea NOT NULL,
      tree_size   bigint NOT NULL REFERENCES ledger_checkpoints (tree_size),
      note        text NOT NULL,
      created_by  uuid,
      created_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX report_snapshots_created ON report_snapshots (created_at);

    CREATE TABLE witness_cosignatures (
      tree_size  bigint NOT NULL REFERENCES ledger_checkpoints (tree_size),
      witness    text NOT NULL,
      line       text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tree_size, witness)
    );

    CREATE TABLE witness_progress (
      witness    text PRIMARY KEY,
      tree_size  bigint NOT NULL CHECK (tree_size >= 0),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE witness_progress;
    DROP TABLE witness_cosignatures;
    DROP TABLE report_snapshots;
    """)
