"""Signed export bundles: export jobs and the files they produce, kept in the database.

The files live in PostgreSQL (as ordered chunks) so that any replica can serve a bundle
that another replica built: replicas keep nothing on local disk.

Revision ID: 0006_export_bundles
Revises: 0005_respond
Create Date: 2026-11-27
"""

from service.db.migrate import run_script

revision = "0006_export_bundles"
down_revision = "0005_respond"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    CREATE TABLE export_jobs (
      id            uuid PRIMARY KEY DEFAULT uuid7(),
      requested_by  uuid REFERENCES principals (id),
      datasets      text[] NOT NULL CHECK (cardinality(datasets) >= 1),
      format        text NOT NULL CHECK (format IN ('csv', 'jsonl')),
      filters       jsonb NOT NULL DEFAULT '{}',
      status        text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'failed')),
      rows_total    bigint,
      rows_done     bigint NOT NULL DEFAULT 0,
      error         text,
      lease_until   timestamptz,
      attempts      integer NOT NULL DEFAULT 0,
      created_at    timestamptz NOT NULL DEFAULT now(),
      started_at    timestamptz,
      finished_at   timestamptz
    );
    CREATE INDEX export_jobs_pending ON export_jobs (created_at)
      WHERE status IN ('queued', 'running');

    CREATE TABLE export_files (
      job_id  uuid NOT NULL REFERENCES export_jobs (id) ON DELETE CASCADE,
      name    text NOT NULL CHECK (name ~ '^[a-z0-9_.-]+$'),
      chunk   integer NOT NULL CHECK (chunk >= 0),
      data    bytea NOT NULL,
      PRIMARY KEY (job_id, name, chunk)
    );
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE export_files;
    DROP TABLE export_jobs;
    """)
