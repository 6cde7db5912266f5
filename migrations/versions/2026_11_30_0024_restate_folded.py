"""Records moved by the model-name fold carry their new state in the ledger.

``0014_model_names_fold`` folded models whose names differ only in case into the first
seen, and recorded each merge as a ``model.merged`` event; the rows that pointed at a
merged model were moved to the survivor in their tables. Their newest events still carry
the state from before the move, so every record the fold moved read as differing from its
ledger state (the reconciliation pass and ``verify --records`` named them), although
nothing was tampered with.

Each such record now gets one event carrying its state after the fold, its earlier
state with only the moved fields replaced, and ``changes`` saying which:

- a hosting of a merged model: ``hosting.model_merged`` (``model_id``, ``model``);
- a model based on a merged model, or a survivor that took a provider or base model from
  the models merged into it: ``model.merge_restated`` (``base_model_id``,
  ``base_model``, ``provider``);
- a decision on a merged model, or naming one as successor:
  ``decommission.model_merged`` (``model_id``, ``model``, ``successor_model_id``).

No event is changed. A database where nothing was folded gets nothing.

Revision ID: 0024_restate_folded
Revises: 0022_incident_aliases_purls
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0024_restate_folded"
down_revision = "0022_incident_aliases_purls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    DO $restate$
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM events WHERE kind = 'model.merged') THEN
        RETURN;
      END IF;

      CREATE TEMPORARY TABLE fold_merged ON COMMIT DROP AS
        SELECT DISTINCT (payload->>'merged_id')::uuid AS merged_id, subject_id AS keep_id
        FROM events WHERE kind = 'model.merged';

      -- Each record's newest event carrying a state, for the records the fold can have
      -- moved: the survivors, and whatever names a merged model in that state.
      CREATE TEMPORARY TABLE fold_latest ON COMMIT DROP AS
        SELECT DISTINCT ON (subject_type, subject_id)
               subject_type, subject_id, payload->'state' AS state
        FROM events
        WHERE subject_type IN ('hosting', 'model', 'decommission') AND payload ? 'state'
        ORDER BY subject_type, subject_id, seq DESC;
      DELETE FROM fold_latest l
      WHERE NOT (
        (l.state->>'model_id')::uuid IN (SELECT merged_id FROM fold_merged)
        OR (l.state->>'successor_model_id')::uuid IN (SELECT merged_id FROM fold_merged)
        OR (l.state->>'base_model_id')::uuid IN (SELECT merged_id FROM fold_merged)
        OR (l.subject_type = 'model' AND l.subject_id IN (SELECT keep_id FROM fold_merged))
      );

      INSERT INTO events (stage, kind, subject_type, subject_id, model_id, platform_id,
                          occurred_at, payload)
      SELECT 'prevent', 'hosting.model_merged', 'hosting', h.id, h.model_id, h.platform_id,
             now(),
             jsonb_build_object(
               'state', l.state || jsonb_build_object('model_id', h.model_id)
                        || CASE WHEN l.state ? 'model'
                                THEN jsonb_build_object('model', m.name) ELSE '{}' END,
               'changes', jsonb_build_object('model_id', jsonb_build_object(
                 'from', l.state->'model_id', 'to', to_jsonb(h.model_id))),
               'reason', 'model names are case-insensitive')
      FROM fold_latest l
      JOIN hostings h ON h.id = l.subject_id
      JOIN models m ON m.id = h.model_id
      WHERE l.subject_type = 'hosting'
        AND (l.state->>'model_id')::uuid IS DISTINCT FROM h.model_id
      ORDER BY h.id;

      INSERT INTO events (stage, kind, subject_type, subject_id, model_id, occurred_at,
                          payload)
      SELECT 'prevent', 'model.merge_restated', 'model', m.id, m.id, now(),
             jsonb_build_object(
               'state', l.state
                        || jsonb_build_object('base_model_id', m.base_model_id,
                                              'provider', m.provider)
                        || CASE WHEN l.state ? 'base_model'
                                THEN jsonb_build_object('base_model', b.name) ELSE '{}' END,
               'changes',
                 CASE WHEN (l.state->>'base_model_id')::uuid IS DISTINCT FROM m.base_model_id
                      THEN jsonb_build_object('base_model_id', jsonb_build_object(
                        'from', l.state->'base_model_id', 'to', to_jsonb(m.base_model_id)))
                      ELSE '{}' END
                 || CASE WHEN (l.state->>'provider') IS DISTINCT FROM m.provider
                      THEN jsonb_build_object('provider', jsonb_build_object(
                        'from', l.state->'provider', 'to', to_jsonb(m.provider)))
                      ELSE '{}' END,
               'reason', 'model names are case-insensitive')
      FROM fold_latest l
      JOIN models m ON m.id = l.subject_id
      LEFT JOIN models b ON b.id = m.base_model_id
      WHERE l.subject_type = 'model'
        AND ((l.state->>'base_model_id')::uuid IS DISTINCT FROM m.base_model_id
             OR (l.state->>'provider') IS DISTINCT FROM m.provider)
      ORDER BY m.id;

      INSERT INTO events (stage, kind, subject_type, subject_id, model_id, occurred_at,
                          payload)
      SELECT 'respond', 'decommission.model_merged', 'decommission', d.id, d.model_id, now(),
             jsonb_build_object(
               'state', l.state
                        || jsonb_build_object('model_id', d.model_id)
                        || CASE WHEN l.state ? 'successor_model_id'
                                THEN jsonb_build_object('successor_model_id',
                                                        d.successor_model_id)
                                ELSE '{}' END
                        || CASE WHEN l.state ? 'model'
                                THEN jsonb_build_object('model', m.name) ELSE '{}' END,
               'changes',
                 CASE WHEN (l.state->>'model_id')::uuid IS DISTINCT FROM d.model_id
                      THEN jsonb_build_object('model_id', jsonb_build_object(
                        'from', l.state->'model_id', 'to', to_jsonb(d.model_id)))
                      ELSE '{}' END
                 || CASE WHEN l.state ? 'successor_model_id' AND
                           (l.state->>'successor_model_id')::uuid
                             IS DISTINCT FROM d.successor_model_id
                      THEN jsonb_build_object('successor_model_id', jsonb_build_object(
                        'from', l.state->'successor_model_id',
                        'to', to_jsonb(d.successor_model_id)))
                      ELSE '{}' END,
               'reason', 'model names are case-insensitive')
      FROM fold_latest l
      JOIN decommissions d ON d.id = l.subject_id
      JOIN models m ON m.id = d.model_id
      WHERE l.subject_type = 'decommission'
        AND ((l.state->>'model_id')::uuid IS DISTINCT FROM d.model_id
             OR (l.state ? 'successor_model_id' AND
                 (l.state->>'successor_model_id')::uuid IS DISTINCT FROM d.successor_model_id))
      ORDER BY d.id;
    END
    $restate$;
    """)


def downgrade() -> None:
    # The events stay: the ledger is append-only, and they say what is still true.
    pass
