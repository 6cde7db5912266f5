"""Secrets at rest: webhook signing secrets and endpoint secrets are stored sealed.

The sealed value (AES-256-GCM under a key kept outside the database, see
``service.domain.vault``) goes in a new ``bytea`` column; the plaintext column becomes
nullable and is emptied when a row is sealed. An endpoint's rotated-out secret, which signs
beside the new one during an overlap, gets its own ``previous_secret_sealed`` column the
same way. The key is not available to SQL, so rows that
already exist are sealed by the service: ``serve`` seals them at start-up, and
``risk-registry secrets-key rotate`` does too. Each row holds one or the other.

It also rewords the connection-error text old notice attempts recorded (platforms read
it) to a fixed phrase, as attempts are recorded now.

Downgrading is refused while any row holds only a sealed secret: its plaintext cannot be
restored without the key; the reworded errors stay reworded.

Revision ID: 0013_secrets_at_rest
Revises: 0012_console_sessions
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0013_secrets_at_rest"
down_revision = "0012_console_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    ALTER TABLE webhook_secrets
      ADD COLUMN sealed bytea,
      -- The first characters of the secret, shown so that an operator can tell secrets
      -- apart; kept apart from the secret now that the secret is sealed.
      ADD COLUMN hint text,
      ALTER COLUMN secret DROP NOT NULL;
    UPDATE webhook_secrets SET hint = left(secret, 10);
    ALTER TABLE webhook_secrets
      ALTER COLUMN hint SET NOT NULL,
      ADD CONSTRAINT webhook_secrets_sealed_or_plain
        CHECK ((secret IS NULL) <> (sealed IS NULL));

    ALTER TABLE notification_endpoints
      ADD COLUMN secret_sealed bytea,
      ALTER COLUMN secret DROP NOT NULL,
      ADD CONSTRAINT notification_endpoints_sealed_or_plain
        CHECK ((secret IS NULL) <> (secret_sealed IS NULL)),
      ADD COLUMN previous_secret_sealed bytea,
      -- 0010's unnamed check that a previous secret has an end, now either form.
      DROP CONSTRAINT notification_endpoints_check1,
      ADD CONSTRAINT notification_endpoints_previous_sealed_or_plain
        CHECK (previous_secret IS NULL OR previous_secret_sealed IS NULL),
      ADD CONSTRAINT notification_endpoints_previous_until
        CHECK ((previous_secret IS NULL AND previous_secret_sealed IS NULL)
               = (previous_secret_until IS NULL));

    -- Platforms read their notices' attempts. An attempt that got no HTTP answer used to
    -- record the connection error's own text, which can describe the registry's network;
    -- it now records a fixed phrase, and the old ones are reworded the same way.
    UPDATE outbox_attempts SET error = 'the connection failed'
    WHERE status_code IS NULL AND error IS NOT NULL;
    UPDATE outbox SET last_error = 'the connection failed'
    WHERE last_status IS NULL AND last_error IS NOT NULL;
    """)


def downgrade() -> None:
    run_script("""
    DO $$
    BEGIN
      IF EXISTS (SELECT 1 FROM webhook_secrets WHERE secret IS NULL)
         OR EXISTS (SELECT 1 FROM notification_endpoints
                    WHERE secret IS NULL OR previous_secret_sealed IS NOT NULL) THEN
        RAISE EXCEPTION 'secrets are sealed; their plaintext cannot be restored by SQL';
      END IF;
    END
    $$;
    ALTER TABLE notification_endpoints
      DROP CONSTRAINT notification_endpoints_previous_until,
      DROP CONSTRAINT notification_endpoints_previous_sealed_or_plain,
      DROP COLUMN previous_secret_sealed,
      ADD CONSTRAINT notification_endpoints_check1
        CHECK ((previous_secret IS NULL) = (previous_secret_until IS NULL)),
      DROP CONSTRAINT notification_endpoints_sealed_or_plain,
      DROP COLUMN secret_sealed,
      ALTER COLUMN secret SET NOT NULL;
    ALTER TABLE webhook_secrets
      DROP CONSTRAINT webhook_secrets_sealed_or_plain,
      DROP COLUMN hint,
      DROP COLUMN sealed,
      ALTER COLUMN secret SET NOT NULL;
    """)
