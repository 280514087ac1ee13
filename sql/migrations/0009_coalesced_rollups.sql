-- The writer stores samples per batch but folds latest values and rollups into the database once
-- a second (one upsert per signal and second instead of three per sample and batch). Which commit-log
-- entries are folded into the rollups is recorded here, so a writer that dies before its fold loses
-- nothing: the rollup repair job folds the entries left behind from the stored rows themselves,
-- exactly once (the writer's fold and the repair each claim entries with NOT rolled_up, under row locks).
ALTER TABLE sample_batches ADD COLUMN rolled_up boolean NOT NULL DEFAULT false;
CREATE INDEX sample_batches_not_rolled ON sample_batches (ingest_time) WHERE NOT rolled_up;
-- When the writer's transaction was about to commit (its last statement), for lag measured from outside.
ALTER TABLE sample_batches ADD COLUMN committed_at timestamptz NOT NULL DEFAULT clock_timestamp();
