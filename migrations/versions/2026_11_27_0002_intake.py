"""Webhook intake: signing secrets, deliveries and their log.

Revision ID: 0002_intake
Revises: 0001_foundation
Create Date: 2026-11-27
"""

from service.db.migrate import run_script

revision = "0002_intake"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    -- Standard Webhooks signing secrets, several per platform so a rotation can overlap.
    -- The HMAC needs the key itself, so the secret is stored, not a hash of it.
    CREATE TABLE webhook_secrets (
      id          uuid PRIMARY KEY DEFAULT uuid7(),
      platform_id uuid NOT NULL REFERENCES platforms (id),
      secret      text NOT NULL CHECK (secret ~ '^whsec_[A-Za-z0-9+/=]{20,200}$'),
      created_at  timestamptz NOT NULL DEFAULT now(),
      retired_at  timestamptz
    );
    CREATE INDEX webhook_secrets_active ON webhook_secrets (platform_id) WHERE retired_at IS NULL;

    -- Every accepted delivery, byte for byte, with the ledger events it produced. The
    -- unique delivery id per platform is what makes a redelivery write nothing.
    CREATE TABLE webhook_deliveries (
      id          uuid PRIMARY KEY DEFAULT uuid7(),
      platform_id uuid NOT NULL REFERENCES platforms (id),
      delivery_id text NOT NULL CHECK (length(delivery_id) BETWEEN 1 AND 200),
      source      text NOT NULL CHECK (source IN ('standard', 'huggingface', 'github')),
      event_type  text NOT NULL,
      body_sha256 bytea NOT NULL CHECK (length(body_sha256) = 32),
      body        bytea NOT NULL,
      headers     jsonb NOT NULL,
      events      bigint[] NOT NULL DEFAULT '{}',
      received_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (platform_id, delivery_id)
    );
    CREATE INDEX webhook_deliveries_log ON webhook_deliveries (platform_id, id);

    -- Deliveries that wrote nothing: redeliveries and refusals, with the reason, so a
    -- platform can debug its integration. The body is not kept: it was not trusted.
    CREATE TABLE webhook_rejections (
      id          uuid PRIMARY KEY DEFAULT uuid7(),
      platform_id uuid NOT NULL REFERENCES platforms (id),
      delivery_id text CHECK (length(delivery_id) <= 200),
      source      text NOT NULL CHECK (source IN ('standard', 'huggingface', 'github')),
      outcome     text NOT NULL CHECK (outcome IN ('duplicate', 'rejected')),
      status      smallint NOT NULL,
      reason      text NOT NULL,
      event_type  text CHECK (length(event_type) <= 100),
      received_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX webhook_rejections_log ON webhook_rejections (platform_id, id);
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE webhook_rejections;
    DROP TABLE webhook_deliveries;
    DROP TABLE webhook_secrets;
    """)
