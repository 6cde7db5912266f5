"""Leaf formats, and reporter identity kept out of the ledger's event bodies.

- ``ledger_leaves.format`` records how each leaf's entry was encoded: 1 for the sorted-key
  msgspec JSON sealed so far (every existing leaf, which stays verifiable as it is), 2 for
  RFC 8785 (JCS), which the sealer writes from now on.
- ``incident_reporters`` holds, per incident, the random salt of the commitment to its
  reporter (``reporter_commitment`` in the incident's events, which no longer carry the
  reporter's ids). The ids themselves stay on ``incidents``.

Revision ID: 0015_leaf_format
Revises: 0019_catalogue
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0015_leaf_format"
down_revision = "0019_catalogue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    ALTER TABLE ledger_leaves
      ADD COLUMN format smallint NOT NULL DEFAULT 1 CHECK (format IN (1, 2));

    CREATE TABLE incident_reporters (
      incident_id  uuid PRIMARY KEY REFERENCES incidents (id),
      salt         bytea NOT NULL CHECK (length(salt) = 32),
      commitment   text NOT NULL CHECK (commitment ~ '^[0-9a-f]{64}$')
    );
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE incident_reporters;
    ALTER TABLE ledger_leaves DROP COLUMN format;
    """)
