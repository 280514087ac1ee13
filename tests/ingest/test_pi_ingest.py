"""PI Web API → ingest → database against the PI simulator over HTTP.

The reference in every comparison is the simulator's own archive (``recorded_values``,
computed by the server, not read through our client): what is stored must be exactly what PI
recorded — every event, once — whatever the poll interval, across an outage, beside points
that fail per item and attributes that have no archive at all.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import psycopg

from ingest.samples import QUALITY_CODES
from ingest.workers.pi import PiWorker
from optria.connectors import pi
from optria.demo.pi_server import FLAKY_ERROR, PiWebApiSimulator
from optria.demo.plant import TAGS
from tests.fix_ingest import arrange_integration, count_samples, ingest_settings, running_supervisor, wait_for
from tests.fix_pi import PI_PASSWORD, PI_USER

TAG_PATHS = [t.path for t in TAGS if t.role != "running"][:8]
RUNNING = next(t.path for t in TAGS if t.role == "running")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _expected(sim: PiWebApiSimulator, name: str, start: datetime, end: datetime) -> list[tuple]:
    """(time, value, quality) of every event PI recorded for ``name`` in [start, end], as stored."""
    out = []   # end + 1 µs: stored times are PI's 100 ns ticks truncated to the µs
    for obj in sim.recorded_values(name, start, end + timedelta(microseconds=1)):
        sample = pi.sample_from_value(sim.web_id(name), obj, fallback_time=end)
        if sample.error:
            continue    # an error object among the values: counted, not stored
        out.append((sample.time, sample.value, QUALITY_CODES[sample.quality]))
    return out


def _stored(conn: psycopg.Connection, signal_id: int) -> list[tuple]:
    return [tuple(r) for r in conn.execute(
        "SELECT time, value, quality FROM signal_samples WHERE signal_id = %s ORDER BY time", [signal_id]).fetchall()]


def _compare_all(db_dsn: str, sim: PiWebApiSimulator, signals: dict[str, int], names: list[str]) -> dict[str, tuple]:
    """Stored rows of each point against PI's archive over the whole span stored; returns
    (first stored, last stored, recorded events, stored rows) per point."""
    report = {}
    with psycopg.connect(db_dsn) as conn:
        for name in names:
            stored = _stored(conn, signals[sim.web_id(name)])
            assert stored, f"{name}: nothing stored"
            expected = _expected(sim, name, stored[0][0], stored[-1][0])
            missing = sorted(set(expected) - set(stored))
            extra = sorted(set(stored) - set(expected))
            assert not missing and not extra and len(stored) == len(expected), (
                f"{name}: recorded {len(expected)}, stored {len(stored)}, missing {len(missing)} "
                f"(first {missing[:3]}), not recorded {len(extra)} (first {extra[:3]})")
            report[name] = (stored[0][0], stored[-1][0], len(expected), len(stored))
    return report


async def test_pi_points_faster_than_the_poll_are_stored_event_for_event(pi_sim_factory, db_dsn, owner_conn,
                                                                         tmp_path) -> None:
    """Points scanning 3-15 times faster than a 3 s poll (a scaled 15 s poll with 1-5 s points),
    one slower, a digital and a questionable one: stored == recorded, live and backfilled alike."""
    periods = {TAG_PATHS[0]: 0.2, TAG_PATHS[1]: 0.5, TAG_PATHS[2]: 1.0, TAG_PATHS[3]: 5.0,
               RUNNING: 0.3, "OPTRIA.Demo.LabDensity": 0.25}
    sim = await pi_sim_factory(users=None, scan_period_s=1.0, point_periods_s=periods)
    names = list(periods)
    arranged = arrange_integration(owner_conn, "pi", {"base_url": sim.base_url, "poll_interval_s": 3},
                                   [sim.web_id(n) for n in names])
    started = _now()
    async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
        run = await wait_for(lambda: sup.running.get(arranged.integration_id), what="the worker")
        await wait_for(lambda: run.health.state == "streaming" and run.health.samples_total > 0, timeout=20,
                       what="the first pass")
        backfilled = run.health.backfill_total
        live_from = run.health.samples_total - run.health.backfill_total
        await asyncio.sleep(13)   # four or five polls, each covering 3 s of 0.2-1 s events
        live = run.health.samples_total - run.health.backfill_total - live_from
        assert run.health.state == "streaming" and run.health.last_error is None
        assert run.health.rejected_total == 0, run.health.rejected_reasons
        p50, _ = run.health.lag_percentiles()
    stopped = _now()
    report = _compare_all(db_dsn, sim, arranged.signals, names)
    assert backfilled > 0, "the first pass reads back the last 10 minutes as backfill"
    fast = report[TAG_PATHS[0]]
    # the span covers the initial read-back and the live polls up to the end of the test
    assert fast[0] <= started - PiWorker.initial_backfill + timedelta(seconds=1)
    assert fast[1] >= stopped - timedelta(seconds=8)
    assert fast[1] - fast[0] >= PiWorker.initial_backfill + timedelta(seconds=10)
    print({name: f"recorded {r[2]}, stored {r[3]}" for name, r in report.items()}, f"live rows {live}")
    # live polls stored every event of their 13 s: at 0.2-1 s scans far more than one per poll
    assert live >= 13 * (1 / 0.2 + 1 / 0.5 + 1 + 1 / 0.3 + 1 / 0.25) * 0.7, live
    assert p50 is not None and p50 >= 500, "a polled event's lag includes the wait for the poll"


async def test_pi_outage_is_backfilled_without_holes(pi_sim_factory, db_dsn, owner_conn, tmp_path) -> None:
    sim = await pi_sim_factory(scan_period_s=0.5)
    config = {"base_url": sim.base_url, "auth_type": "basic", "username": PI_USER, "poll_interval_s": 1}
    arranged = arrange_integration(owner_conn, "pi", config, [sim.web_id(p) for p in TAG_PATHS],
                                   secrets={"password": PI_PASSWORD})
    ids = list(arranged.signals.values())
    async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
        await wait_for(lambda: count_samples(db_dsn, ids) > 50, what="initial backfill")
        run = sup.running[arranged.integration_id]
        await wait_for(lambda: run.health.state == "streaming", what="streaming")
        backfilled = run.health.backfill_total
        outage_start = _now()
        sim.start_outage(4, status=500)
        await wait_for(lambda: run.health.state == "reconnecting", timeout=20, what="the worker to see the 500s")
        assert "500" in (run.health.last_error or ""), run.health.row(0, 0)
        await asyncio.sleep(4)
        await wait_for(lambda: run.health.state == "streaming", timeout=40, what="recovery")
        await asyncio.sleep(1.5)
        figures = run.health.row(0, 0)
        assert run.health.last_error is None, ("the error is resolved once PI answers again", figures)
        assert run.health.reconnects >= 1, figures
        assert run.health.backfill_total > backfilled, ("the outage's events are read back as backfill", figures)
    report = _compare_all(db_dsn, sim, arranged.signals, TAG_PATHS)
    for name, (first, last, recorded, _) in report.items():
        assert first < outage_start - timedelta(seconds=1) and last > outage_start + timedelta(seconds=4), (
            name, first, last, outage_start)   # the stored span covers the whole outage
        assert recorded >= 20


async def test_pi_per_item_errors_no_archive_and_system_states_do_not_stop_the_worker(
        pi_sim_factory, db_dsn, owner_conn, tmp_path) -> None:
    sim = await pi_sim_factory(users=None, scan_period_s=0.5, point_periods_s={"OPTRIA.Demo.ManualFlow": 86400})
    good = sim.web_id(TAG_PATHS[0])
    quiet = sim.web_id("OPTRIA.Demo.ManualFlow")     # one event a day: most likely none in the first read
    created, no_data = sim.web_id("OPTRIA.Demo.PtCreated"), sim.web_id("OPTRIA.Demo.NoData")
    secured, bogus = sim.web_id("OPTRIA.Demo.Secured"), "F1DPnot-a-real-webid"
    refused, empty = sim.web_id("OPTRIA.Demo|Efficiency"), sim.web_id("OPTRIA.Demo|Setpoint")
    flaky = sim.web_id("OPTRIA.Demo.Flaky")
    arranged = arrange_integration(owner_conn, "pi", {"base_url": sim.base_url, "poll_interval_s": 0.5},
                                   [good, created, no_data, secured, bogus, refused, empty, flaky, quiet])
    s = arranged.signals
    async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
        await wait_for(lambda: count_samples(db_dsn, [s[good]]) > 5, what="good values")
        run = sup.running[arranged.integration_id]
        await wait_for(lambda: count_samples(db_dsn, [s[refused]]) >= 3 and count_samples(db_dsn, [s[empty]]) >= 3,
                       timeout=20, what="values of the attributes without archive")
        await asyncio.sleep(1.0)
        assert run.health.state == "streaming" and run.health.last_error is None
        assert "source_error" in run.health.rejected_reasons
        assert set(run.worker.no_archive) == {refused, empty}, run.worker.no_archive
    with psycopg.connect(db_dsn) as conn:
        status = {r[0]: r[1:] for r in conn.execute(
            "SELECT signal_id, last_reason, last_detail, rejected_total, integration_id FROM ingest_signal_status")}
        pt_created = conn.execute("SELECT count(*), max(quality), max(value) FROM signal_samples WHERE signal_id = %s",
                                  [s[created]]).fetchone()
        attribute_rows = {sid: _stored(conn, sid) for sid in (s[refused], s[empty])}
        nothing = count_samples(db_dsn, [s[no_data], s[secured], s[bogus]])
    # per-item errors are kept per mapping, with PI's own words
    assert status[s[secured]][0] == "source_error" and "No Read Access" in status[s[secured]][1]
    assert status[s[bogus]][0] == "source_error" and "Could not find a PI Point" in status[s[bogus]][1]
    assert status[s[secured]][2] >= 3 and status[s[secured]][3] == arranged.integration_id
    assert status[s[flaky]][0] == "source_error" and FLAKY_ERROR in status[s[flaky]][1]
    assert s[good] not in status and s[refused] not in status and s[empty] not in status
    # the events around error objects are stored as recorded, as are the good point's
    _compare_all(db_dsn, sim, s, [TAG_PATHS[0], "OPTRIA.Demo.Flaky"])
    # a quiet point's current value is its last recorded event: stored, once, though older than the first read
    with psycopg.connect(db_dsn) as conn:
        assert _stored(conn, s[quiet]) == _expected(sim, "OPTRIA.Demo.ManualFlow", _now() - timedelta(days=1), _now())
    # a system state is an archived event: stored once, bad quality, no value
    assert pt_created == (1, 3, None)
    assert nothing == 0
    # attributes without archive: their current values, as the simulator computes them
    for name in ("OPTRIA.Demo|Efficiency", "OPTRIA.Demo|Setpoint"):
        point = sim.point(name)
        rows = attribute_rows[s[sim.web_id(name)]]
        for t, value, quality in rows:
            ticks = (t - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1) * 10
            offset = (ticks - point.phase_ticks) % point.period_ticks
            assert offset == 0 or offset > point.period_ticks - 10, "on the scan grid (stored to the µs)"
            assert quality == 0 and value is not None
