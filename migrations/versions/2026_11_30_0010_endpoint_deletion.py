"""Platforms delete their own notification endpoints: a deleted endpoint is kept, marked.

Its notices and their delivery attempts stay on record (the outbox refers to the endpoint),
so a deletion sets ``deleted_at`` rather than removing the row; every read, subscription
and delivery query leaves deleted endpoints out.

Revision ID: 0010_unused_kit
Revises: 0006_export_bundles
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0010_unused_kit"
down_revision = "0006_export_bundles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    ALTER TABLE notification_endpoints ADD COLUMN deleted_at timestamptz;
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
    ALTER TABLE notification_endpoints DROP COLUMN deleted_at;
    CREATE INDEX notification_endpoints_platform ON notification_endpoints (platform_id);
    """)
