"""Decisions, deadlines and approvals hold on every path.

- Principals record who created them (``created_by``), so that the approver of a decision
  can be checked not to descend from its proposer. Existing principals take it from the
  ``api_key.created`` ledger event of their first key.

Revision ID: 0012_model_names_fold
Revises: 0006_export_bundles
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0012_model_names_fold"
down_revision = "0006_export_bundles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    ALTER TABLE principals ADD COLUMN created_by uuid REFERENCES principals (id);
    CREATE INDEX principals_created_by ON principals (created_by) WHERE created_by IS NOT NULL;
    UPDATE principals p SET created_by = e.actor_id
    FROM api_keys k JOIN events e ON e.subject_id = k.id AND e.kind = 'api_key.created'
    WHERE k.principal_id = p.id AND e.actor_id IS NOT NULL AND e.actor_id <> p.id;
    """)


def downgrade() -> None:
    run_script("""
    ALTER TABLE principals DROP COLUMN created_by;
    """)
