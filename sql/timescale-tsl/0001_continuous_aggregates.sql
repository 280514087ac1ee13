-- optria:no-transaction
-- TimescaleDB community (TSL) license: continuous aggregates with refresh policies, real-time
-- aggregation on, hourly stacked on minutely; compression and retention policies.
CREATE MATERIALIZED VIEW signal_1m WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '1 minute', time) AS bucket, tenant_id, signal_id, count(*)::integer AS n,
           avg(value) AS avg, min(value) AS min, max(value) AS max, last(value, time) AS last
    FROM signal_samples GROUP BY 1, 2, 3 WITH NO DATA;
CREATE MATERIALIZED VIEW signal_1h WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket, tenant_id, signal_id, sum(n)::integer AS n,
           sum(avg * n) / nullif(sum(n), 0) AS avg, min(min) AS min, max(max) AS max, last(last, bucket) AS last
    FROM signal_1m GROUP BY 1, 2, 3 WITH NO DATA;
SELECT add_continuous_aggregate_policy('signal_1m', start_offset => INTERVAL '3 hours', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute');
SELECT add_continuous_aggregate_policy('signal_1h', start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes');
ALTER TABLE signal_samples SET (timescaledb.compress, timescaledb.compress_segmentby = 'tenant_id, signal_id', timescaledb.compress_orderby = 'time');
SELECT add_compression_policy('signal_samples', INTERVAL '7 days');
SELECT add_retention_policy('signal_samples', INTERVAL '30 days');
SELECT add_retention_policy('ingest_health_history', INTERVAL '14 days');
GRANT SELECT ON signal_1m, signal_1h TO optria_app;
