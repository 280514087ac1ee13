"""The batch writer against a real database: dedupe, exact rollups, forward-only latest, spool."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from ingest.samples import BAD, GOOD, Rejected, Sample, make_sample
from ingest.spool import Spool
from ingest.writer import LIVE, Writer, _Pending
from tests.fix_ingest import arrange_integration

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=3)


@pytest.fixture
def arranged(owner_conn):
    return arrange_integration(owner_conn, "opcua", {}, [f"ns=2;s=W{i}" for i in range(5)])


def _rows(arranged, n_per_signal: int, start: datetime = T0, step_s: float = 7.0):
    out = []
    for ext, sid in arranged.signals.items():
        for k in range(n_per_signal):
            out.append(Sample(arranged.tenant_id, sid, start + timedelta(seconds=k * step_s), float(k % 13) + sid, GOOD))
    return out


def _platform(dsn: str) -> psycopg.Connection:
    """An owner connection in the platform scope: the tenant views of every tier show all rows."""
    conn = psycopg.connect(dsn)
    conn.execute("SELECT set_config('optria.platform', 'test', false)")
    return conn


def _pending(rows):
    return _Pending(rows, LIVE)


def _stats(dsn: str):
    with _platform(dsn) as conn:
        raw = conn.execute("SELECT signal_id, count(*), sum(value), min(value), max(value) FROM signal_samples "
                           "GROUP BY 1 ORDER BY 1").fetchall()
        m = conn.execute("SELECT signal_id, sum(n), sum(avg * n), min(min), max(max) FROM signal_1m GROUP BY 1 ORDER BY 1").fetchall()
        h = conn.execute("SELECT signal_id, sum(n), sum(avg * n), min(min), max(max) FROM signal_1h GROUP BY 1 ORDER BY 1").fetchall()
    return raw, m, h


async def test_rollups_are_exact_and_replays_never_duplicate(db_dsn, arranged) -> None:
    rows = _rows(arranged, 1200)  # 1200 × 7 s ≈ 2.3 h → several hours and many minutes
    w = Writer(db_dsn)
    assert await w.write_batch(rows[:3000]) == 3000
    assert await w.write_batch(rows[2000:]) == len(rows) - 3000     # overlapping replay: only new rows
    assert await w.write_batch(rows) == 0                            # full replay: nothing new
    await w.stop()
    raw, m, h = _stats(db_dsn)
    assert sum(r[1] for r in raw) == len(rows)
    assert len(raw) == len(m) == len(h) == len(arranged.signals)
    for rr, mm, hh in zip(raw, m, h):
        assert rr[1] == mm[1] == hh[1]
        assert math.isclose(rr[2], mm[2]) and math.isclose(rr[2], hh[2])
        assert rr[3] == mm[3] == hh[3] and rr[4] == mm[4] == hh[4]
    assert w.stats.duplicates == 1000 + len(rows)


async def test_last_value_of_a_bucket_is_the_newest_even_when_written_out_of_order(db_dsn, arranged) -> None:
    sid = next(iter(arranged.signals.values()))
    t = T0.replace(second=0)
    w = Writer(db_dsn)
    await w.write_batch([Sample(arranged.tenant_id, sid, t + timedelta(seconds=50), 5.0, GOOD)])
    await w.write_batch([Sample(arranged.tenant_id, sid, t + timedelta(seconds=10), 1.0, GOOD)])
    await w.stop()
    with _platform(db_dsn) as conn:
        last, n = conn.execute("SELECT last, n FROM signal_1m WHERE signal_id = %s", [sid]).fetchone()
        latest = conn.execute("SELECT value, time FROM signal_latest WHERE signal_id = %s", [sid]).fetchone()
    assert (last, n) == (5.0, 2)
    assert latest == (5.0, t + timedelta(seconds=50))   # an older sample never moves latest back


async def test_unknown_and_foreign_signals_are_rejected_not_written(db_dsn, owner_conn, arranged) -> None:
    other = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=Other"])
    own = next(iter(arranged.signals.values()))
    foreign = other.signals["ns=2;s=Other"]
    w = Writer(db_dsn)
    stored = await w.write_batch([
        Sample(arranged.tenant_id, own, T0, 1.0, GOOD),
        Sample(arranged.tenant_id, foreign, T0, 2.0, GOOD),      # signal of another tenant
        Sample(arranged.tenant_id, 999_999_999, T0, 3.0, GOOD),  # no such signal
    ])
    await w.stop()
    assert stored == 1 and w.stats.rejected_unknown == 2
    assert owner_conn.execute("SELECT count(*) FROM signal_samples").fetchone()[0] == 1


async def test_bad_quality_rows_keep_no_value_and_stale_marking(db_dsn, arranged) -> None:
    sid = next(iter(arranged.signals.values()))
    w = Writer(db_dsn)
    await w.write_batch([Sample(arranged.tenant_id, sid, T0, 4.0, GOOD),
                         Sample(arranged.tenant_id, sid, T0 + timedelta(seconds=1), None, BAD)])
    await w.mark_stale(arranged.tenant_id, [sid])
    await w.stop()
    with _platform(db_dsn) as conn:
        assert conn.execute("SELECT value, quality FROM signal_latest WHERE signal_id = %s", [sid]).fetchone() == (None, 4)
        assert conn.execute("SELECT n FROM signal_1m WHERE signal_id = %s", [sid]).fetchone()[0] == 1


async def test_spool_is_replayed_in_order_and_removed(db_dsn, arranged, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "w.spool")
    rows = _rows(arranged, 50)
    spool.append(rows[:100])
    spool.append(rows[100:])
    with open(spool.path, "ab") as f:
        f.write(b"\x00\x00\x01\x00partial")  # a torn frame from a crash mid-write is ignored
    w = Writer(db_dsn, spool=spool)
    w.start()
    await w.write_and_wait([])
    await w.stop()
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM signal_samples").fetchone()[0] == len(rows)
    assert spool.pending_bytes() == 0


async def test_put_or_spool_spills_when_the_queue_is_full(db_dsn, arranged, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "full.spool")
    w = Writer(db_dsn, spool=spool, queue_batches=1)
    rows = _rows(arranged, 10)
    assert w.put_or_spool(rows[:10]) is True
    assert w.put_or_spool(rows[10:]) is False          # queue full: spooled, not dropped
    assert w.stats.spooled == len(rows) - 10
    w.start()
    await w.write_and_wait([])
    await w.stop()
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM signal_samples").fetchone()[0] == len(rows)


@pytest.mark.parametrize("raw,quality,reason", [
    (float("nan"), GOOD, "nan_or_infinite"), (float("inf"), GOOD, "nan_or_infinite"), ("abc", GOOD, "not_a_number"),
    (None, GOOD, "missing_value"), ({"x": 1}, GOOD, "not_a_number"),
])
def test_malformed_values_are_rejected_with_a_reason(raw, quality, reason) -> None:
    with pytest.raises(Rejected) as err:
        make_sample(None, 1, datetime.now(timezone.utc), raw, quality)
    assert err.value.reason == reason


@pytest.mark.parametrize("t", [datetime(1970, 1, 1, tzinfo=timezone.utc), datetime.now(timezone.utc) + timedelta(days=2)])
def test_out_of_range_timestamps_are_rejected(t) -> None:
    with pytest.raises(Rejected, match="timestamp_out_of_range"):
        make_sample(None, 1, t, 1.0)


def test_numeric_strings_and_booleans_are_accepted() -> None:
    now = datetime.now(timezone.utc)
    assert make_sample(None, 1, now, " 4.5 ").value == 4.5
    assert make_sample(None, 1, now, True).value == 1.0
    assert make_sample(None, 1, now, None, BAD).value is None


async def test_rows_a_dead_writer_never_folded_are_folded_once_by_the_repair_job(db_dsn, db, arranged,
                                                                                storage_tier) -> None:
    from datetime import timedelta as td

    from optria.timeseries.repair import RollupRepairJob

    rows = _rows(arranged, 300)
    w = Writer(db_dsn)
    assert await w.write_parts([_pending(rows[:900])]) == 900     # committed, not folded: the process "dies"
    await w._close()
    w2 = Writer(db_dsn)
    assert await w2.write_batch(rows[900:]) == len(rows) - 900    # a live writer folds its own rows
    await w2.stop()
    job = RollupRepairJob(db, settle=td(0))
    folded = await job.run_once()
    assert await RollupRepairJob(db, settle=td(0)).run_once() == 0   # each entry once
    raw, m, h = _stats(db_dsn)
    assert sum(r[1] for r in raw) == len(rows) and len(raw) == len(m) == len(h)
    for rr, mm, hh in zip(raw, m, h):
        assert rr[1] == mm[1] == hh[1] and math.isclose(rr[2], mm[2]) and math.isclose(rr[2], hh[2])
    assert folded == 900
    with _platform(db_dsn) as conn:
        newest = conn.execute("SELECT signal_id, max(time) FROM signal_samples GROUP BY 1").fetchall()
        latest = dict(conn.execute("SELECT signal_id, time FROM signal_latest").fetchall())
    assert all(latest[sid] == t for sid, t in newest)


async def test_a_fold_racing_the_repair_job_counts_every_row_once(db_dsn, db, arranged, storage_tier) -> None:
    from datetime import timedelta as td

    from optria.timeseries.repair import RollupRepairJob

    rows = _rows(arranged, 200)
    w = Writer(db_dsn)
    await w.write_parts([_pending(rows[:500])])
    await w.write_parts([_pending(rows[500:])])                   # two entries waiting in the writer's fold
    await RollupRepairJob(db, settle=td(0), batch=1).run_once()  # the repair job claims them first
    await w.fold_now()                                            # finds its entries taken: leaves the rollups alone
    await w.stop()
    await RollupRepairJob(db, settle=td(0)).run_once()
    raw, m, h = _stats(db_dsn)
    assert sum(r[1] for r in raw) == len(rows) and len(raw) == len(m) == len(h)
    for rr, mm, hh in zip(raw, m, h):
        assert rr[1] == mm[1] == hh[1] and math.isclose(rr[2], mm[2]), storage_tier
