"""The `timescale` storage tier: hypertables, continuous aggregates, policies (needs TIMESCALE_DATABASE_URL).

TimescaleDB is not in this machine's package sources; these tests run where
TIMESCALE_DATABASE_URL points at a server with the extension (community license) and are
skipped, saying so, everywhere else. Databases are created without a template because
TimescaleDB's background workers block CREATE DATABASE … TEMPLATE.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql

from ingest.samples import GOOD, Sample
from ingest.writer import Writer
from optria.db import Database
from optria.migrations import migrate
from optria.timeseries import store
from optria.timeseries.retention import RetentionJob
from tests.fix_ingest import arrange_integration

URL = os.environ.get("TIMESCALE_DATABASE_URL")
pytestmark = [pytest.mark.timescale,
              pytest.mark.skipif(not URL, reason="TIMESCALE_DATABASE_URL is not set: no TimescaleDB server to test the "
                                                 "`timescale` tier against (not installable from this machine's packages)")]


@pytest.fixture
def ts_dsn():
    name = f"optria_ts_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(URL, dbname=name)
    yield dsn
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_migrate_detects_timescale_and_builds_the_tier(ts_dsn) -> None:
    result = migrate(ts_dsn)
    assert result["tier"] == "timescale"
    assert "timescale/0001_hypertables" in result["applied"]
    assert "timescale-tsl/0001_continuous_aggregates" in result["applied"]
    with psycopg.connect(ts_dsn) as conn:
        hypertables = {r[0] for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")}
        assert {"signal_samples", "ingest_health_history"} <= hypertables
        caggs = dict(conn.execute("SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"))
        assert caggs == {"signal_1m_agg": False, "signal_1h_agg": False}   # real-time aggregation on
        jobs = {r[0] for r in conn.execute("SELECT proc_name FROM timescaledb_information.jobs")}
        assert {"policy_refresh_continuous_aggregate", "policy_compression", "policy_retention"} <= jobs
    assert migrate(ts_dsn)["applied"] == []      # idempotent there too


async def test_tenant_views_stand_in_for_row_security(ts_dsn) -> None:
    """No RLS on the hypertable in this tier: the app role cannot read it directly, and the
    tenant views show a tenant only its own rows."""
    migrate(ts_dsn)
    with psycopg.connect(ts_dsn, autocommit=True) as conn:
        a = arrange_integration(conn, "opcua", {}, ["ns=2;s=A"])
        b = arrange_integration(conn, "opcua", {}, ["ns=2;s=B"])
    w = Writer(ts_dsn)
    now = datetime.now(timezone.utc)
    await w.write_batch([Sample(a.tenant_id, a.signals["ns=2;s=A"], now, 1.0, GOOD),
                         Sample(b.tenant_id, b.signals["ns=2;s=B"], now, 2.0, GOOD)])
    await w.stop()
    db = Database(ts_dsn)
    await db.open()
    try:
        for view in ("signal_samples_tenant", "signal_1m", "signal_1h"):
            async with db.tenant(a.tenant_id) as conn:
                rows = await (await conn.execute(sql.SQL("SELECT DISTINCT tenant_id FROM {}").format(sql.Identifier(view)))).fetchall()
                assert {r["tenant_id"] for r in rows} == {a.tenant_id}, view
        for table in ("signal_samples", "signal_1m_agg", "signal_1h_agg"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                async with db.tenant(a.tenant_id) as conn:
                    await conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(table)))
    finally:
        await db.close()


async def test_writer_and_readers_on_hypertables(ts_dsn) -> None:
    migrate(ts_dsn)
    with psycopg.connect(ts_dsn, autocommit=True) as conn:
        arranged = arrange_integration(conn, "opcua", {}, ["ns=2;s=T1"])
    sid = arranged.signals["ns=2;s=T1"]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = [Sample(arranged.tenant_id, sid, now - timedelta(seconds=10 * k), float(k), GOOD) for k in range(1, 61)]
    w = Writer(ts_dsn)
    assert await w.write_batch(rows) == 60
    assert await w.write_batch(rows[:10]) == 0         # replays never duplicate on a hypertable either
    assert w.maintain_rollups is False                  # continuous aggregates do the rollups here
    await w.stop()
    db = Database(ts_dsn)
    await db.open()
    try:
        async with db.tenant(arranged.tenant_id) as conn:
            # nothing materialized yet: real-time aggregation still shows the newest minutes
            t = await store.trend(conn, arranged.tenant_id, [sid], hours=1)
            assert sum(b["n"] for b in t[sid]) == 60
            h = await store.trend(conn, arranged.tenant_id, [sid], hours=2, resolution="1h")
            assert sum(b["n"] for b in h[sid]) == 60
            latest = await store.latest(conn, arranged.tenant_id, [sid])
            assert latest[sid]["value"] == 1.0
        other = Database(ts_dsn)
        async with db.tenant(uuid.uuid4()) as conn:     # another tenant sees nothing
            n = (await (await conn.execute("SELECT count(*) AS n FROM signal_samples_tenant")).fetchone())["n"]
            assert n == 0
        assert await RetentionJob(db).run_once() == 0   # policies handle retention in this tier
        del other
    finally:
        await db.close()
