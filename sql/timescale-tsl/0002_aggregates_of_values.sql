-- optria:no-transaction
-- TimescaleDB community (TSL) license: aggregates that mean the same as the other tiers', and
-- that late rows reach.
--
-- 1. The same meaning. signal_1m_agg counted every row in ``n`` (count(*)), rows without a value
--    (bad quality) included, while ``avg`` left them out, so the hourly average weighted by ``n``
--    drifted and ``n`` differed from the rollup tables of the other tiers. signal_1m_cagg and
--    signal_1h_cagg aggregate values only, as the writer's rollups do; signal_1m / signal_1h now
--    read them. The first pair stays (migrations only add) with its refresh policies removed.
-- 2. Late rows. A refresh policy only looks inside its window, so rows written hours or days late
--    (HistoryRead or PI recorded backfill after an outage, spool replay, a historian import) stayed
--    out of the aggregates. TimescaleDB logs every such write as an invalidation; a window open at
--    the start (start_offset NULL) lets each run re-materialize exactly the invalidated buckets,
--    however old, so a run costs what changed, not the window.
-- 3. Retention of samples, health history and the aggregates is done by the retention job
--    (optria.timeseries.retention) through optria_drop_chunks with the days of retention_settings;
--    the fixed-day policies go.
CREATE MATERIALIZED VIEW signal_1m_cagg WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '1 minute', time) AS bucket, tenant_id, signal_id, count(value)::integer AS n,
           avg(value) AS avg, min(value) AS min, max(value) AS max, last(value, time) AS last
    FROM signal_samples WHERE value IS NOT NULL GROUP BY 1, 2, 3 WITH NO DATA;
CREATE MATERIALIZED VIEW signal_1h_cagg WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket, tenant_id, signal_id, sum(n)::integer AS n,
           sum(avg * n) / nullif(sum(n), 0) AS avg, min(min) AS min, max(max) AS max, last(last, bucket) AS last
    FROM signal_1m_cagg GROUP BY 1, 2, 3 WITH NO DATA;
SELECT add_continuous_aggregate_policy('signal_1m_cagg', start_offset => NULL, end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute');
SELECT add_continuous_aggregate_policy('signal_1h_cagg', start_offset => NULL, end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
SELECT remove_continuous_aggregate_policy('signal_1m_agg', if_exists => true);
SELECT remove_continuous_aggregate_policy('signal_1h_agg', if_exists => true);
SELECT remove_retention_policy('signal_samples', if_exists => true);
SELECT remove_retention_policy('ingest_health_history', if_exists => true);
CREATE OR REPLACE VIEW signal_1m WITH (security_barrier = true) AS
    SELECT bucket, tenant_id, signal_id, n, avg, min, max, last FROM signal_1m_cagg WHERE optria_tenant_visible(tenant_id);
CREATE OR REPLACE VIEW signal_1h WITH (security_barrier = true) AS
    SELECT bucket, tenant_id, signal_id, n, avg, min, max, last FROM signal_1h_cagg WHERE optria_tenant_visible(tenant_id);
