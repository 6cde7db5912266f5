"""Decisions, deadlines and approvals hold on every path.

- Principals record who created them (``created_by``), so that the approver of a decision
  can be checked not to descend from its proposer. Existing principals take it from the
  ``api_key.created`` ledger event of their first key.
- Incidents carry ``article73_clock``, the one rule for whether the Article 73 reporting
  clock applies (serious, neither rejected nor a duplicate), used by the incident view,
  the overdue filter and the compliance report alike.
- An authority report keeps both the time claimed for it and the time it was recorded
  (``authority_*_report_recorded_at``), so that one recorded after the deadline with an
  earlier claimed time is told apart. Existing ones take it from their ledger event.

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

    ALTER TABLE incidents
      ADD COLUMN article73_clock boolean NOT NULL
        GENERATED ALWAYS AS (serious AND status NOT IN ('duplicate', 'rejected')) STORED,
      ADD COLUMN authority_initial_report_recorded_at timestamptz,
      ADD COLUMN authority_complete_report_recorded_at timestamptz;
    UPDATE incidents i SET
      authority_initial_report_recorded_at = CASE WHEN i.authority_initial_report_at IS NOT NULL
        THEN coalesce((SELECT min(e.recorded_at) FROM events e WHERE e.subject_id = i.id
                         AND e.kind = 'incident.authority_notified'),
                      i.authority_initial_report_at) END,
      authority_complete_report_recorded_at = CASE WHEN i.authority_complete_report_at IS NOT NULL
        THEN coalesce((SELECT max(e.recorded_at) FROM events e WHERE e.subject_id = i.id
                         AND e.kind = 'incident.authority_notified'),
                      i.authority_complete_report_at) END
    WHERE i.authority_initial_report_at IS NOT NULL;
    DROP INDEX incidents_overdue;
    CREATE INDEX incidents_overdue ON incidents (report_due_at)
      WHERE article73_clock AND authority_initial_report_at IS NULL;

    """)


def downgrade() -> None:
    run_script("""
    DROP INDEX incidents_overdue;
    ALTER TABLE incidents DROP COLUMN article73_clock,
      DROP COLUMN authority_initial_report_recorded_at,
      DROP COLUMN authority_complete_report_recorded_at;
    CREATE INDEX incidents_overdue ON incidents (report_due_at)
      WHERE serious AND authority_initial_report_at IS NULL
        AND status NOT IN ('duplicate', 'rejected');
    ALTER TABLE principals DROP COLUMN created_by;
    """)
