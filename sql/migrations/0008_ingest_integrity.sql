-- Ingest integrity: a commit-ordered log of what the writer stored, per-signal ingest status,
-- error history, and the health figures that tell live data from backfill.

-- One row per tenant per writer transaction: how many rows it stored over which source-time
-- range, stamped with its transaction id. Consumers (the Black Box limit collector) follow it by
-- (xid, id) below the oldest transaction in flight, so each stored row is seen exactly once in
-- commit order, whatever its source time (a backfilled hour arrives after newer live rows).
-- The rows of a batch are the samples in [min_time, max_time] whose ingest_time equals the
-- batch's (the writer stamps one ingest_time per transaction). A batch spanning more than a few
-- minutes of source time (backfill, replay) also lists its signals with their own ranges, so a
-- consumer reads exactly those; a live batch does not (a consumer probes the signals it watches).
CREATE TABLE sample_batches (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ingest_time timestamptz NOT NULL,
    min_time timestamptz NOT NULL,
    max_time timestamptz NOT NULL,
    rows integer NOT NULL,
    signal_ids int8[],
    first_times timestamptz[],
    last_times timestamptz[],
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX sample_batches_commit_order ON sample_batches (xid, id);
CREATE INDEX sample_batches_ingest_time ON sample_batches USING brin (ingest_time);
ALTER TABLE sample_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE sample_batches FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sample_batches USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Per-signal ingest figures: what was rejected and why, the source's last per-item error.
CREATE TABLE ingest_signal_status (
    tenant_id uuid NOT NULL,
    signal_id bigint NOT NULL,
    integration_id bigint NOT NULL,
    rejected_total bigint NOT NULL DEFAULT 0,
    last_reason text,                 -- a code: unknown_signal, not_a_number, source_error, ...
    last_detail text,                 -- the source's own words (e.g. "PI Point not found"), shown escaped
    last_rejected_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, signal_id),
    FOREIGN KEY (tenant_id, signal_id) REFERENCES signals (tenant_id, id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
CREATE INDEX ingest_signal_status_integration ON ingest_signal_status (tenant_id, integration_id);
ALTER TABLE ingest_signal_status ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_signal_status FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ingest_signal_status USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Error episodes of an integration's source: one row from the first failure until the source
-- works again (message = the latest words, occurrences counted). Pages show the open episode
-- (resolved_at IS NULL) as the current error and the closed ones as history.
CREATE TABLE ingest_errors (
    tenant_id uuid NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    integration_id bigint NOT NULL,
    message text NOT NULL,
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    occurrences integer NOT NULL DEFAULT 1,
    resolved_at timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
CREATE INDEX ingest_errors_integration ON ingest_errors (tenant_id, integration_id, first_at DESC);
CREATE UNIQUE INDEX ingest_errors_open ON ingest_errors (tenant_id, integration_id) WHERE resolved_at IS NULL;
ALTER TABLE ingest_errors ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_errors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ingest_errors USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Live lag and backfill reported apart; supervised task restarts.
ALTER TABLE ingest_health ADD COLUMN backfill_rows bigint NOT NULL DEFAULT 0;
ALTER TABLE ingest_health ADD COLUMN backfill_oldest_s double precision;
ALTER TABLE ingest_health ADD COLUMN backfill_at timestamptz;
ALTER TABLE ingest_health ADD COLUMN restarts integer NOT NULL DEFAULT 0;
ALTER TABLE ingest_health ADD COLUMN last_restart_reason text;
ALTER TABLE ingest_health ADD COLUMN last_restart_at timestamptz;

-- Retention walks the rollups by time as it walks the samples.
CREATE INDEX signal_1m_rollup_bucket_brin ON signal_1m_rollup USING brin (bucket);
CREATE INDEX signal_1h_rollup_bucket_brin ON signal_1h_rollup USING brin (bucket);
