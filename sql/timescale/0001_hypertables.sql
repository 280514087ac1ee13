-- TimescaleDB present (either license): samples and health history become hypertables.
SELECT create_hypertable('signal_samples', by_range('time', INTERVAL '1 day'), migrate_data => true);
SELECT create_hypertable('ingest_health_history', by_range('time', INTERVAL '1 day'), migrate_data => true);
