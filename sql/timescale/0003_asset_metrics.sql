-- TimescaleDB present: asset health history becomes a hypertable (its key includes time).
SELECT create_hypertable('asset_metrics_snapshot', by_range('time', INTERVAL '7 days'), migrate_data => true);
