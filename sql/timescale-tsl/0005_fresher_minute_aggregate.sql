-- The 1-minute aggregate materializes a minute 10 seconds after it closes (every 15 s) instead of
-- one minute after it closes (every minute).
--
-- A read of signal_1m aggregates the raw samples past the last materialized minute on the fly
-- (real-time aggregation). With the old policy that stretch was one to three minutes long: at
-- 10 Hz a twin page's sparklines (36 cards x 4 signals) aggregated ~158,000 raw samples, the
-- largest part of the page. It is now the open minute and 10–25 s more. Each minute is still
-- materialized once (rows that arrive later than the 10 s are invalidations, re-materialized by
-- the next run, as before); the runs are four times as frequent and each costs what changed.
SELECT remove_continuous_aggregate_policy('signal_1m_cagg', if_exists => true);
SELECT add_continuous_aggregate_policy('signal_1m_cagg', start_offset => NULL, end_offset => INTERVAL '10 seconds',
                                       schedule_interval => INTERVAL '15 seconds');
