"""Indexes the console's lists read in page order.

* ``hostings (platform_id, id)``: a platform's hostings a page at a time, in id order (the
  platform view, ``/console/hostings?platform=``, ``GET /v1/hostings?platform=``), read
  from the index instead of filtering every hosting by platform.
* the triage queue's Article 73 deadline order (``?sort=deadline``): the pending deadline
  (none last) and the id, the expression ``service.db.queries.incidents.DEADLINE_KEY``
  sorts by, so a page is read in order instead of sorting every incident.

Revision ID: 0018_console_speed
Revises: 0015_leaf_format
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0018_console_speed"
down_revision = "0015_leaf_format"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    CREATE INDEX hostings_platform_page ON hostings (platform_id, id);
    CREATE INDEX incidents_deadline_queue ON incidents (
      (coalesce(CASE WHEN serious AND authority_initial_report_at IS NULL
                      AND status NOT IN ('duplicate', 'rejected') THEN report_due_at END,
                'infinity'::timestamptz)),
      id
    );
    """)


def downgrade() -> None:
    run_script("""
    DROP INDEX incidents_deadline_queue;
    DROP INDEX hostings_platform_page;
    """)
