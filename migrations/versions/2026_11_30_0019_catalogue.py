"""Catalogue syncs: a platform sends its whole catalogue of hostings in one request.

Each accepted catalogue is kept by its delivery id (unique per platform, as a webhook's
is), with the SHA-256 of its body and the summary it was answered with, so a resend of
the same delivery is answered with that summary and writes nothing. The body itself is
not kept: a catalogue can be hundreds of megabytes, and every change it made is in the
ledger, each event linking back to this row. Hostings are matched by their platform and
case-folded name, which 0021's unique index serves.

Revision ID: 0019_catalogue
Revises: 0021_hosting_names_fold
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0019_catalogue"
down_revision = "0021_hosting_names_fold"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    CREATE TABLE catalogue_syncs (
      id          uuid PRIMARY KEY DEFAULT uuid7(),
      platform_id uuid NOT NULL REFERENCES platforms (id),
      delivery_id text NOT NULL CHECK (length(delivery_id) BETWEEN 1 AND 200),
      format      text NOT NULL CHECK (format IN ('ndjson', 'cyclonedx')),
      complete    boolean NOT NULL,
      body_sha256 bytea NOT NULL CHECK (length(body_sha256) = 32),
      body_bytes  bigint NOT NULL CHECK (body_bytes >= 0),
      summary     jsonb NOT NULL,
      received_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (platform_id, delivery_id)
    );
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE catalogue_syncs;
    """)
