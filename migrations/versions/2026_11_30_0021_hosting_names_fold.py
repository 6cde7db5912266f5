"""A platform's hosting names are unique whatever their case, as model names are.

Deliveries already find a hosting by its name case-insensitively; the unique constraint on
``(platform_id, name)`` was case-sensitive, so a rename (or two concurrent first
deliveries) could leave ``Acme/Chat`` and ``acme/chat`` side by side on one platform, and a
lookup would then find two. The constraint becomes a unique index on
``(platform_id, lower(name))``. Existing names that differ only in case on one platform are
not merged here (each is a hosting with its own history): the migration refuses and lists
them, to be renamed first.

Revision ID: 0021_hosting_names_fold
Revises: 0014_model_names_fold
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0021_hosting_names_fold"
down_revision = "0014_model_names_fold"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    DO $check$
    DECLARE clashes text;
    BEGIN
      SELECT string_agg(format('%s: %s', p.slug, c.names), '; ' ORDER BY p.slug, c.names)
        INTO clashes
      FROM (SELECT platform_id, string_agg(name, ', ' ORDER BY name) AS names
            FROM hostings GROUP BY platform_id, lower(name) HAVING count(*) > 1) c
      JOIN platforms p ON p.id = c.platform_id;
      IF clashes IS NOT NULL THEN
        RAISE EXCEPTION 'hostings whose names differ only in case on one platform: %. Rename all but one of each and run the migration again.', clashes;
      END IF;
    END
    $check$;
    ALTER TABLE hostings DROP CONSTRAINT hostings_platform_id_name_key;
    CREATE UNIQUE INDEX hostings_platform_name_folded ON hostings (platform_id, lower(name));
    """)


def downgrade() -> None:
    run_script("""
    DROP INDEX hostings_platform_name_folded;
    ALTER TABLE hostings ADD CONSTRAINT hostings_platform_id_name_key UNIQUE (platform_id, name);
    """)
