-- TimescaleDB present (either license): retention drops whole chunks, which only a hypertable's
-- owner may do. The application role runs the retention job, so it gets this one narrow door:
-- a SECURITY DEFINER function that drops chunks older than a number of days from the listed
-- time-series relations only, and only in the explicit platform scope.
CREATE FUNCTION optria_drop_chunks(relation text, keep_days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    dropped integer;
BEGIN
    IF coalesce(current_setting('optria.platform', true), '') = '' THEN
        RAISE EXCEPTION 'optria_drop_chunks runs only in the platform scope' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF relation NOT IN ('signal_samples', 'ingest_health_history', 'signal_1m_cagg', 'signal_1h_cagg') THEN
        RAISE EXCEPTION 'optria_drop_chunks: % is not a retention-managed relation', relation
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF keep_days IS NULL OR keep_days < 1 THEN
        RAISE EXCEPTION 'optria_drop_chunks: keep_days must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_regclass(relation) IS NULL THEN
        RETURN 0;  -- e.g. the aggregates in the Apache-only tier
    END IF;
    SELECT count(*) INTO dropped
    FROM drop_chunks(relation::regclass, older_than => now() - make_interval(days => keep_days));
    RETURN dropped;
END $$;
REVOKE ALL ON FUNCTION optria_drop_chunks(text, integer) FROM PUBLIC;
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'optria_app') THEN
        GRANT EXECUTE ON FUNCTION optria_drop_chunks(text, integer) TO optria_app;
    END IF;
END $$;
