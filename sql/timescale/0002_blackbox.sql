-- TimescaleDB present (either license): the Black Box event log becomes a hypertable on event_time.
-- Its primary key (tenant_id, id, event_time) and uniqueness rule (tenant_id, source_system, source_id,
-- event_time) both include the partitioning column, as hypertables require. Seven-day chunks keep a
-- week of one busy tenant's events in memory-sized pieces; pages read the newest chunks.
SELECT create_hypertable('industrial_events', by_range('event_time', INTERVAL '7 days'), migrate_data => true);
