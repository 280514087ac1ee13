-- optria:no-transaction
-- TimescaleDB community (TSL) license: continuous aggregates with refresh policies, real-time
-- aggregation on, hourly stacked on minutely; compression and retention policies.
--
-- TimescaleDB refuses continuous aggregates on a hypertable with row security, so in this tier
-- signal_samples keeps its policy but has RLS switched off, and the application role loses
-- direct access to it and to the aggregates (migrations.migrate revokes it after every grant).
-- Tenants read through signal_samples_tenant, signal_1m and signal_1h: security-barrier views
-- whose WHERE clause is the same predicate the RLS policies use (optria_tenant_visible).
ALTER TABLE signal_samples NO FORCE ROW LEVEL SECURITY;
ALTER TABLE signal_samples DISABLE ROW LEVEL SECURITY;
CREATE MATERIALIZED VIEW signal_1m_agg WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '1 minute', time) AS bucket, tenant_id, signal_id, count(*)::integer AS n,
           avg(value) AS avg, min(value) AS min, max(value) AS max, last(value, time) AS last
    FROM signal_samples GROUP BY 1, 2, 3 WITH NO DATA;
CREATE MATERIALIZED VIEW signal_1h_agg WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket, tenant_id, signal_id, sum(n)::integer AS n,
           sum(avg * n) / nullif(sum(n), 0) AS avg, min(min) AS min, max(max) AS max, last(last, bucket) AS last
    FROM signal_1m_agg GROUP BY 1, 2, 3 WITH NO DATA;
SELECT add_continuous_aggregate_policy('signal_1m_agg', start_offset => INTERVAL '3 hours', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute');
SELECT add_continuous_aggregate_policy('signal_1h_agg', start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes');
CREATE VIEW signal_1m WITH (security_barrier = true) AS
    SELECT bucket, tenant_id, signal_id, n, avg, min, max, last FROM signal_1m_agg WHERE optria_tenant_visible(tenant_id);
CREATE VIEW signal_1h WITH (security_barrier = true) AS
    SELECT bucket, tenant_id, signal_id, n, avg, min, max, last FROM signal_1h_agg WHERE optria_tenant_visible(tenant_id);
ALTER TABLE signal_samples SET (timescaledb.compress, timescaledb.compress_segmentby = 'tenant_id, signal_id', timescaledb.compress_orderby = 'time');
SELECT add_compression_policy('signal_samples', INTERVAL '7 days');
SELECT add_retention_policy('signal_samples', INTERVAL '30 days');
SELECT add_retention_policy('ingest_health_history', INTERVAL '14 days');
