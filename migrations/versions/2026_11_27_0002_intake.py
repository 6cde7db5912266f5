"""Webhook intake: signing secrets, deliveries and their log.

Revision ID: 0002_intake
Revises: 0001_foundation
Create Date: 2026-11-27
"""

from service.db.migrate import run_script

revision = "0002_intake"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("SELECT 1")


def downgrade() -> None:
    run_script("SELECT 1")
