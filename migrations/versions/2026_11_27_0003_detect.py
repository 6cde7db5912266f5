"""Detect stage: incident reports, public report channel, triage, audits.

Adds what the foundation's detect tables lacked: the Article 73 deadline as a column (so
lists can filter by ``overdue``), the death flag that shortens it, model names a public
reporter gave that are not registered, notes exchanged with reporters, and a trigger that
makes an audit's record append-only once the audit is completed.

Revision ID: 0003_detect
Revises: 0002_intake
Create Date: 2026-11-27
"""

from service.db.migrate import run_script

revision = "0003_detect"
down_revision = "0002_intake"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    ALTER TABLE incidents
      ADD COLUMN death boolean NOT NULL DEFAULT false,
      ADD COLUMN unlisted_models text[] NOT NULL DEFAULT '{}',
      -- Computed by the service from aware_at and the kind of serious incident (EU AI Act
      -- Article 73); null when the incident is not serious.
      ADD COLUMN report_due_at timestamptz,
      ADD CONSTRAINT incidents_death_kind
        CHECK (NOT death OR serious_kind = 'death_or_serious_harm'),
      ADD CONSTRAINT incidents_due_if_serious CHECK (serious = (report_due_at IS NOT NULL)),
      ADD CONSTRAINT incidents_rejection_reason
        CHECK (status <> 'rejected' OR rejection_reason IS NOT NULL);
    CREATE INDEX incidents_overdue ON incidents (report_due_at)
      WHERE serious AND authority_initial_report_at IS NULL
        AND status NOT IN ('duplicate', 'rejected');
    CREATE INDEX incidents_category_reported ON incidents (category, reported_at);
    CREATE INDEX incidents_duplicate_of ON incidents (duplicate_of) WHERE duplicate_of IS NOT NULL;
    CREATE INDEX incident_hostings_hosting ON incident_hostings (hosting_id);

    -- Information added after the report: by the reporter (with the follow-up token) or by
    -- the registry's triage team (shown to the reporter only when shared).
    CREATE TABLE incident_notes (
      id                  uuid PRIMARY KEY DEFAULT uuid7(),
      incident_id         uuid NOT NULL REFERENCES incidents (id),
      author              text NOT NULL CHECK (author IN ('reporter', 'registry')),
      actor_id            uuid REFERENCES principals (id),
      body                text NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
      evidence_urls       text[] NOT NULL DEFAULT '{}',
      share_with_reporter boolean NOT NULL DEFAULT false,
      created_at          timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX incident_notes_incident ON incident_notes (incident_id, id);

    CREATE INDEX audits_auditor ON audits (auditor_id, id);
    CREATE INDEX audit_evaluations_audit ON audit_evaluations (audit_id);
    CREATE INDEX audit_artefacts_audit ON audit_artefacts (audit_id);

    -- Once an audit is completed its record is append-only: corrections are ledger events.
    -- Only a finding's status (open -> remediated/accepted) and the incident it opened may
    -- still change, since remediation happens after the audit. Nothing is ever deleted.
    CREATE FUNCTION audits_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      IF TG_OP = 'DELETE' OR OLD.completed_at IS NOT NULL THEN
        RAISE EXCEPTION 'audit % is completed or the change is a delete: % is not allowed',
          OLD.id, TG_OP USING ERRCODE = 'insufficient_privilege';
      END IF;
      RETURN NEW;
    END
    $fn$;
    CREATE TRIGGER audits_frozen BEFORE UPDATE OR DELETE ON audits
      FOR EACH ROW EXECUTE FUNCTION audits_append_only();

    CREATE FUNCTION audit_parts_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
    DECLARE
      done timestamptz;
    BEGIN
      IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit records are never deleted' USING ERRCODE = 'insufficient_privilege';
      END IF;
      SELECT completed_at INTO done FROM audits WHERE id = NEW.audit_id;
      IF done IS NULL THEN
        RETURN NEW;
      END IF;
      -- Nested, so the finding columns are only looked up on audit_findings.
      IF TG_TABLE_NAME = 'audit_findings' AND TG_OP = 'UPDATE' THEN
        IF (NEW.audit_id, NEW.title, NEW.description, NEW.severity, NEW.created_at)
           IS NOT DISTINCT FROM (OLD.audit_id, OLD.title, OLD.description, OLD.severity, OLD.created_at)
        THEN
          RETURN NEW;
        END IF;
      END IF;
      RAISE EXCEPTION 'audit % is completed: its record is append-only', NEW.audit_id
        USING ERRCODE = 'insufficient_privilege';
    END
    $fn$;
    CREATE TRIGGER audit_models_frozen BEFORE INSERT OR UPDATE OR DELETE ON audit_models
      FOR EACH ROW EXECUTE FUNCTION audit_parts_append_only();
    CREATE TRIGGER audit_findings_frozen BEFORE INSERT OR UPDATE OR DELETE ON audit_findings
      FOR EACH ROW EXECUTE FUNCTION audit_parts_append_only();
    CREATE TRIGGER audit_evaluations_frozen BEFORE INSERT OR UPDATE OR DELETE ON audit_evaluations
      FOR EACH ROW EXECUTE FUNCTION audit_parts_append_only();
    CREATE TRIGGER audit_artefacts_frozen BEFORE INSERT OR UPDATE OR DELETE ON audit_artefacts
      FOR EACH ROW EXECUTE FUNCTION audit_parts_append_only();
    """)


def downgrade() -> None:
    run_script("""
    DROP TRIGGER audit_artefacts_frozen ON audit_artefacts;
    DROP TRIGGER audit_evaluations_frozen ON audit_evaluations;
    DROP TRIGGER audit_findings_frozen ON audit_findings;
    DROP TRIGGER audit_models_frozen ON audit_models;
    DROP FUNCTION audit_parts_append_only();
    DROP TRIGGER audits_frozen ON audits;
    DROP FUNCTION audits_append_only();
    DROP INDEX audit_artefacts_audit, audit_evaluations_audit, audits_auditor;
    DROP TABLE incident_notes;
    DROP INDEX incident_hostings_hosting, incidents_duplicate_of, incidents_category_reported,
               incidents_overdue;
    ALTER TABLE incidents
      DROP CONSTRAINT incidents_rejection_reason,
      DROP CONSTRAINT incidents_due_if_serious,
      DROP CONSTRAINT incidents_death_kind,
      DROP COLUMN report_due_at,
      DROP COLUMN unlisted_models,
      DROP COLUMN death;
    """)
