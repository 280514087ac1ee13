"""PI Web API → ingest → database against the PI simulator: polling, and backfill after 500s."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import psycopg

from optria.connectors import pi
from optria.demo.plant import TAGS
from tests.fix_ingest import arrange_integration, count_samples, ingest_settings, running_supervisor, wait_for
from tests.fix_pi import PI_PASSWORD, PI_USER

TAG_PATHS = [t.path for t in TAGS if t.role != "running"][:8]


async def test_pi_outage_is_backfilled_without_holes(pi_sim_factory, db_dsn, owner_conn, tmp_path) -> None:
    sim = await pi_sim_factory(scan_period_s=0.5)
    config = {"base_url": sim.base_url, "auth_type": "basic", "username": PI_USER, "poll_interval_s": 1}
    arranged = arrange_integration(owner_conn, "pi", config, [sim.web_id(p) for p in TAG_PATHS],
                                   secrets={"password": PI_PASSWORD})
    ids = list(arranged.signals.values())
    async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
        await wait_for(lambda: count_samples(db_dsn, ids) > 50, what="initial backfill")
        start = datetime.now(timezone.utc)
        sim.start_outage(4, status=500)
        outage_end = start + timedelta(seconds=4)
        await wait_for(lambda: sup.running[arranged.integration_id].health.state == "reconnecting", timeout=20,
                       what="the worker to see the 500s")
        assert "500" in (sup.running[arranged.integration_id].health.last_error or "")
        await asyncio.sleep(4)
        await wait_for(lambda: sup.running[arranged.integration_id].health.state == "streaming", timeout=40,
                       what="recovery")
        await asyncio.sleep(1.5)
    # The outage window: polling current values between polls may skip events when the scan is
    # faster than the poll (that is what `value` polling is), so the claim tested is that the
    # backfill after the outage leaves no hole in the window the outage covered.
    end = outage_end
    # the server's own recorded history over the window is the reference
    recorded = await pi.read_recorded({**config, "password": PI_PASSWORD}, [sim.web_id(p) for p in TAG_PATHS], start, end)
    with psycopg.connect(db_dsn) as conn:
        for path in TAG_PATHS:
            web_id = sim.web_id(path)
            expected = sorted(s.time for s in recorded if s.signal_id == web_id and start <= s.time <= end)
            stored = [r[0] for r in conn.execute(
                "SELECT time FROM signal_samples WHERE signal_id = %s AND time BETWEEN %s AND %s ORDER BY time",
                [arranged.signals[web_id], start, end]).fetchall()]
            assert stored == expected, f"{path}: recorded {len(expected)}, stored {len(stored)}"
            assert len(expected) >= 6


async def test_pi_per_item_errors_and_system_states_do_not_stop_the_worker(pi_sim_factory, db_dsn, owner_conn, tmp_path) -> None:
    sim = await pi_sim_factory(users=None, scan_period_s=0.5)
    good = sim.web_id(TAG_PATHS[0])
    odd = [sim.web_id("OPTRIA.Demo.PtCreated"), sim.web_id("OPTRIA.Demo.Secured"), "F1DPnot-a-real-webid"]
    arranged = arrange_integration(owner_conn, "pi", {"base_url": sim.base_url, "poll_interval_s": 0.5}, [good, *odd])
    async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
        await wait_for(lambda: count_samples(db_dsn, [arranged.signals[good]]) > 5, what="good values")
        await asyncio.sleep(1.5)
        run = sup.running[arranged.integration_id]
        assert run.health.state == "streaming"
        assert run.health.rejected_total > 0 and "source_error" in run.health.rejected_reasons
    with psycopg.connect(db_dsn) as conn:
        pt_created = conn.execute("SELECT count(*), max(quality) FROM signal_samples WHERE signal_id = %s",
                                  [arranged.signals[odd[0]]]).fetchone()
    assert pt_created[0] == 0 or pt_created[1] == 3   # a system state is never stored as a good number
