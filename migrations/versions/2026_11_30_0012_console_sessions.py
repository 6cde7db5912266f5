"""Console sessions: a person signed in to the web console with an API key.

Only the SHA-256 of the session cookie is stored, beside the key it was opened with and
the form token (CSRF) of the session. Any replica serves any session. A session ends at
sign-out, after its idle timeout, or when its key is revoked (the lookup joins the key
and ignores revoked ones; deleting a key deletes its sessions).

Revision ID: 0012_console_sessions
Revises: 0011_renames
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0012_console_sessions"
down_revision = "0011_renames"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    CREATE TABLE console_sessions (
      token_hash    bytea PRIMARY KEY CHECK (length(token_hash) = 32),
      key_id        uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
      csrf_token    text NOT NULL CHECK (length(csrf_token) >= 32),
      created_at    timestamptz NOT NULL DEFAULT now(),
      last_seen_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX console_sessions_key ON console_sessions (key_id);
    CREATE INDEX console_sessions_last_seen ON console_sessions (last_seen_at);
    """)


def downgrade() -> None:
    run_script("""
    DROP TABLE console_sessions;
    """)
