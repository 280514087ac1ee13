-- signal_1m and signal_1h over the continuous aggregates read the tenant scope once per statement
-- (see migration 0017: their test ran for every raw sample of the aggregates' real-time part).
SELECT optria_scope_views();
