-- TimescaleDB community (TSL) license: the compression delay follows
-- retention_settings.compress_after_days. Only the hypertable's owner may change its policy, so
-- the retention job (run as the application role) calls this narrow SECURITY DEFINER function
-- when the setting changes; it touches nothing but the samples' compression policy.
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
