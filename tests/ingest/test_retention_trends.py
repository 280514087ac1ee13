"""Retention deletes only what is older than the configured days; trend helpers read the rollups."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ingest.samples import GOOD, Sample
from ingest.writer import Writer
from optria.db import Database
from optria.timeseries import store
from optria.timeseries.retention import RetentionJob
from tests.fix_ingest import arrange_integration


async def test_retention_and_trends(db_dsn, owner_conn, db: Database) -> None:
    arranged = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=R1"])
    sid = arranged.signals["ns=2;s=R1"]
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    old = [Sample(arranged.tenant_id, sid, now - timedelta(days=40, minutes=k), 1.0, GOOD) for k in range(10)]
    recent = [Sample(arranged.tenant_id, sid, now - timedelta(minutes=k), float(k), GOOD) for k in range(1, 31)]
    w = Writer(db_dsn)
    await w.write_batch(old + recent)
    await w.stop()
    owner_conn.execute("UPDATE retention_settings SET samples_days = 30, rollup_1m_days = 30")
    removed = await RetentionJob(db, batch=3).run_once()
    assert removed >= 3      # batched: a run removes at most `batch` rows per table
    while await RetentionJob(db, batch=3).run_once():
        pass
    assert owner_conn.execute("SELECT count(*) FROM signal_samples").fetchone()[0] == 30
    assert owner_conn.execute("SELECT count(*) FROM signal_1m_rollup WHERE bucket < now() - interval '30 days'").fetchone()[0] == 0
    assert owner_conn.execute("SELECT sum(n) FROM signal_1h_rollup").fetchone()[0] == 40   # 1 h rollups kept (no limit)
    async with db.tenant(arranged.tenant_id) as conn:
        t = await store.trend(conn, arranged.tenant_id, [sid], hours=1)
        assert len(t[sid]) == 30 and t[sid][0]["bucket"] < t[sid][-1]["bucket"]
        assert t[sid][-1]["avg"] == 1.0
        latest = await store.latest(conn, arranged.tenant_id, [sid])
        assert latest[sid]["value"] == 1.0
    other = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=R2"])
    async with db.tenant(other.tenant_id) as conn:   # another tenant sees nothing of it
        assert (await store.trend(conn, other.tenant_id, [sid], hours=1))[sid] == []
