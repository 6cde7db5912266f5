"""Tamper evidence: Merkle leaves and signed checkpoints of the ledger; events of many models.

The sealer appends each committed event, in sequence order, as one leaf of an RFC 9162
Merkle tree. ``ledger_nodes`` keeps the hash of every complete subtree so that roots and
proofs for any tree size need only a logarithmic number of lookups. The sealed tables are
append-only, like the ledger itself.

An event names one model in ``events.model_id``; one about several (an incident or an audit
of several models) lists them all in ``payload.model_ids`` or ``payload.state.model_ids``.
``event_models`` indexes those others, so each model's history finds the event too.

Revision ID: 0004_ledger_seal
Revises: 0003_detect
Create Date: 2026-11-27
"""

from service.db.migrate import run_script

revision = "0004_ledger_seal"
down_revision = "0003_detect"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    CREATE TABLE ledger_leaves (
      leaf_index bigint PRIMARY KEY CHECK (leaf_index >= 0),
      seq        bigint NOT NULL UNIQUE REFERENCES events (seq),
      leaf_hash  bytea NOT NULL CHECK (length(leaf_hash) = 32)
    );

    -- Node (level, idx) covers leaves [idx * 2^level, (idx + 1) * 2^level).
    CREATE TABLE ledger_nodes (
      level smallint NOT NULL CHECK (level BETWEEN 1 AND 62),
      idx   bigint NOT NULL CHECK (idx >= 0),
      hash  bytea NOT NULL CHECK (length(hash) = 32),
      PRIMARY KEY (level, idx)
    );

    CREATE TABLE ledger_checkpoints (
      tree_size  bigint PRIMARY KEY CHECK (tree_size > 0),
      root_hash  bytea NOT NULL CHECK (length(root_hash) = 32),
      last_seq   bigint NOT NULL,
      note       text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE event_models (
      model_id uuid NOT NULL,
      seq      bigint NOT NULL REFERENCES events (seq),
      PRIMARY KEY (model_id, seq)
    );

    CREATE FUNCTION event_models_index() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      INSERT INTO event_models (model_id, seq)
      SELECT DISTINCT m::uuid, NEW.seq
      FROM (
        SELECT jsonb_array_elements_text(NEW.payload -> 'model_ids') AS m
        WHERE jsonb_typeof(NEW.payload -> 'model_ids') = 'array'
        UNION ALL
        SELECT jsonb_array_elements_text(NEW.payload -> 'state' -> 'model_ids')
        WHERE jsonb_typeof(NEW.payload -> 'state' -> 'model_ids') = 'array'
      ) ids
      WHERE m ~ '^[0-9a-fA-F-]{36}$' AND m::uuid IS DISTINCT FROM NEW.model_id
      ON CONFLICT DO NOTHING;
      RETURN NULL;
    END
    $fn$;
    -- Most events name one model: the WHEN clause spares them the call.
    CREATE TRIGGER events_index_models AFTER INSERT ON events
      FOR EACH ROW
      WHEN (NEW.payload ? 'model_ids' OR (NEW.payload -> 'state') ? 'model_ids')
      EXECUTE FUNCTION event_models_index();

    INSERT INTO event_models (model_id, seq)
    SELECT DISTINCT m::uuid, e.seq
    FROM events e
    CROSS JOIN LATERAL (
      SELECT jsonb_array_elements_text(e.payload -> 'model_ids') AS m
      WHERE jsonb_typeof(e.payload -> 'model_ids') = 'array'
      UNION ALL
      SELECT jsonb_array_elements_text(e.payload -> 'state' -> 'model_ids')
      WHERE jsonb_typeof(e.payload -> 'state' -> 'model_ids') = 'array'
    ) ids
    WHERE m ~ '^[0-9a-fA-F-]{36}$' AND m::uuid IS DISTINCT FROM e.model_id;

    CREATE TRIGGER ledger_leaves_no_update_delete BEFORE UPDATE OR DELETE ON ledger_leaves
      FOR EACH ROW EXECUTE FUNCTION events_append_only();
    CREATE TRIGGER ledger_leaves_no_truncate BEFORE TRUNCATE ON ledger_leaves
      FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
    CREATE TRIGGER ledger_nodes_no_update_delete BEFORE UPDATE OR DELETE ON ledger_nodes
      FOR EACH ROW EXECUTE FUNCTION events_append_only();
    CREATE TRIGGER ledger_nodes_no_truncate BEFORE TRUNCATE ON ledger_nodes
      FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
    CREATE TRIGGER ledger_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON ledger_checkpoints
      FOR EACH ROW EXECUTE FUNCTION events_append_only();
    CREATE TRIGGER ledger_checkpoints_no_truncate BEFORE TRUNCATE ON ledger_checkpoints
      FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
    """)


def downgrade() -> None:
    run_script("""
    DROP TRIGGER events_index_models ON events;
    DROP FUNCTION event_models_index();
    DROP TABLE event_models;
    DROP TABLE ledger_checkpoints;
    DROP TABLE ledger_nodes;
    DROP TABLE ledger_leaves;
    """)
