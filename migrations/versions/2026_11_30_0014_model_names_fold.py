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
- Model names are case-insensitive (``Acme/Chat-7B`` and ``acme/chat-7b`` are one model):
  models whose names differ only in case are folded into the first seen, which keeps its
  spelling; every reference moves to it, and each merge is a ``model.merged`` ledger
  event (no event is changed: the survivor is indexed under the merged model's events
  too). Variants that conflict (different providers or base models, hosted on one
  platform both, one the base of another, named by a completed audit) are not folded:
  the migration refuses and lists them. Then a unique index on ``lower(name)``.

Revision ID: 0014_model_names_fold
Revises: 0013_secrets_at_rest
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0014_model_names_fold"
down_revision = "0013_secrets_at_rest"
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

    DO $fold$
    DECLARE
      conflicts text;
      grp record;
      loser record;
    BEGIN
      WITH groups AS (
        SELECT lower(name) AS folded FROM models GROUP BY lower(name) HAVING count(*) > 1
      ), variants AS (
        SELECT g.folded, m.*,
               first_value(m.id) OVER (PARTITION BY g.folded ORDER BY m.created_at, m.id)
                 AS keep
        FROM groups g JOIN models m ON lower(m.name) = g.folded
      ), bad AS (
        SELECT folded FROM variants GROUP BY folded
        HAVING count(DISTINCT provider) > 1 OR count(DISTINCT base_model_id) > 1
        UNION
        SELECT v.folded FROM variants v JOIN hostings h ON h.model_id = v.id
        GROUP BY v.folded, h.platform_id HAVING count(*) > 1
        UNION
        SELECT v.folded FROM variants v JOIN variants b
          ON b.folded = v.folded AND v.base_model_id = b.id
        UNION
        -- A completed audit's models are frozen: one naming a variant to fold away.
        SELECT v.folded FROM variants v JOIN audit_models am ON am.model_id = v.id
          JOIN audits a ON a.id = am.audit_id
        WHERE a.completed_at IS NOT NULL AND v.id <> v.keep
      )
      SELECT string_agg(names, '; ' ORDER BY names) INTO conflicts FROM (
        SELECT string_agg(v.name, ', ' ORDER BY v.name) AS names
        FROM bad JOIN variants v USING (folded) GROUP BY folded
      ) listed;
      IF conflicts IS NOT NULL THEN
        RAISE EXCEPTION 'models whose names differ only in case conflict and cannot be folded into one: %. Resolve them (rename or remove one of each) and run the migration again.', conflicts
          USING ERRCODE = 'unique_violation';
      END IF;

      FOR grp IN
        SELECT lower(name) AS folded, (array_agg(id ORDER BY created_at, id))[1] AS keep
        FROM models GROUP BY lower(name) HAVING count(*) > 1
      LOOP
        FOR loser IN
          SELECT id, name, provider, base_model_id FROM models
          WHERE lower(name) = grp.folded AND id <> grp.keep ORDER BY created_at, id
        LOOP
          UPDATE models SET provider = coalesce(provider, loser.provider),
                            base_model_id = coalesce(base_model_id, loser.base_model_id)
          WHERE id = grp.keep;
          UPDATE models SET base_model_id = grp.keep WHERE base_model_id = loser.id;
          UPDATE hostings SET model_id = grp.keep WHERE model_id = loser.id;
          INSERT INTO incident_models (incident_id, model_id)
            SELECT incident_id, grp.keep FROM incident_models WHERE model_id = loser.id
            ON CONFLICT DO NOTHING;
          DELETE FROM incident_models WHERE model_id = loser.id;
          INSERT INTO audit_models (audit_id, model_id)
            SELECT audit_id, grp.keep FROM audit_models WHERE model_id = loser.id
            ON CONFLICT DO NOTHING;
          DELETE FROM audit_models WHERE model_id = loser.id;
          UPDATE audit_grants SET model_id = grp.keep WHERE model_id = loser.id;
          UPDATE decommissions SET model_id = grp.keep WHERE model_id = loser.id;
          UPDATE decommissions SET successor_model_id = grp.keep
            WHERE successor_model_id = loser.id;
          UPDATE decommission_targets SET model_id = grp.keep WHERE model_id = loser.id;
          -- The survivor's history includes the merged model's events, unchanged.
          INSERT INTO event_models (model_id, seq)
            SELECT grp.keep, seq FROM events WHERE model_id = loser.id
            UNION SELECT grp.keep, seq FROM event_models WHERE model_id = loser.id
            ON CONFLICT DO NOTHING;
          INSERT INTO events (stage, kind, subject_type, subject_id, model_id, occurred_at,
                              payload)
          VALUES ('prevent', 'model.merged', 'model', grp.keep, grp.keep, now(),
                  jsonb_build_object(
                    'merged_id', loser.id, 'merged_name', loser.name,
                    'model_ids', jsonb_build_array(grp.keep, loser.id),
                    'reason', 'model names are case-insensitive'));
          DELETE FROM models WHERE id = loser.id;
        END LOOP;
      END LOOP;
    END
    $fold$;
    CREATE UNIQUE INDEX models_name_folded ON models (lower(name));
    -- Implied by the folded index, and a second unique index would make concurrent
    -- INSERT ... ON CONFLICT ((lower(name))) of one new name fail on it instead.
    ALTER TABLE models DROP CONSTRAINT models_name_key;
    """)


def downgrade() -> None:
    # Folded models stay folded: the merges are ledger events, and nothing is split again.
    run_script("""
    ALTER TABLE models ADD CONSTRAINT models_name_key UNIQUE (name);
    DROP INDEX models_name_folded;
    DROP INDEX incidents_overdue;
    ALTER TABLE incidents DROP COLUMN article73_clock,
      DROP COLUMN authority_initial_report_recorded_at,
      DROP COLUMN authority_complete_report_recorded_at;
    CREATE INDEX incidents_overdue ON incidents (report_due_at)
      WHERE serious AND authority_initial_report_at IS NULL
        AND status NOT IN ('duplicate', 'rejected');
    ALTER TABLE principals DROP COLUMN created_by;
    """)
