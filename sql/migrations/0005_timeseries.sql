-- Time series: raw samples, 1-minute and 1-hour rollups, latest value per signal, and the
-- ingest service's leases and health. Readers use signal_samples, signal_1m, signal_1h and
-- signal_latest, which have the same columns in every storage tier.
--
-- Quality codes (smallint): 0 good, 1 questionable, 2 substituted, 3 bad, 4 stale (source lost).
-- signal_samples has no foreign key to signals: the writer validates signal ids itself and a
-- per-row FK check would halve ingest throughput.

CREATE TABLE signal_samples (
    tenant_id uuid NOT NULL,
    signal_id bigint NOT NULL,
    time timestamptz NOT NULL,
    value double precision,
    quality smallint NOT NULL DEFAULT 0,
    ingest_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, signal_id, time)
);
CREATE INDEX signal_samples_time_brin ON signal_samples USING brin (time) WITH (pages_per_range = 32);
ALTER TABLE signal_samples ENABLE ROW LEVEL SECURITY;
ALTER TABLE signal_samples FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON signal_samples USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Rollups maintained by the writer in the postgres and timescale-apache tiers (exact under
-- replays: the writer folds in only rows its INSERT actually added). avg = sum / n.
CREATE TABLE signal_1m_rollup (
    tenant_id uuid NOT NULL,
    signal_id bigint NOT NULL,
    bucket timestamptz NOT NULL,
    n integer NOT NULL,
    sum double precision NOT NULL,
    min double precision,
    max double precision,
    last double precision,
    last_time timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, signal_id, bucket)
);
CREATE TABLE signal_1h_rollup (
    tenant_id uuid NOT NULL,
    signal_id bigint NOT NULL,
    bucket timestamptz NOT NULL,
    n integer NOT NULL,
    sum double precision NOT NULL,
    min double precision,
    max double precision,
    last double precision,
    last_time timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, signal_id, bucket)
);
ALTER TABLE signal_1m_rollup ENABLE ROW LEVEL SECURITY;
ALTER TABLE signal_1m_rollup FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON signal_1m_rollup USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));
ALTER TABLE signal_1h_rollup ENABLE ROW LEVEL SECURITY;
ALTER TABLE signal_1h_rollup FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON signal_1h_rollup USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- In the timescale tier signal_1m / signal_1h are continuous aggregates (sql/timescale-tsl/);
-- elsewhere they are views over the rollup tables. security_invoker keeps RLS in force.
DO $$
BEGIN
    IF (SELECT tier FROM storage_capabilities) IS DISTINCT FROM 'timescale' THEN
        EXECUTE $v$CREATE VIEW signal_1m WITH (security_invoker = true) AS
            SELECT bucket, tenant_id, signal_id, n, sum / n AS avg, min, max, last
            FROM signal_1m_rollup$v$;
        EXECUTE $v$CREATE VIEW signal_1h WITH (security_invoker = true) AS
            SELECT bucket, tenant_id, signal_id, n, sum / n AS avg, min, max, last
            FROM signal_1h_rollup$v$;
    END IF;
END $$;

-- Raw samples as tenants read them: the tenant predicate is in the view (it runs with its owner's rights),
-- so it holds in every tier, including the timescale tier where the hypertable has no RLS and the
-- app role may not read it directly (see sql/timescale-tsl/).
CREATE VIEW signal_samples_tenant WITH (security_barrier = true) AS
    SELECT tenant_id, signal_id, time, value, quality, ingest_time FROM signal_samples
    WHERE optria_tenant_visible(tenant_id);

CREATE TABLE signal_latest (
    tenant_id uuid NOT NULL,
    signal_id bigint NOT NULL,
    time timestamptz NOT NULL,
    value double precision,
    quality smallint NOT NULL DEFAULT 0,
    ingest_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, signal_id),
    FOREIGN KEY (tenant_id, signal_id) REFERENCES signals (tenant_id, id)
);
ALTER TABLE signal_latest ENABLE ROW LEVEL SECURITY;
ALTER TABLE signal_latest FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON signal_latest USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- One lease per integration: the ingest process holding it runs the worker; an expired lease
-- is taken over by another process.
CREATE TABLE ingest_leases (
    tenant_id uuid NOT NULL,
    integration_id bigint NOT NULL,
    worker_id text NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, integration_id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
ALTER TABLE ingest_leases ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_leases FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ingest_leases USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

CREATE TABLE ingest_health (
    tenant_id uuid NOT NULL,
    integration_id bigint NOT NULL,
    worker_id text,
    state text NOT NULL DEFAULT 'stopped',     -- starting | connecting | streaming | backfilling | reconnecting | error | stopped
    connected boolean NOT NULL DEFAULT false,
    samples_per_s double precision NOT NULL DEFAULT 0,
    samples_total bigint NOT NULL DEFAULT 0,
    rejected_total bigint NOT NULL DEFAULT 0,
    reconnects integer NOT NULL DEFAULT 0,
    lag_p50_ms double precision,
    lag_p99_ms double precision,
    queue_depth integer NOT NULL DEFAULT 0,
    spool_bytes bigint NOT NULL DEFAULT 0,
    last_error text,
    last_error_at timestamptz,
    last_sample_time timestamptz,
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, integration_id),
    FOREIGN KEY (tenant_id, integration_id) REFERENCES integrations (tenant_id, id)
);
ALTER TABLE ingest_health ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_health FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ingest_health USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

CREATE TABLE ingest_health_history (
    tenant_id uuid NOT NULL,
    integration_id bigint NOT NULL,
    time timestamptz NOT NULL,
    state text NOT NULL,
    connected boolean NOT NULL,
    samples_per_s double precision NOT NULL,
    lag_p50_ms double precision,
    lag_p99_ms double precision,
    queue_depth integer NOT NULL,
    spool_bytes bigint NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, time)
);
CREATE INDEX ingest_health_history_time ON ingest_health_history USING brin (time);
ALTER TABLE ingest_health_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_health_history FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ingest_health_history USING (optria_tenant_visible(tenant_id)) WITH CHECK (optria_tenant_visible(tenant_id));

-- Per-tier retention (days; null keeps forever), applied by the ingest maintenance job or by
-- TimescaleDB policies.
CREATE TABLE retention_settings (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    samples_days integer DEFAULT 30 CHECK (samples_days IS NULL OR samples_days > 0),
    rollup_1m_days integer DEFAULT 180 CHECK (rollup_1m_days IS NULL OR rollup_1m_days > 0),
    rollup_1h_days integer CHECK (rollup_1h_days IS NULL OR rollup_1h_days > 0),
    health_history_days integer DEFAULT 14 CHECK (health_history_days IS NULL OR health_history_days > 0),
    compress_after_days integer DEFAULT 7 CHECK (compress_after_days IS NULL OR compress_after_days > 0)
);
INSERT INTO retention_settings DEFAULT VALUES;
