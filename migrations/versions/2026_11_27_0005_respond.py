"""Respond stage: decommission policies, decisions' lineage targets, endpoints and outbox.

Policies gain what a proposal needs besides the action (derivatives, licence terms, sunset)
and at most one active version per name. Decisions gain the reason for a withdrawal.
Targets gain ``late`` (a hosting recorded after the decision was notified) and the outcome a
platform confirmed. Platforms' notification endpoints each hold their own Standard Webhooks
secret; the outbox keeps every notice until it is delivered or given up on, with one row
per delivery attempt.

Revision ID: 0005_respond
Revises: 0004_ledger_seal
Create Date: 2026-11-27
"""

from service.db.migrate import run_script

revision = "0005_respond"
down_revision = "0004_ledger_seal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    ALTER TABLE decommission_policies
      ADD COLUMN description text NOT NULL DEFAULT '',
      ADD COLUMN include_derivatives boolean NOT NULL DEFAULT false,
      ADD COLUMN new_licence text,
      ADD COLUMN prohibited_uses text[] NOT NULL DEFAULT '{}',
      ADD COLUMN sunset_after_days integer CHECK (sunset_after_days >= 0),
      ADD COLUMN retired_at timestamptz,
      ADD CONSTRAINT decommission_policies_deprecate_sunset
        CHECK (action <> 'deprecate' OR sunset_after_days IS NOT NULL),
      ADD CONSTRAINT decommission_policies_licence
        CHECK (action <> 'licence_change' OR new_licence IS NOT NULL);
    CREATE UNIQUE INDEX decommission_policies_one_active ON decommission_policies (name)
      WHERE active;

    ALTER TABLE decommissions
      ADD COLUMN withdrawn_by uuid REFERENCES principals (id),
      ADD COLUMN withdrawn_reason text;
    CREATE INDEX decommissions_open ON decommissions (status)
      WHERE status IN ('proposed', 'approved', 'notified');
    CREATE INDEX decommissions_policy ON decommissions (policy_id, model_id)
      WHERE policy_id IS NOT NULL;
    CREATE INDEX decommission_incidents_incident ON decommission_incidents (incident_id);

    ALTER TABLE decommission_targets
      ADD COLUMN late boolean NOT NULL DEFAULT false,
      ADD COLUMN outcome text CHECK (outcome IN ('removed', 'restricted'));
    CREATE INDEX decommission_targets_hosting ON decommission_targets (hosting_id);

    CREATE TABLE notification_endpoints (
      id           uuid PRIMARY KEY DEFAULT uuid7(),
      platform_id  uuid NOT NULL REFERENCES platforms (id),
      url          text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
      event_types  text[] NOT NULL CHECK (cardinality(event_types) >= 1),
      description  text NOT NULL DEFAULT '',
      -- The HMAC needs the key itself, so the secret is stored, not a hash of it.
      secret       text NOT NULL CHECK (secret ~ '^whsec_[A-Za-z0-9+/=]{20,200}$'),
      disabled_at  timestamptz,
      disabled_reason text,
      created_by   uuid REFERENCES principals (id),
      created_at   timestamptz NOT NULL DEFAULT now(),
      updated_at   timestamptz NOT NULL DEFAULT now(),
      CHECK ((disabled_at IS NULL) = (disabled_reason IS NULL))
    );
    CREATE INDEX notification_endpoints_platform ON notification_endpoints (platform_id);

    -- Written in the same transaction as the decision change it announces; the delivery
    -- worker claims due rows with FOR UPDATE SKIP LOCKED and marks them in that transaction.
    CREATE TABLE outbox (
      id              uuid PRIMARY KEY DEFAULT uuid7(),
      endpoint_id     uuid NOT NULL REFERENCES notification_endpoints (id),
      platform_id     uuid NOT NULL REFERENCES platforms (id),
      event_type      text NOT NULL,
      decommission_id uuid REFERENCES decommissions (id),
      payload         jsonb NOT NULL,
      status          text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'delivered', 'failed')),
      attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      delivered_at    timestamptz,
      last_status     smallint,
      last_error      text,
      created_at      timestamptz NOT NULL DEFAULT now(),
      updated_at      timestamptz NOT NULL DEFAULT now(),
      CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
    );
    CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
    CREATE INDEX outbox_endpoint ON outbox (endpoint_id, id);
    CREATE INDEX outbox_platform ON outbox (platform_id, id);
    CREATE INDEX outbox_decommission ON outbox (decommission_id) WHERE decommission_id IS NOT NULL;

    CREATE TABLE outbox_attempts (
      id          uuid PRIMARY KEY DEFAULT uuid7(),
      message_id  uuid NOT NULL REFERENCES outbox (id),
      attempt     integer NOT NULL CHECK (attempt >= 1),
      url         text NOT NULL,
      started_at  timestamptz NOT NULL,
      status_code smallint,
      latency_ms  double precision NOT NULL CHECK (latency_ms >= 0),
      error       text,
      retry_at    timestamptz
    );
    CREATE INDEX outbox_attempts_message ON outbox_attempts (message_id, id);
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE outbox_attempts;
    DROP TABLE outbox;
    DROP TABLE notification_endpoints;
    DROP INDEX decommission_targets_hosting;
    ALTER TABLE decommission_targets DROP COLUMN outcome, DROP COLUMN late;
    DROP INDEX decommission_incidents_incident, decommissions_policy, decommissions_open;
    ALTER TABLE decommissions DROP COLUMN withdrawn_reason, DROP COLUMN withdrawn_by;
    DROP INDEX decommission_policies_one_active;
    ALTER TABLE decommission_policies
      DROP CONSTRAINT decommission_policies_licence,
      DROP CONSTRAINT decommission_policies_deprecate_sunset,
      DROP COLUMN retired_at,
      DROP COLUMN sunset_after_days,
      DROP COLUMN prohibited_uses,
      DROP COLUMN new_licence,
      DROP COLUMN include_derivatives,
      DROP COLUMN description;
    """)
