"""Sparkline windows kept between page loads (optria.timeseries.sparklines.SettledWindows), on every tier.

A kept window answers exactly as a fresh read of the same settled minutes; it is read again
when its bounds move (so a row that came late for a settled minute shows from the next minute);
a tenant's kept window never answers another tenant; at most ``max_signals`` are kept.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ingest.samples import GOOD, Sample
from ingest.writer import BACKFILL, Writer
from optria.db import Database
from optria.timeseries.sparklines import SettledWindows, recent
from tests.fix_db import refresh_aggregates
from tests.fix_ingest import arrange_integration


def _minute() -> datetime:
    return datetime.now(timezone.utc).replace(second=0, microsecond=0)


async def _write(dsn: str, samples: list[Sample]) -> None:
    w = Writer(dsn)
    await w.write_batch(samples, BACKFILL)
    await w.stop()


async def test_a_kept_window_answers_as_a_fresh_read_until_its_bounds_move(db_dsn, owner_conn, db: Database) -> None:
    arranged = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=W1", "ns=2;s=W2", "ns=2;s=W3"])
    tenant = arranged.tenant_id
    w1, w2, w3 = arranged.signals.values()
    until = _minute() - timedelta(minutes=2)                    # the settled minutes end here
    start = until - timedelta(minutes=20)
    # w1: a value each minute of the window; w2: one value well before it (it holds); w3: nothing
    await _write(db_dsn, [Sample(tenant, w1, start + timedelta(minutes=m, seconds=5), float(m), GOOD) for m in range(20)]
                 + [Sample(tenant, w2, start - timedelta(minutes=30), 7.5, GOOD)])
    refresh_aggregates(owner_conn)
    since = start + timedelta(seconds=30)      # not on a minute: the window starts at the next one
    kept = SettledWindows()
    async with db.tenant(tenant) as conn:
        fresh = await recent(conn, tenant, [w1, w2, w3], since, until)
        first = await kept.recent(conn, tenant, [w1, w2, w3], since, until)
    assert {k: (v.before, v.buckets) for k, v in first.items()} == {k: (v.before, v.buckets) for k, v in fresh.items()}
    assert [b[2] for b in first[w1].buckets] == [float(m) for m in range(1, 20)]    # 19 minutes at or after `since`
    assert first[w1].before == 0.0 and first[w2].before == 7.5 and first[w2].buckets == []
    assert first[w3].before is None and first[w3].buckets == []

    # a row late for a settled minute: the same bounds keep answering without it ...
    late = start + timedelta(minutes=10, seconds=50)
    await _write(db_dsn, [Sample(tenant, w1, late, 100.0, GOOD)])
    refresh_aggregates(owner_conn)
    async with db.tenant(tenant) as conn:
        again = await kept.recent(conn, tenant, [w1, w2], since + timedelta(seconds=20), until)
        assert again[w1] is first[w1] and again[w2] is first[w2]
        # ... and the next minute's bounds read it
        moved = await kept.recent(conn, tenant, [w1, w2], since + timedelta(minutes=1), until + timedelta(minutes=1))
    expected = [100.0 if m == 10 else float(m) for m in range(2, 20)]     # minute 10's last value is the late one
    assert [b[2] for b in moved[w1].buckets] == expected
    assert moved[w1].before == 1.0 and moved[w2].before == 7.5


async def test_a_kept_window_never_answers_another_tenant(db_dsn, owner_conn, db: Database) -> None:
    a = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=A1"])
    b = arrange_integration(owner_conn, "opcua", {}, ["ns=2;s=B1"])
    sid = a.signals["ns=2;s=A1"]
    until = _minute() - timedelta(minutes=1)
    await _write(db_dsn, [Sample(a.tenant_id, sid, until - timedelta(minutes=5 - m), 3.0, GOOD) for m in range(5)])
    refresh_aggregates(owner_conn)
    kept = SettledWindows()
    since = until - timedelta(hours=1)
    async with db.tenant(a.tenant_id) as conn:
        assert len((await kept.recent(conn, a.tenant_id, [sid], since, until))[sid].buckets) == 5
    async with db.tenant(b.tenant_id) as conn:      # tenant B asks for A's signal id: a read of its own, empty
        other = (await kept.recent(conn, b.tenant_id, [sid], since, until))[sid]
    assert other.buckets == [] and other.before is None


async def test_at_most_max_signals_are_kept(db_dsn, owner_conn, db: Database) -> None:
    arranged = arrange_integration(owner_conn, "opcua", {}, [f"ns=2;s=M{i}" for i in range(5)])
    ids = list(arranged.signals.values())
    until = _minute() - timedelta(minutes=1)
    kept = SettledWindows(max_signals=3)
    async with db.tenant(arranged.tenant_id) as conn:
        got = await kept.recent(conn, arranged.tenant_id, ids, until - timedelta(hours=1), until)
        assert set(got) == set(ids) and len(kept) == 3                  # answered all, kept the last three
        await kept.recent(conn, arranged.tenant_id, ids[:1], until - timedelta(hours=1), until)
        assert len(kept) == 3
