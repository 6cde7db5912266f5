"""Platforms manage their own notice endpoints: deletion, and secret rotation with overlap.

A deleted endpoint's notices and their delivery attempts stay on record (the outbox refers
to the endpoint), so a deletion sets ``deleted_at`` rather than removing the row; every
read, subscription and delivery query leaves deleted endpoints out.

A rotated secret keeps signing beside the new one until ``previous_secret_until``, so a
receiver can switch over without refusing a notice.

Revision ID: 0010_endpoint_deletion
Revises: 0009_csv_formula_guard
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0010_endpoint_deletion"
down_revision = "0009_csv_formula_guard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    ALTER TABLE notification_endpoints
      ADD COLUMN deleted_at timestamptz,
      -- Always copied from ``secret`` by a rotation, in whatever form that column holds.
      ADD COLUMN previous_secret text,
      ADD COLUMN previous_secret_until timestamptz,
      ADD CHECK ((previous_secret IS NULL) = (previous_secret_until IS NULL));
    DROP INDEX notification_endpoints_platform;
    CREATE INDEX notification_endpoints_platform ON notification_endpoints (platform_id)
      WHERE deleted_at IS NULL;
    """)


def downgrade() -> None:
    run_script("""
    DROP INDEX notification_endpoints_platform;
    DELETE FROM outbox_attempts WHERE message_id IN (
      SELECT o.id FROM outbox o JOIN notification_endpoints e ON e.id = o.endpoint_id
      WHERE e.deleted_at IS NOT NULL);
    DELETE FROM outbox WHERE endpoint_id IN (
      SELECT id FROM notification_endpoints WHERE deleted_at IS NOT NULL);
    DELETE FROM notification_endpoints WHERE deleted_at IS NOT NULL;
    ALTER TABLE notification_endpoints
      DROP COLUMN previous_secret_until, DROP COLUMN previous_secret, DROP COLUMN deleted_at;
    CREATE INDEX notification_endpoints_platform ON notification_endpoints (platform_id);
    """)
