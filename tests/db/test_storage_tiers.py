"""The storage tier of this run (OPTRIA_TEST_TIER): what it is made of, and that it behaves as the others.

Every test runs in every tier and asserts what that tier must hold — never skipped:
the tier detected; hypertables, aggregates and policies as designed; rows written hours and
days late present in ``signal_1m`` and ``signal_1h`` after one refresh cycle; the application
role, naming every chunk and internal table directly, reading and writing nothing of another
tenant; retention following ``retention_settings``; limit events raised from stored rows.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql

from ingest.samples import BAD, GOOD, Sample
from ingest.writer import BACKFILL, Writer
from optria.blackbox.collectors import LimitCollector
from optria.db import Database
from optria.timeseries.retention import RetentionJob
from tests.blackbox.arrange import add_signal, make_plant
from tests.fix_db import platform_rows
from tests.fix_ingest import arrange_integration

HYPERTABLES = {"signal_samples", "ingest_health_history", "industrial_events", "asset_metrics_snapshot"}
CAGGS = {"signal_1m_cagg", "signal_1h_cagg"}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def run_refresh_cycle(conn: psycopg.Connection) -> None:
    """One cycle of the `timescale` tier's refresh policies, as the scheduler runs them (no-op elsewhere)."""
    jobs = conn.execute("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = "
                        "'policy_refresh_continuous_aggregate' ORDER BY hypertable_name DESC").fetchall() \
        if _tier(conn) == "timescale" else []
    for (job_id,) in jobs:   # signal_1m_cagg before signal_1h_cagg (built on it)
        conn.execute("CALL run_job(%s)", [job_id])


def _tier(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT tier FROM storage_capabilities").fetchone()[0]


def test_the_tier_is_detected_and_built_as_designed(owner_conn, storage_tier: str) -> None:
    tier, version, license_ = owner_conn.execute(
        "SELECT tier, timescaledb_version, license FROM storage_capabilities").fetchone()
    assert tier == storage_tier
    if storage_tier == "postgres":
        assert version is None
        assert owner_conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone()[0] == 0
        kinds = dict(owner_conn.execute("SELECT relname, relkind FROM pg_class WHERE relname = ANY(%s)",
                                        [["signal_1m", "signal_1h", "signal_1m_rollup", "signal_1h_rollup"]]).fetchall())
        assert kinds == {"signal_1m": "v", "signal_1h": "v", "signal_1m_rollup": "r", "signal_1h_rollup": "r"}
        return
    assert version == "2.29.2"
    assert license_ == ("timescale" if storage_tier == "timescale" else "apache")
    hypertables = {r[0] for r in owner_conn.execute(
        "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public'")}
    assert hypertables == HYPERTABLES
    caggs = dict(owner_conn.execute("SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"))
    jobs = owner_conn.execute("SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs "
                              "WHERE hypertable_schema = 'public'").fetchall()
    if storage_tier == "timescale-apache":
        assert caggs == {} and jobs == []                 # no TSL features: the writer keeps rollups
        return
    assert {k: v for k, v in caggs.items() if k in CAGGS} == {"signal_1m_cagg": False, "signal_1h_cagg": False}
    refresh = {r[1]: r[2] for r in jobs if r[0] == "policy_refresh_continuous_aggregate"}
    assert set(refresh) == CAGGS                          # the first pair of aggregates is no longer refreshed
    assert all(cfg["start_offset"] is None for cfg in refresh.values())   # late rows of any age
    assert refresh["signal_1m_cagg"]["end_offset"] == "00:00:10"       # a short real-time stretch for readers
    schedule = dict(owner_conn.execute("SELECT hypertable_name, schedule_interval FROM timescaledb_information.jobs "
                                       "WHERE proc_name = 'policy_refresh_continuous_aggregate'").fetchall())
    assert schedule["signal_1m_cagg"] == timedelta(seconds=15)
    assert [r[1] for r in jobs if r[0] == "policy_compression"] == ["signal_samples"]
    assert [r for r in jobs if r[0] == "policy_retention"] == []         # retention follows the settings
    views = dict(owner_conn.execute("SELECT viewname, definition FROM pg_views WHERE viewname IN ('signal_1m', 'signal_1h')"))
    assert "signal_1m_cagg" in views["signal_1m"] and "signal_1h_cagg" in views["signal_1h"]


async def test_rows_hours_and_days_late_reach_both_aggregates(db_dsn, owner_conn, storage_tier: str) -> None:
    arranged = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=L1"])
    sid = arranged.signals["ns=2;s=L1"]
    now = _now().replace(second=0)
    live = [Sample(arranged.tenant_id, sid, now - timedelta(seconds=10 * k), 1.0, GOOD) for k in range(1, 13)]
    five_h = now - timedelta(hours=5)
    eight_d = now - timedelta(days=8)
    w = Writer(db_dsn)
    await w.write_batch(live)
    await w.write_batch([Sample(arranged.tenant_id, sid, eight_d + timedelta(seconds=1), 4.0, GOOD)], BACKFILL)
    run_refresh_cycle(owner_conn)                        # the aggregates are materialized up to now
    if storage_tier == "timescale":                      # and the 8-day-old chunk is compressed, as the policy would
        chunks = owner_conn.execute("SELECT show_chunks('signal_samples', older_than => now() - interval '7 days')").fetchall()
        assert chunks
        for (chunk,) in chunks:
            owner_conn.execute("SELECT compress_chunk(%s)", [chunk])
    late = [Sample(arranged.tenant_id, sid, five_h + timedelta(seconds=5 * k), float(k), GOOD) for k in range(60)]
    older = [Sample(arranged.tenant_id, sid, eight_d + timedelta(seconds=2 + 5 * k), 2.0, GOOD) for k in range(10)]
    assert await w.write_batch(late + older, BACKFILL) == 70
    assert await w.write_batch(late[:5] + older[:5], BACKFILL) == 0    # a replay changes nothing, compressed or not
    await w.stop()
    run_refresh_cycle(owner_conn)                        # one cycle after the late rows committed
    for view, bucket in (("signal_1m", "minute"), ("signal_1h", "hour")):
        rows = {r[0]: r[1:] for r in platform_rows(
            owner_conn, sql.SQL("SELECT bucket, n, avg, min, max FROM {} WHERE signal_id = %s").format(sql.Identifier(view)),
            [sid])}
        five = [v for b, v in rows.items() if five_h - timedelta(hours=1) <= b <= five_h + timedelta(minutes=6)]
        assert sum(v[0] for v in five) == 60, f"{view}: 5 h late rows"
        assert math.isclose(sum(v[0] * v[1] for v in five), sum(range(60)))
        eight = [v for b, v in rows.items() if abs((b - eight_d).total_seconds()) < 3600]
        assert sum(v[0] for v in eight) == 11, f"{view}: 8 days late rows"
        assert min(v[2] for v in eight) == 2.0 and max(v[3] for v in eight) == 4.0
        assert sum(v[0] for v in rows.values()) == 12 + 60 + 11, bucket


async def test_bad_rows_count_in_no_aggregate(db_dsn, owner_conn) -> None:
    """``n`` counts values in every tier (rows without a value, bad quality, are left out)."""
    arranged = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=Q1"])
    sid = arranged.signals["ns=2;s=Q1"]
    t = _now().replace(second=0) - timedelta(minutes=3)
    w = Writer(db_dsn)
    await w.write_batch([Sample(arranged.tenant_id, sid, t, 4.0, GOOD),
                         Sample(arranged.tenant_id, sid, t + timedelta(seconds=1), None, BAD),
                         Sample(arranged.tenant_id, sid, t + timedelta(seconds=2), 6.0, GOOD)])
    await w.stop()
    run_refresh_cycle(owner_conn)
    for view in ("signal_1m", "signal_1h"):
        n, avg, last = platform_rows(owner_conn, sql.SQL("SELECT n, avg, last FROM {} WHERE signal_id = %s")
                                     .format(sql.Identifier(view)), [sid])[0]
        assert (n, avg, last) == (2, 5.0, 6.0), view


def _arrange_two_tenants(conn: psycopg.Connection):
    """Rows of two tenants in every hypertable (samples, health history, events, health snapshots)."""
    out = []
    for tag in ("A", "B"):
        arranged = arrange_integration(conn, "opcua", {}, [f"ns=2;s=C{tag}"])
        sid = arranged.signals[f"ns=2;s=C{tag}"]
        t = _now()
        conn.execute("INSERT INTO signal_samples (tenant_id, signal_id, time, value) "
                     "SELECT %s, %s, %s - make_interval(days => d), d FROM generate_series(0, 9) d",
                     [arranged.tenant_id, sid, t])
        conn.execute("INSERT INTO ingest_health_history (tenant_id, integration_id, time, state, connected, samples_per_s, "
                     "queue_depth, spool_bytes) VALUES (%s, %s, now(), 'streaming', true, 1, 0, 0)",
                     [arranged.tenant_id, arranged.integration_id])
        conn.execute("INSERT INTO industrial_events (tenant_id, event_time, source_system, source_type, source_id, "
                     "severity, event_category, summary) VALUES (%s, now(), 'limits', 'limit_breach', 'x', 'critical', "
                     "'limit', 'x')", [arranged.tenant_id])
        conn.execute("INSERT INTO asset_metrics_snapshot (tenant_id, asset_id, time, status, health_score, "
                     "failure_probability, source) VALUES (%s, %s, now(), 'normal', 90, 0.1, 'rules')",
                     [arranged.tenant_id, arranged.asset_id])
        out.append(arranged)
    return out


async def test_app_role_naming_chunks_and_internal_tables_sees_and_writes_nothing_of_another_tenant(
        owner_conn, db: Database, storage_tier: str) -> None:
    a, b = _arrange_two_tenants(owner_conn)
    if storage_tier == "postgres":
        assert owner_conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone()[0] == 0
        return   # no chunks in this tier: tests/db/test_rls.py covers every table
    run_refresh_cycle(owner_conn)
    if storage_tier == "timescale":   # compressed chunks are internal tables too
        for (chunk,) in owner_conn.execute(
                "SELECT show_chunks('signal_samples', older_than => now() - interval '7 days')").fetchall():
            owner_conn.execute("SELECT compress_chunk(%s)", [chunk])
    # every chunk of every hypertable (internal ones included: aggregates' materializations,
    # compressed data), and every other table in TimescaleDB's data schemas
    relations = {r[0] for r in owner_conn.execute(
        "SELECT c.relid::regclass::text FROM _timescaledb_catalog.chunk c WHERE NOT c.osm_chunk "
        "UNION SELECT format('%I.%I', h.schema_name, h.table_name) FROM _timescaledb_catalog.hypertable h "
        "WHERE h.schema_name <> 'public' "
        "UNION SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
        "WHERE schemaname IN ('_timescaledb_internal', '_timescaledb_functions')").fetchall()}
    chunk_count = owner_conn.execute("SELECT count(*) FROM _timescaledb_catalog.chunk").fetchone()[0]
    assert chunk_count >= 12 and len(relations) >= chunk_count
    # tables holding tenant rows (catalog and job bookkeeping, readable by anyone, hold none)
    tenant_relations = [r[0] for r in owner_conn.execute(
        "SELECT r FROM unnest(%s::text[]) r WHERE EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r::regclass "
        "AND a.attname = 'tenant_id' AND NOT a.attisdropped) ORDER BY 1", [sorted(relations)]).fetchall()]
    assert len(tenant_relations) >= chunk_count
    granted = owner_conn.execute(
        "SELECT r FROM unnest(%s::text[]) r WHERE has_any_column_privilege('optria_app', r::regclass, 'SELECT, INSERT, UPDATE') "
        "OR has_table_privilege('optria_app', r::regclass, 'DELETE, TRUNCATE')", [tenant_relations]).fetchall()
    assert granted == [], f"the app role holds privileges on {granted}"
    foreign_rows, writes = [], []
    for rel in tenant_relations:
        ident = sql.SQL(rel)
        probes = [("read", sql.SQL("SELECT count(*) AS n FROM {} WHERE tenant_id IS DISTINCT FROM %(a)s").format(ident)),
                  ("update", sql.SQL("UPDATE {} SET tenant_id = tenant_id WHERE tenant_id = %(b)s").format(ident)),
                  ("delete", sql.SQL("DELETE FROM {} WHERE tenant_id = %(b)s").format(ident))]
        for what, query in probes:
            try:
                async with db.tenant(a.tenant_id) as conn:
                    cur = await conn.execute(query, {"a": a.tenant_id, "b": b.tenant_id})
                    if what == "read":
                        n = (await cur.fetchone())["n"]
                        if n:
                            foreign_rows.append((rel, n))
                    elif cur.rowcount:
                        writes.append((rel, what, cur.rowcount))
                    raise _Rollback()
            except (_Rollback, psycopg.errors.InsufficientPrivilege):
                pass
    assert foreign_rows == [], f"the app role read another tenant's rows from {foreign_rows}"
    assert writes == [], f"the app role changed another tenant's rows in {writes}"
    async with db.tenant(a.tenant_id) as conn:   # and through the sanctioned views, only its own
        rows = await (await conn.execute("SELECT DISTINCT tenant_id FROM signal_samples_tenant")).fetchall()
        assert {r["tenant_id"] for r in rows} == {a.tenant_id}
        for table in ("industrial_events", "ingest_health_history", "asset_metrics_snapshot"):
            rows = await (await conn.execute(sql.SQL("SELECT DISTINCT tenant_id FROM {}").format(sql.Identifier(table)))).fetchall()
            assert {r["tenant_id"] for r in rows} == {a.tenant_id}, table


class _Rollback(Exception):
    pass


async def test_retention_follows_the_settings(db_dsn, owner_conn, db: Database, storage_tier: str) -> None:
    arranged = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=K1"])
    sid = arranged.signals["ns=2;s=K1"]
    now = _now()
    owner_conn.execute("UPDATE retention_settings SET samples_days = NULL, rollup_1m_days = NULL, rollup_1h_days = NULL, "
                       "health_history_days = NULL")
    w = Writer(db_dsn)
    for days in (1, 5, 12, 20, 40):
        await w.write_batch([Sample(arranged.tenant_id, sid, now - timedelta(days=days, minutes=k), 1.0, GOOD)
                             for k in range(3)], BACKFILL)
    await w.stop()
    owner_conn.execute("INSERT INTO ingest_health_history (tenant_id, integration_id, time, state, connected, "
                       "samples_per_s, queue_depth, spool_bytes) SELECT %s, %s, now() - make_interval(days => d), "
                       "'streaming', true, 1, 0, 0 FROM unnest(ARRAY[1, 10, 30]) d",
                       [arranged.tenant_id, arranged.integration_id])
    run_refresh_cycle(owner_conn)
    owner_conn.execute("UPDATE retention_settings SET samples_days = 10, rollup_1m_days = 15, rollup_1h_days = 30, "
                       "health_history_days = 7, compress_after_days = 3")
    job = RetentionJob(db)
    assert await job.run_once() > 0
    assert await RetentionJob(db).run_once() == 0

    def ages(relation: str, column: str) -> set[int]:
        return {r[0] for r in platform_rows(owner_conn, sql.SQL(
            "SELECT round(extract(epoch FROM now() - {c}) / 86400)::int FROM {r}").format(
            c=sql.Identifier(column), r=sql.Identifier(relation)))}

    def chunk_days(relation: str) -> int:
        """Days one chunk of ``relation`` spans where whole chunks are dropped (0 where rows are deleted)."""
        if storage_tier == "postgres" or (storage_tier == "timescale-apache" and relation.endswith("_rollup")):
            return 0
        name = relation
        if storage_tier == "timescale" and relation in ("signal_1m", "signal_1h"):
            name = owner_conn.execute("SELECT materialization_hypertable_name FROM timescaledb_information.continuous_aggregates "
                                      "WHERE view_name = %s", [relation + "_cagg"]).fetchone()[0]
        interval = owner_conn.execute("SELECT time_interval FROM timescaledb_information.dimensions "
                                      "WHERE hypertable_name = %s", [name]).fetchone()[0]
        return math.ceil(interval.total_seconds() / 86400)

    # rows past the setting go; a tier that drops whole chunks may keep up to one chunk more
    for relation, column, keep, written in (("signal_samples_tenant", "time", 10, {1, 5, 12, 20, 40}),
                                            ("signal_1m", "bucket", 15, {1, 5, 12, 20, 40}),
                                            ("signal_1h", "bucket", 30, {1, 5, 12, 20, 40}),
                                            ("ingest_health_history", "time", 7, {1, 10, 30})):
        slack = chunk_days("signal_samples" if relation == "signal_samples_tenant" else
                           relation.replace("signal_1m", "signal_1m_rollup").replace("signal_1h", "signal_1h_rollup")
                           if storage_tier != "timescale" else relation)
        kept = ages(relation, column)
        assert {d for d in written if d < keep} <= kept, relation
        assert all(d <= keep + slack for d in kept), (relation, kept, slack)
        if slack == 0:
            assert kept == {d for d in written if d < keep}, relation
    if storage_tier == "timescale":
        config = owner_conn.execute("SELECT config FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression' "
                                    "AND hypertable_name = 'signal_samples'").fetchone()[0]
        assert config["compress_after"] == "3 days"


async def test_limit_events_from_live_and_backfilled_rows(db_dsn, owner_conn, db: Database) -> None:
    p = make_plant(owner_conn)
    sid = add_signal(owner_conn, p, p.assets[0], "Vibration", warn_high=7.1, crit_high=11.0)
    now = _now()
    w = Writer(db_dsn)
    await w.write_batch([Sample(p.tenant_id, sid, now - timedelta(seconds=60 - k), 5.0, GOOD) for k in range(30)])
    await w.write_batch([Sample(p.tenant_id, sid, now - timedelta(seconds=10), 12.0, GOOD)])
    assert await LimitCollector(db).run_once() == 31
    # an outage two minutes ago, backfilled after the newer rows: a spike inside it
    gap = [Sample(p.tenant_id, sid, now - timedelta(seconds=120 - k), 14.0 if k == 5 else 5.0, GOOD) for k in range(20)]
    await w.write_batch(gap, BACKFILL)
    await w.stop()
    assert await LimitCollector(db).run_once() == 20
    assert await LimitCollector(db).run_once() == 0
    events = owner_conn.execute("SELECT source_type, event_time, payload->>'value' FROM industrial_events "
                                "WHERE tenant_id = %s AND source_system = 'limits' ORDER BY event_time", [p.tenant_id]).fetchall()
    breaches = [(e[1], float(e[2])) for e in events if e[0] == "limit_breach"]
    assert breaches == [(now - timedelta(seconds=115), 14.0), (now - timedelta(seconds=10), 12.0)]
    assert ("limit_return", now - timedelta(seconds=114)) in [(e[0], e[1]) for e in events]
