"""Foundation: platforms, principals and keys, models, hostings, the detect and respond
records, and the append-only event ledger.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-23
"""

from service.db.migrate import run_script

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    -- Time-ordered UUIDs (version 7): ids sort by creation time, so keyset pagination
    -- by id is chronological and index inserts stay at the right edge.
    CREATE FUNCTION uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $fn$
      SELECT encode(
        set_bit(set_bit(
          overlay(uuid_send(gen_random_uuid())
                  PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                  FROM 1 FOR 6),
          52, 1), 53, 1),
        'hex')::uuid
    $fn$;

    CREATE TABLE platforms (
      id          uuid PRIMARY KEY DEFAULT uuid7(),
      slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
      name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
      kind        text NOT NULL CHECK (kind IN ('model_hub', 'code_forge', 'cloud_catalogue', 'app_provider')),
      created_at  timestamptz NOT NULL DEFAULT now(),
      updated_at  timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE principals (
      id          uuid PRIMARY KEY DEFAULT uuid7(),
      name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
      role        text NOT NULL CHECK (role IN ('admin', 'platform', 'auditor', 'regulator')),
      platform_id uuid REFERENCES platforms (id),
      created_at  timestamptz NOT NULL DEFAULT now(),
      CHECK ((role = 'platform') = (platform_id IS NOT NULL))
    );

    -- A key is "<lookup>.<secret>": the lookup part finds the row, the secret is compared
    -- against its SHA-256 in constant time. The secret itself is never stored.
    CREATE TABLE api_keys (
      id           uuid PRIMARY KEY DEFAULT uuid7(),
      principal_id uuid NOT NULL REFERENCES principals (id),
      lookup       text NOT NULL UNIQUE,
      secret_hash  bytea NOT NULL CHECK (length(secret_hash) = 32),
      created_at   timestamptz NOT NULL DEFAULT now(),
      revoked_at   timestamptz,
      last_used_at timestamptz
    );
    CREATE INDEX api_keys_principal ON api_keys (principal_id);

    CREATE TABLE models (
      id             uuid PRIMARY KEY DEFAULT uuid7(),
      name           text NOT NULL UNIQUE
                     CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$'),
      provider       text,
      modalities     text[] NOT NULL DEFAULT '{}',
      tasks          text[] NOT NULL DEFAULT '{}',
      base_model_id  uuid REFERENCES models (id),
      derivation     text CHECK (derivation IN ('fine_tune', 'quantisation', 'adapter', 'merge', 'distillation', 'other')),
      weights_openness    text NOT NULL DEFAULT 'unknown' CHECK (weights_openness IN ('open', 'restricted', 'closed', 'unknown')),
      code_openness       text NOT NULL DEFAULT 'unknown' CHECK (code_openness IN ('open', 'restricted', 'closed', 'unknown')),
      data_openness       text NOT NULL DEFAULT 'unknown' CHECK (data_openness IN ('open', 'restricted', 'closed', 'unknown')),
      model_card_openness text NOT NULL DEFAULT 'unknown' CHECK (model_card_openness IN ('open', 'restricted', 'closed', 'unknown')),
      created_at     timestamptz NOT NULL DEFAULT now(),
      updated_at     timestamptz NOT NULL DEFAULT now(),
      CHECK (base_model_id IS NULL OR base_model_id <> id),
      CHECK (base_model_id IS NOT NULL OR derivation IS NULL)
    );
    CREATE INDEX models_base ON models (base_model_id) WHERE base_model_id IS NOT NULL;

    CREATE TABLE hostings (
      id              uuid PRIMARY KEY DEFAULT uuid7(),
      model_id        uuid NOT NULL REFERENCES models (id),
      platform_id     uuid NOT NULL REFERENCES platforms (id),
      external_id     text,
      url             text NOT NULL CHECK (url ~ '^https?://'),
      revision        text,
      licence         text,
      gated           boolean NOT NULL DEFAULT false,
      disabled        boolean NOT NULL DEFAULT false,
      status          text NOT NULL DEFAULT 'hosted' CHECK (status IN ('hosted', 'restricted', 'removed')),
      downloads       bigint CHECK (downloads >= 0),
      downloads_at    timestamptz,
      model_card_present     boolean NOT NULL DEFAULT false,
      model_card_url         text,
      safety_testing_present boolean NOT NULL DEFAULT false,
      safety_testing_url     text,
      risk_analysis_present  boolean NOT NULL DEFAULT false,
      risk_analysis_url      text,
      use_guidance_present   boolean NOT NULL DEFAULT false,
      use_guidance_url       text,
      created_at      timestamptz NOT NULL DEFAULT now(),
      updated_at      timestamptz NOT NULL DEFAULT now(),
      UNIQUE (platform_id, model_id),
      UNIQUE (platform_id, external_id)
    );
    CREATE INDEX hostings_model ON hostings (model_id);
    CREATE INDEX hostings_downloads ON hostings (downloads DESC NULLS LAST);

    -- Detect stage -------------------------------------------------------------------
    CREATE TABLE incidents (
      id               uuid PRIMARY KEY DEFAULT uuid7(),
      ref              text NOT NULL UNIQUE,
      title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
      description      text NOT NULL DEFAULT '',
      category         text NOT NULL CHECK (category IN ('harmful_content', 'security_vulnerability',
                         'bias_discrimination', 'malfunction', 'misuse', 'privacy', 'other')),
      subcategory      text,
      harm_types       text[] NOT NULL DEFAULT '{}',
      affected_parties text[] NOT NULL DEFAULT '{}',
      severity         text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
      serious          boolean NOT NULL DEFAULT false,
      serious_kind     text CHECK (serious_kind IN ('death_or_serious_harm', 'critical_infrastructure',
                         'fundamental_rights', 'property_or_environment')),
      widespread       boolean NOT NULL DEFAULT false,
      status           text NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'triaged',
                         'investigating', 'mitigated', 'closed', 'duplicate', 'rejected')),
      duplicate_of     uuid REFERENCES incidents (id),
      rejection_reason text,
      channel          text NOT NULL CHECK (channel IN ('webhook', 'api', 'public')),
      reporter_principal_id uuid REFERENCES principals (id),
      reporter_platform_id  uuid REFERENCES platforms (id),
      followup_token_hash   bytea,
      evidence_urls    text[] NOT NULL DEFAULT '{}',
      occurred_at      timestamptz,
      aware_at         timestamptz NOT NULL,
      reported_at      timestamptz NOT NULL DEFAULT now(),
      triaged_at       timestamptz,
      mitigated_at     timestamptz,
      closed_at        timestamptz,
      authority_initial_report_at  timestamptz,
      authority_complete_report_at timestamptz,
      created_at       timestamptz NOT NULL DEFAULT now(),
      updated_at       timestamptz NOT NULL DEFAULT now(),
      CHECK (NOT serious OR serious_kind IS NOT NULL),
      CHECK ((status = 'duplicate') = (duplicate_of IS NOT NULL))
    );
    CREATE INDEX incidents_status ON incidents (status);

    CREATE TABLE incident_models (
      incident_id uuid NOT NULL REFERENCES incidents (id),
      model_id    uuid NOT NULL REFERENCES models (id),
      PRIMARY KEY (incident_id, model_id)
    );
    CREATE INDEX incident_models_model ON incident_models (model_id);

    CREATE TABLE incident_hostings (
      incident_id uuid NOT NULL REFERENCES incidents (id),
      hosting_id  uuid NOT NULL REFERENCES hostings (id),
      PRIMARY KEY (incident_id, hosting_id)
    );

    -- Confidential reporters' contact details live apart from the incident, so no view or
    -- export of incidents can reach them by accident.
    CREATE TABLE reporter_contacts (
      incident_id uuid PRIMARY KEY REFERENCES incidents (id),
      contact     jsonb NOT NULL,
      created_at  timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE audit_grants (
      id          uuid PRIMARY KEY DEFAULT uuid7(),
      auditor_id  uuid NOT NULL REFERENCES principals (id),
      model_id    uuid NOT NULL REFERENCES models (id),
      components  text[] NOT NULL CHECK (components <@ ARRAY['weights', 'code', 'data', 'documentation']),
      valid_from  timestamptz NOT NULL,
      valid_until timestamptz NOT NULL,
      granted_by  uuid NOT NULL REFERENCES principals (id),
      revoked_at  timestamptz,
      created_at  timestamptz NOT NULL DEFAULT now(),
      CHECK (valid_until > valid_from)
    );
    CREATE INDEX audit_grants_auditor ON audit_grants (auditor_id, model_id);

    CREATE TABLE audits (
      id           uuid PRIMARY KEY DEFAULT uuid7(),
      auditor_id   uuid NOT NULL REFERENCES principals (id),
      method       text NOT NULL CHECK (method IN ('red_team', 'benchmark_evaluation',
                     'documentation_review', 'safety_testing_review', 'other')),
      components   text[] NOT NULL DEFAULT '{}',
      summary      text NOT NULL DEFAULT '',
      started_at   timestamptz NOT NULL,
      completed_at timestamptz,
      outcome      text CHECK (outcome IN ('pass', 'conditional', 'fail')),
      created_at   timestamptz NOT NULL DEFAULT now(),
      CHECK ((completed_at IS NULL) = (outcome IS NULL))
    );

    CREATE TABLE audit_models (
      audit_id uuid NOT NULL REFERENCES audits (id),
      model_id uuid NOT NULL REFERENCES models (id),
      PRIMARY KEY (audit_id, model_id)
    );
    CREATE INDEX audit_models_model ON audit_models (model_id);

    CREATE TABLE audit_findings (
      id          uuid PRIMARY KEY DEFAULT uuid7(),
      audit_id    uuid NOT NULL REFERENCES audits (id),
      title       text NOT NULL,
      description text NOT NULL DEFAULT '',
      severity    text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
      status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'remediated', 'accepted')),
      incident_id uuid REFERENCES incidents (id),
      created_at  timestamptz NOT NULL DEFAULT now(),
      updated_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX audit_findings_audit ON audit_findings (audit_id);

    CREATE TABLE audit_evaluations (
      id       uuid PRIMARY KEY DEFAULT uuid7(),
      audit_id uuid NOT NULL REFERENCES audits (id),
      metric   text NOT NULL,
      value    double precision NOT NULL,
      dataset  text,
      method   text
    );

    CREATE TABLE audit_artefacts (
      id       uuid PRIMARY KEY DEFAULT uuid7(),
      audit_id uuid NOT NULL REFERENCES audits (id),
      url      text NOT NULL,
      sha256   text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$')
    );

    -- Respond stage ------------------------------------------------------------------
    CREATE TABLE decommission_policies (
      id          uuid PRIMARY KEY DEFAULT uuid7(),
      name        text NOT NULL,
      version     integer NOT NULL CHECK (version >= 1),
      action      text NOT NULL CHECK (action IN ('recall', 'restrict', 'licence_change', 'deprecate')),
      clause      text NOT NULL,
      conditions  jsonb NOT NULL,
      active      boolean NOT NULL DEFAULT true,
      created_by  uuid NOT NULL REFERENCES principals (id),
      created_at  timestamptz NOT NULL DEFAULT now(),
      UNIQUE (name, version)
    );

    CREATE TABLE decommissions (
      id                  uuid PRIMARY KEY DEFAULT uuid7(),
      model_id            uuid NOT NULL REFERENCES models (id),
      revisions           text[] NOT NULL DEFAULT '{}',
      action              text NOT NULL CHECK (action IN ('recall', 'restrict', 'licence_change', 'deprecate')),
      reason              text NOT NULL,
      policy_id           uuid REFERENCES decommission_policies (id),
      policy_clause       text,
      include_derivatives boolean NOT NULL DEFAULT false,
      platform_ids        uuid[],
      effective_at        timestamptz NOT NULL,
      sunset_at           timestamptz,
      successor_model_id  uuid REFERENCES models (id),
      old_licence         text,
      new_licence         text,
      prohibited_uses     text[] NOT NULL DEFAULT '{}',
      status              text NOT NULL DEFAULT 'proposed' CHECK (status IN ('proposed', 'approved',
                            'notified', 'executed', 'withdrawn')),
      proposed_by         uuid REFERENCES principals (id),
      approved_by         uuid REFERENCES principals (id),
      proposed_at         timestamptz NOT NULL DEFAULT now(),
      approved_at         timestamptz,
      notified_at         timestamptz,
      executed_at         timestamptz,
      withdrawn_at        timestamptz,
      confirm_by          timestamptz,
      created_at          timestamptz NOT NULL DEFAULT now(),
      updated_at          timestamptz NOT NULL DEFAULT now(),
      CHECK (approved_by IS NULL OR proposed_by IS NULL OR approved_by <> proposed_by),
      CHECK (action <> 'deprecate' OR sunset_at IS NOT NULL),
      CHECK (action <> 'licence_change' OR new_licence IS NOT NULL)
    );
    CREATE INDEX decommissions_model ON decommissions (model_id);

    CREATE TABLE decommission_incidents (
      decommission_id uuid NOT NULL REFERENCES decommissions (id),
      incident_id     uuid NOT NULL REFERENCES incidents (id),
      PRIMARY KEY (decommission_id, incident_id)
    );

    CREATE TABLE decommission_findings (
      decommission_id uuid NOT NULL REFERENCES decommissions (id),
      finding_id      uuid NOT NULL REFERENCES audit_findings (id),
      PRIMARY KEY (decommission_id, finding_id)
    );

    CREATE TABLE decommission_targets (
      decommission_id uuid NOT NULL REFERENCES decommissions (id),
      hosting_id      uuid NOT NULL REFERENCES hostings (id),
      platform_id     uuid NOT NULL REFERENCES platforms (id),
      model_id        uuid NOT NULL REFERENCES models (id),
      inherited       boolean NOT NULL,
      confirmed_at    timestamptz,
      created_at      timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (decommission_id, hosting_id)
    );
    CREATE INDEX decommission_targets_platform ON decommission_targets (platform_id);

    -- The ledger -----------------------------------------------------------------------
    -- One row per change to any record, appended in the same transaction as the change.
    CREATE TABLE events (
      seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      stage        text NOT NULL CHECK (stage IN ('prevent', 'detect', 'respond')),
      kind         text NOT NULL CHECK (kind ~ '^[a-z_]+(\\.[a-z_]+)+$'),
      subject_type text NOT NULL,
      subject_id   uuid NOT NULL,
      model_id     uuid,
      platform_id  uuid,
      actor_id     uuid,
      occurred_at  timestamptz NOT NULL,
      recorded_at  timestamptz NOT NULL DEFAULT now(),
      payload      jsonb NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_model ON events (model_id, seq) WHERE model_id IS NOT NULL;
    CREATE INDEX events_platform ON events (platform_id, seq) WHERE platform_id IS NOT NULL;
    CREATE INDEX events_subject ON events (subject_id, seq);
    CREATE INDEX events_recorded ON events (recorded_at);

    CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      RAISE EXCEPTION 'the event ledger is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END
    $fn$;
    CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
      FOR EACH ROW EXECUTE FUNCTION events_append_only();
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
      FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE events;
    DROP FUNCTION events_append_only();
    DROP TABLE decommission_targets, decommission_findings, decommission_incidents, decommissions,
               decommission_policies;
    DROP TABLE audit_artefacts, audit_evaluations, audit_findings, audit_models, audits, audit_grants;
    DROP TABLE reporter_contacts, incident_hostings, incident_models, incidents;
    DROP TABLE hostings, models, api_keys, principals, platforms;
    DROP FUNCTION uuid7();
    """)
