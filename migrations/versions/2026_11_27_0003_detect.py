"""Detect stage: incident reports, public report channel, triage, audits.

Revision ID: 0003_detect
Revises: 0002_intake
Create Date: 2026-11-27
"""

from service.db.migrate import run_script

revision = "0003_detect"
down_revision = "0002_intake"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("SELECT 1")


def downgrade() -> None:
    run_script("SELECT 1")
