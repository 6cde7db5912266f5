"""A hosting's own name: the name the platform hosts the model under.

A platform's repository can be renamed or moved to another owner while it stays the same
hosting of the same model, so the hosting keeps a name of its own, first the model's name.
Deliveries find a platform's hosting by this name.

Revision ID: 0011_renames
Revises: 0010_endpoint_deletion
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0011_renames"
down_revision = "0010_endpoint_deletion"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    ALTER TABLE hostings ADD COLUMN name text CHECK (length(name) BETWEEN 1 AND 200);
    UPDATE hostings h SET name = m.name FROM models m WHERE m.id = h.model_id;
    ALTER TABLE hostings ALTER COLUMN name SET NOT NULL;
    ALTER TABLE hostings ADD CONSTRAINT hostings_platform_id_name_key UNIQUE (platform_id, name);

    -- A hosting inserted without a name is named after its model, as every one was before.
    CREATE FUNCTION hostings_default_name() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      IF NEW.name IS NULL THEN
        SELECT m.name INTO NEW.name FROM models m WHERE m.id = NEW.model_id;
      END IF;
      RETURN NEW;
    END
    $fn$;
    CREATE TRIGGER hostings_default_name BEFORE INSERT ON hostings
      FOR EACH ROW EXECUTE FUNCTION hostings_default_name();
    """)


def downgrade() -> None:
    run_script("""
    DROP TRIGGER hostings_default_name ON hostings;
    DROP FUNCTION hostings_default_name();
    ALTER TABLE hostings DROP COLUMN name;
    """)
