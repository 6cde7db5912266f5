"""Incidents carry their identifiers in other incident databases (aliases).

An alias is a scheme and a value: ``aiid`` (AI Incident Database), ``oecd`` (OECD AI
Incidents Monitor), ``avid`` (AVID) or ``cve``. One alias names one incident: the same
identifier claimed for a second incident is a likely duplicate, refused by the unique
constraint rather than recorded twice. Values are stored in their canonical form (the
service normalises them), so the constraint compares like with like.

Revision ID: 0022_incident_aliases_purls
Revises: 0016_reconciliation
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0022_incident_aliases_purls"
down_revision = "0016_reconciliation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    CREATE TABLE incident_aliases (
      incident_id  uuid NOT NULL REFERENCES incidents (id),
      scheme       text NOT NULL CHECK (scheme IN ('aiid', 'oecd', 'avid', 'cve')),
      value        text NOT NULL CHECK (length(value) BETWEEN 1 AND 200),
      created_at   timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (scheme, value)
    );
    CREATE INDEX incident_aliases_incident ON incident_aliases (incident_id);
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE incident_aliases;
    """)
