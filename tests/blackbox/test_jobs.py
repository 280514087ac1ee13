"""The Black Box jobs as the ingest service runs them: names, intervals, and samples from the real writer
becoming a critical incident within a few seconds of polling."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

from ingest.jobs import default_jobs, run_job_forever
from ingest.samples import GOOD, Sample
from ingest.writer import Writer
from optria.blackbox.jobs import grouping_window, jobs
from optria.db import Database
from tests.blackbox.arrange import rows
from tests.fix_ingest import arrange_integration
from tests.fix_web import make_settings

NAMES = ["blackbox.alerts", "blackbox.work_orders", "blackbox.limits", "blackbox.quality", "blackbox.integrations",
         "blackbox.optimization", "blackbox.grouping"]


class _Settings:
    blackbox_grouping_window_min = 45


async def test_jobs_are_listed_for_the_ingest_service(db: Database) -> None:
    mine = jobs(db, make_settings())
    assert [j.name for j in mine] == NAMES
    assert all(1.0 <= j.interval_s <= 2.0 and asyncio.iscoroutinefunction(j.run_once) for j in mine)
    assert [j.name for j in default_jobs(db, make_settings()) if j.name.startswith("blackbox.")] == NAMES
    assert grouping_window(make_settings()) == timedelta(minutes=30)
    assert grouping_window(_Settings()) == timedelta(minutes=45)
    assert jobs(db, _Settings())[-1].window == timedelta(minutes=45)


async def test_a_breach_written_by_the_ingest_writer_becomes_an_incident(db: Database, db_dsn: str, owner_conn) -> None:
    arranged = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=P-101.Vibration"])
    sid = arranged.signals["ns=2;s=P-101.Vibration"]
    owner_conn.execute("UPDATE external_signal_mappings SET warn_high = 7.1, crit_high = 11 WHERE signal_id = %s", [sid])
    tasks = [asyncio.create_task(run_job_forever(j)) for j in jobs(db, make_settings())]
    writer = Writer(db_dsn)
    try:
        t0 = datetime.now(timezone.utc) - timedelta(seconds=30)
        values = [2.2, 2.3, 6.0, 9.0, 12.5, 14.2, 14.0]   # a bearing fault ramping up
        await writer.write_batch([Sample(arranged.tenant_id, sid, t0 + timedelta(seconds=i), v, GOOD)
                                  for i, v in enumerate(values)])
        started = time.monotonic()
        found: list[tuple] = []
        while time.monotonic() - started < 10 and not found:
            await asyncio.sleep(0.2)
            found = rows(owner_conn, "SELECT title, severity, incident_type FROM incidents WHERE tenant_id = %s",
                         arranged.tenant_id)
        assert found == [("ns=2;s=P-101.Vibration: 12.5 > 11", "critical", "limit_breach")], found
        assert time.monotonic() - started < 5   # picked up within a few seconds
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await writer.stop()
