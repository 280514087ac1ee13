"""The twin's scoring job against a real database: only changed assets, stale → nodata, idempotent."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import psycopg

from ingest.jobs import default_jobs
from optria.config import Settings
from optria.db import Database
from optria.twin.jobs import ScoringJob, jobs
from tests.twin_arrange import health_row, heartbeat, map_signals, snapshot_count, write_history, write_values
from tests.web.assets_setup import make_plant


async def _plant(db: Database, owner_conn, tag: str = "J", assets: int = 3, **kw):
    tenant_id = owner_conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, %s) RETURNING id",
                                   [f"job-{tag.lower()}-{datetime.now().microsecond}", tag]).fetchone()[0]
    plant = await make_plant(db, tenant_id, tag=tag, assets=assets)
    ids = list(plant.assets.values())
    mapped = [map_signals(owner_conn, tenant_id, a, ["vibration", "temperature"], **kw) for a in ids]
    return tenant_id, ids, mapped


async def test_jobs_entry_point_is_found_by_the_ingest_service(db: Database) -> None:
    found = [j for j in default_jobs(db, Settings(APP_ENV="test")) if j.name == "twin-scoring"]
    assert len(found) == 1 and found[0].interval_s <= 2
    assert [j.name for j in jobs(db, None)] == ["twin-scoring"]


async def test_first_run_scores_every_mapped_asset_then_only_changed_ones(db: Database, db_dsn: str, owner_conn) -> None:
    tenant_id, ids, mapped = await _plant(db, owner_conn)
    unmapped = (await make_plant(db, tenant_id, tag="Z", assets=1)).assets["Z-P-1"]
    for m in mapped[:2]:
        await write_values(db_dsn, m, {"vibration": 2.2, "temperature": 70.0})
    job = ScoringJob(db, notify=False)
    assert await job.run_once() == 3                 # two with data, one mapped without data yet
    assert health_row(owner_conn, ids[0])["status"] == "normal"
    assert health_row(owner_conn, ids[2])["status"] == "nodata"   # mapped, never received data: not "normal"
    assert health_row(owner_conn, unmapped) is None   # nothing mapped: nothing to score
    before = health_row(owner_conn, ids[1])

    assert await job.run_once() == 0                 # nothing changed: nothing rescored
    await write_values(db_dsn, mapped[0], {"vibration": 2.3})
    assert await job.run_once() == 1                 # only the asset whose signal moved
    assert health_row(owner_conn, ids[1])["updated_at"] == before["updated_at"]
    assert health_row(owner_conn, ids[0])["time"] > before["time"]


async def test_limit_breach_turns_critical_and_notifies_the_tenant(db: Database, db_dsn: str, owner_conn) -> None:
    tenant_id, ids, mapped = await _plant(db, owner_conn, assets=1)
    await write_values(db_dsn, mapped[0], {"vibration": 2.2, "temperature": 70.0})
    job = ScoringJob(db)
    await job.run_once()
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as listener:
        await listener.execute("LISTEN optria_live")
        await write_values(db_dsn, mapped[0], {"vibration": 12.5})
        await job.run_once()
        payloads = []
        async for note in listener.notifies(timeout=2.0):
            payloads.append(json.loads(note.payload))
    row = health_row(owner_conn, ids[0])
    assert row["status"] == "critical" and row["health_score"] <= 40 and row["failure_probability"] >= 0.8
    assert row["contributing"][0]["reason"] == "crit_high" and row["contributing"][0]["value"] == 12.5
    assert {"t": str(tenant_id), "n": 0, "health": 1} in [{k: p[k] for k in ("t", "n", "health") if k in p}
                                                          for p in payloads]


async def test_data_that_stops_turns_nodata_without_new_rows(db: Database, db_dsn: str, owner_conn) -> None:
    _, ids, mapped = await _plant(db, owner_conn, assets=1, interval_s=1)
    sent_at = datetime.now(timezone.utc)
    await write_values(db_dsn, mapped[0], {"vibration": 2.2, "temperature": 70.0}, at=sent_at)
    job = ScoringJob(db, notify=False)
    await job.run_once()
    assert health_row(owner_conn, ids[0])["status"] == "normal"
    await asyncio.sleep(3.3)                          # three expected intervals pass with no data
    assert await job.run_once() == 1
    row = health_row(owner_conn, ids[0])
    assert row["status"] == "nodata" and row["health_score"] is None
    assert abs((row["time"] - (sent_at + timedelta(seconds=3))).total_seconds()) < 0.01  # when it went stale
    statuses = [r[0] for r in owner_conn.execute(
        "SELECT status FROM asset_metrics_snapshot WHERE asset_id = %s ORDER BY time", [ids[0]])]
    assert statuses == ["normal", "nodata"]          # history keeps the normal point and adds the change
    await write_values(db_dsn, mapped[0], {"vibration": 2.2})
    await job.run_once()
    assert health_row(owner_conn, ids[0])["status"] == "warning"   # one signal fresh again, one still missing


async def test_two_processes_and_reruns_write_the_same_rows(db: Database, db_dsn: str, owner_conn) -> None:
    _, ids, mapped = await _plant(db, owner_conn, assets=2)
    for m in mapped:
        await write_values(db_dsn, m, {"vibration": 8.0, "temperature": 70.0})
    a, b = ScoringJob(db, notify=False), ScoringJob(db, notify=False)
    await asyncio.gather(a.run_once(), b.run_once())
    first = [health_row(owner_conn, i) for i in ids]
    counts = [snapshot_count(owner_conn, i) for i in ids]
    assert [r["status"] for r in first] == ["warning", "warning"] and counts == [1, 1]
    restarted = ScoringJob(db, notify=False)        # a restart rescans everything...
    assert await restarted.run_once() == 2
    assert [snapshot_count(owner_conn, i) for i in ids] == counts   # ...and writes nothing new
    assert [health_row(owner_conn, i)["updated_at"] for i in ids] == [r["updated_at"] for r in first]


async def test_drifting_vibration_is_a_warning_with_falling_health(db: Database, db_dsn: str, owner_conn) -> None:
    _, ids, mapped = await _plant(db, owner_conn, assets=1)
    m = mapped[0]
    await write_history(db_dsn, m, "vibration", 2.2, minutes=35, end_ago_s=11 * 60)   # the baseline
    await write_values(db_dsn, m, {"temperature": 70.0})
    job = ScoringJob(db, notify=False)
    probabilities = []
    for level in (2.25, 3.2, 4.5):
        now = datetime.now(timezone.utc)
        for k in range(4):   # the recent level: the last few minutes
            await write_values(db_dsn, m, {"vibration": level}, at=now - timedelta(seconds=60 * k + 1))
        await job.run_once()
        row = health_row(owner_conn, ids[0])
        probabilities.append((row["status"], row["health_score"], row["failure_probability"]))
        owner_conn.execute("DELETE FROM signal_samples WHERE signal_id = %s AND time > now() - interval '5 minutes'",
                           [m.signals["vibration"]])
        owner_conn.execute("DELETE FROM signal_1m_rollup WHERE signal_id = %s AND bucket > now() - interval '6 minutes'",
                           [m.signals["vibration"]])
    assert probabilities[0][0] == "normal"
    assert probabilities[1][0] == "warning" and probabilities[2][0] == "warning"
    assert probabilities[0][1] > probabilities[1][1] > probabilities[2][1]   # drift costs health
    # the failure probability is the data's chance of passing 11 mm/s within 24 h, not a figure per status:
    # from a flat history, even 4.5 mm/s is far from it
    assert all(p is not None and p < 0.05 for _, _, p in probabilities), probabilities
    drift = health_row(owner_conn, ids[0])["contributing"][0]
    assert drift["reason"] == "drift" and drift["baseline_from"] == "1m" and abs(drift["baseline"] - 2.2) < 0.05


async def test_latest_ai_score_is_used(db: Database, db_dsn: str, owner_conn) -> None:
    tenant_id, ids, mapped = await _plant(db, owner_conn, assets=1)
    owner_conn.execute("INSERT INTO asset_metrics_snapshot (tenant_id, asset_id, time, health_score, "
                       "failure_probability, status, source) VALUES (%s, %s, now() - interval '10 minutes', 48, 0.55, "
                       "'warning', 'ai')", [tenant_id, ids[0]])
    await write_values(db_dsn, mapped[0], {"vibration": 2.2, "temperature": 70.0})
    await ScoringJob(db, notify=False).run_once()
    row = health_row(owner_conn, ids[0])
    assert (row["status"], row["health_score"], row["failure_probability"], row["source"]) == ("warning", 48, 0.55, "ai")
    sources = [r[0] for r in owner_conn.execute(
        "SELECT source FROM asset_metrics_snapshot WHERE asset_id = %s ORDER BY time", [ids[0]])]
    assert sources == ["ai", "rules"]                # the job never writes rows that look like AI output


async def test_a_live_source_vouches_for_unchanged_values_until_its_heartbeat_lapses(db: Database, db_dsn: str,
                                                                                      owner_conn) -> None:
    """OPC-UA and PI report by exception: a value that does not change sends nothing."""
    tenant_id, ids, mapped = await _plant(db, owner_conn, assets=1, interval_s=1)
    owner_conn.execute("UPDATE assets SET expected_interval_s = 1 WHERE id = %s", [ids[0]])
    heartbeat(owner_conn, mapped[0])
    await write_values(db_dsn, mapped[0], {"vibration": 2.2, "temperature": 70.0})
    job = ScoringJob(db, notify=False)
    await job.run_once()
    first = health_row(owner_conn, ids[0])
    await asyncio.sleep(3.3)                    # the samples are older than three intervals, the worker is alive
    heartbeat(owner_conn, mapped[0])
    assert await job.run_once() == 1            # refreshed: the score was about to age out for readers
    row = health_row(owner_conn, ids[0])
    assert row["status"] == "normal" and row["time"] > first["time"] + timedelta(seconds=2)
    heartbeat(owner_conn, mapped[0], ago_s=31)   # the worker died a while ago: its heartbeat lapsed
    assert await job.run_once() == 1
    assert health_row(owner_conn, ids[0])["status"] == "nodata"


async def test_a_source_marked_stale_turns_nodata_at_once(db: Database, db_dsn: str, owner_conn) -> None:
    from ingest.writer import Writer

    tenant_id, ids, mapped = await _plant(db, owner_conn, assets=1)
    heartbeat(owner_conn, mapped[0])
    await write_values(db_dsn, mapped[0], {"vibration": 2.2, "temperature": 70.0})
    job = ScoringJob(db, notify=False)
    await job.run_once()
    writer = Writer(db_dsn)
    try:
        await writer.mark_stale(tenant_id, list(mapped[0].signals.values()))   # what a worker does on disconnect
    finally:
        await writer.stop()
    await job.run_once()
    row = health_row(owner_conn, ids[0])
    assert row["status"] == "nodata"
    assert [r[0] for r in owner_conn.execute("SELECT status FROM asset_metrics_snapshot WHERE asset_id = %s "
                                             "ORDER BY time", [ids[0]])] == ["normal", "nodata"]
