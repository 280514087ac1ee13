-- TimescaleDB community (TSL) license: late rows reach the aggregates, and retention follows
-- retention_settings instead of days fixed here.
--
-- A refresh policy only looks inside its window, so rows written hours or days late (HistoryRead
-- or PI recorded backfill after an outage, spool replay, a historian import) stayed out of
-- signal_1m / signal_1h. TimescaleDB logs every such write as an invalidation; a window open at
-- the start (start_offset NULL) lets each run re-materialize exactly the invalidated buckets,
-- however old, so the cost follows what changed, not the window.
--
-- Retention of samples, health history and both aggregates is done by the retention job
-- (optria.timeseries.retention) through optria_drop_chunks, with the days of retention_settings;
-- the fixed policies go. The compression delay follows retention_settings.compress_after_days
-- through optria_set_compression_after, which the same job calls when the setting changes.
SELECT remove_continuous_aggregate_policy('signal_1m_agg', if_exists => true);
SELECT remove_continuous_aggregate_policy('signal_1h_agg', if_exists => true);
SELECT add_continuous_aggregate_policy('signal_1m_agg', start_offset => NULL, end_offset => INTERVAL '1 minute',
                                       schedule_interval => INTERVAL '1 minute');
SELECT add_continuous_aggregate_policy('signal_1h_agg', start_offset => NULL, end_offset => INTERVAL '1 hour',
                                       schedule_interval => INTERVAL '5 minutes');
SELECT remove_retention_policy('signal_samples', if_exists => true);
SELECT remove_retention_policy('ingest_health_history', if_exists => true);

CREATE FUNCTION optria_set_compression_after(days integer) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    job integer;
    current interval;
BEGIN
    IF coalesce(current_setting('optria.platform', true), '') = '' THEN
        RAISE EXCEPTION 'optria_set_compression_after runs only in the platform scope' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT j.job_id, (j.config ->> 'compress_after')::interval INTO job, current
    FROM timescaledb_information.jobs j
    WHERE j.hypertable_name = 'signal_samples' AND j.proc_name = 'policy_compression';
    IF days IS NULL THEN
        IF job IS NOT NULL THEN
            PERFORM remove_compression_policy('signal_samples', if_exists => true);
            RETURN true;
        END IF;
        RETURN false;
    END IF;
    IF days < 1 THEN
        RAISE EXCEPTION 'compress_after_days must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF job IS NOT NULL AND current = make_interval(days => days) THEN
        RETURN false;
    END IF;
    PERFORM remove_compression_policy('signal_samples', if_exists => true);
    PERFORM add_compression_policy('signal_samples', make_interval(days => days));
    RETURN true;
END $$;
REVOKE ALL ON FUNCTION optria_set_compression_after(integer) FROM PUBLIC;
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'optria_app') THEN
        GRANT EXECUTE ON FUNCTION optria_set_compression_after(integer) TO optria_app;
    END IF;
END $$;
