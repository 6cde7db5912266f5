"""Ledger events name their subject with a lower-case word, as they name their stage and kind.

The CSV exports neutralise text cells that a spreadsheet would run as a formula (see
``service.db.queries.exports``). Every text column of the ledger export is now held by a
CHECK constraint to begin with a lower-case letter, so that export needs no guard and
stays the bare ``COPY`` of its query. The service only ever writes nouns such as
``hosting`` or ``webhook_secret`` here.

Revision ID: 0009_csv_formula_guard
Revises: 0006_export_bundles
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0009_csv_formula_guard"
down_revision = "0006_export_bundles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added unvalidated, then validated: the check scans the ledger without blocking writers.
    run_script("""
    ALTER TABLE events ADD CONSTRAINT events_subject_type_word
      CHECK (subject_type ~ '^[a-z][a-z_]*$') NOT VALID;
    ALTER TABLE events VALIDATE CONSTRAINT events_subject_type_word;
    """)


def downgrade() -> None:
    run_script("""
    ALTER TABLE events DROP CONSTRAINT events_subject_type_word;
    """)
