"""Retention deletes only what is older than the configured days; trend helpers read the rollups."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ingest.samples import GOOD, Sample
from ingest.writer import Writer
from optria.db import Database
from optria.timeseries import store
from optria.timeseries.retention import RetentionJob
from tests.fix_db import platform_rows, refresh_aggregates
from tests.fix_ingest import arrange_integration


async def test_retention_and_trends(db_dsn, owner_conn, db: Database, storage_tier: str) -> None:
    arranged = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=R1"])
    sid = arranged.signals["ns=2;s=R1"]
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    old = [Sample(arranged.tenant_id, sid, now - timedelta(days=40, minutes=k), 1.0, GOOD) for k in range(10)]
    recent = [Sample(arranged.tenant_id, sid, now - timedelta(minutes=k), float(k), GOOD) for k in range(1, 31)]
    owner_conn.execute("UPDATE retention_settings SET samples_days = NULL, rollup_1m_days = NULL")  # keep all, for now
    w = Writer(db_dsn)
    await w.write_batch(old + recent)
    await w.stop()
    refresh_aggregates(owner_conn)
    owner_conn.execute("UPDATE retention_settings SET samples_days = 30, rollup_1m_days = 30")
    job = RetentionJob(db, batch=3)
    assert await job.run_once() >= 1
    assert job.interval_s == job.base_interval_s      # caught up within its budget
    assert await RetentionJob(db).run_once() == 0     # nothing left past the cut-off
    assert platform_rows(owner_conn, "SELECT count(*) FROM signal_samples_tenant")[0][0] == 30
    assert platform_rows(owner_conn, "SELECT count(*) FROM signal_1m WHERE bucket < now() - interval '30 days'")[0][0] == 0
    hourly = platform_rows(owner_conn, "SELECT sum(n) FROM signal_1h")[0][0]
    assert hourly == 40   # 1 h rollups kept (no limit)
    async with db.tenant(arranged.tenant_id) as conn:
        t = await store.trend(conn, arranged.tenant_id, [sid], hours=1)
        assert len(t[sid]) == 30 and t[sid][0]["bucket"] < t[sid][-1]["bucket"]
        assert t[sid][-1]["avg"] == 1.0
        latest = await store.latest(conn, arranged.tenant_id, [sid])
        assert latest[sid]["value"] == 1.0
    other = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=R2"])
    async with db.tenant(other.tenant_id) as conn:   # another tenant sees nothing of it
        assert (await store.trend(conn, other.tenant_id, [sid], hours=1))[sid] == []
