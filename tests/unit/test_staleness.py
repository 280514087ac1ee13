"""The one staleness rule (optria.timeseries.staleness), case by case, and its SQL against its Python.

Every page and job that asks "is this value current?" uses this rule (the twin's cards and
scoring job, the analytics engine, the ingestion page, the Data Sources cards); the cases
below are its edges, and ``test_sql_agrees_with_python`` evaluates the SQL fragments the
stores compose on the same cases in PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from optria.integrations.live import ingest_status
from optria.platform.ingestion import classify
from optria.timeseries import staleness
from optria.timeseries.staleness import SOURCE_HEARTBEAT_S, STALE_AFTER_INTERVALS, Reading, judge

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)

# (case, sample age s, interval s, quality, has value, worker: None | (connected, heartbeat age s), current, reason)
CASES = [
    ("change-only signal of a live source is current however old", 86_400 * 3, 10, 0, True, (True, 2), True,
     "live_source"),
    ("a live source still needs a value", None, 10, 0, True, (True, 2), False, "no_data"),
    ("a sample without a value is no data", 5, 10, 0, False, (True, 2), False, "no_data"),
    ("slow poll not stale before its interval allows", 1_700, 600, 0, True, None, True, "recent"),
    ("slow poll just inside three intervals", 600 * STALE_AFTER_INTERVALS - 1, 600, 0, True, None, True, "recent"),
    ("slow poll past three intervals", 600 * STALE_AFTER_INTERVALS + 1, 600, 0, True, None, False, "too_old"),
    ("ingest marked the signal stale: at once, even while connected", 1, 10, 4, True, (True, 2), False,
     "marked_stale"),
    ("bad quality is not current", 1, 10, 3, True, (True, 2), False, "bad_quality"),
    ("heartbeat lapsed: at once, even with a fresh sample", 1, 10, 0, True, (True, SOURCE_HEARTBEAT_S + 1), False,
     "source_lost"),
    ("heartbeat lapsed while disconnected", 1, 600, 0, True, (False, 300), False, "source_lost"),
    ("worker alive but reconnecting: the interval rule", 25, 10, 0, True, (False, 3), True, "recent"),
    ("worker alive but reconnecting, too old", 35, 10, 0, True, (False, 3), False, "too_old"),
    ("questionable quality is used", 5, 10, 1, True, None, True, "recent"),
    ("no worker has reported: the interval rule", 5, 10, 0, True, None, True, "recent"),
]
IDS = [c[0] for c in CASES]


def reading(age, interval, quality, has_value, worker) -> Reading:
    connected, beat = worker if worker else (None, None)
    return Reading(time=None if age is None else NOW - timedelta(seconds=age), has_value=has_value, quality=quality,
                   expected_interval_s=interval, connected=connected,
                   heartbeat_at=None if beat is None else NOW - timedelta(seconds=beat))


@pytest.mark.parametrize("case,age,interval,quality,has_value,worker,current,reason", CASES, ids=IDS)
def test_rule(case, age, interval, quality, has_value, worker, current, reason) -> None:
    v = reading(age, interval, quality, has_value, worker).verdict(NOW)
    assert (v.current, v.reason) == (current, reason), case
    connected, beat = worker if worker else (None, None)
    assert judge(sample_age_s=age, expected_interval_s=interval, quality=quality, has_value=has_value,
                 connected=connected, heartbeat_age_s=beat) == v


def test_remaining_time_of_a_polled_value() -> None:
    v = judge(sample_age_s=100, expected_interval_s=60)
    assert v.current and v.remaining_s == 60 * STALE_AFTER_INTERVALS - 100
    assert judge(sample_age_s=100, expected_interval_s=60, connected=True, heartbeat_age_s=1).remaining_s is None


def test_when_a_value_stopped_counting() -> None:
    marked = Reading(NOW - timedelta(hours=1), True, 4, 10, True, NOW, marked_at=NOW - timedelta(seconds=7))
    assert marked.stale_since(NOW) == NOW - timedelta(seconds=7)
    lost = Reading(NOW - timedelta(hours=1), True, 0, 10, True, NOW - timedelta(seconds=100))
    assert lost.stale_since(NOW) == NOW - timedelta(seconds=100 - SOURCE_HEARTBEAT_S)
    old = Reading(NOW - timedelta(seconds=500), True, 0, 60, None, None)
    assert old.stale_since(NOW) == NOW - timedelta(seconds=500 - 60 * STALE_AFTER_INTERVALS)
    assert Reading(NOW - timedelta(seconds=5), True, 0, 60).stale_since(NOW) is None


def _integration_row(age, worker, interval=10) -> dict:
    connected, beat = worker if worker else (False, None)
    return {"enabled": True, "is_demo": False, "demo_stream": False, "mapped": 3, "enabled_mappings": 3,
            "expected_interval_s": interval, "sample_age_s": age, "heartbeat_age_s": beat, "connected": connected,
            "ingest_connected": connected, "ingest_state": "streaming", "state": "streaming", "last_error": None}


@pytest.mark.parametrize("age,worker,stale", [
    (3600, (True, 2), False),                   # a quiet source reporting by exception
    (5, (True, SOURCE_HEARTBEAT_S + 5), True),  # the worker is gone
    (25, (False, 2), False),                    # reconnecting, within three intervals
    (35, (False, 2), True),                     # reconnecting, past three intervals
    (None, None, True),                         # nothing ever arrived
])
def test_ingestion_page_and_data_source_cards_use_the_rule(age, worker, stale) -> None:
    row = _integration_row(age, worker)
    assert ("stale" in classify(row)["flags"]) is stale
    assert ("stale" in ingest_status(row)["flags"]) is stale


def test_sql_agrees_with_python(owner_conn) -> None:
    """Each case as a row (latest value + the worker's ingest_health columns), judged by the SQL fragments
    in one transaction, so SQL's now() is the moment the ages are counted from."""
    current = staleness.current_sql(time="l.time", value="l.value", quality="l.quality", interval="l.interval",
                                    health="ih")
    stale_at = staleness.stale_at_sql(time="l.time", interval="l.interval", health="ih")
    query = f"""
        SELECT l.i, {current} AS current, {staleness.live_sql("ih")} AS live, {stale_at} AS stale_at
        FROM unnest(%s::int[], %s::timestamptz[], %s::float8[], %s::int2[], %s::int[])
             AS l(i, time, value, quality, interval)
        LEFT JOIN unnest(%s::int[], %s::int8[], %s::bool[], %s::timestamptz[])
             AS ih(i, integration_id, connected, heartbeat_at) ON ih.i = l.i AND ih.integration_id IS NOT NULL
        ORDER BY l.i"""
    with owner_conn.transaction():
        now = owner_conn.execute("SELECT now()").fetchone()[0]
        rows = []
        for i, (_, age, interval, quality, has_value, worker, _, _) in enumerate(CASES):
            connected, beat = worker if worker else (None, None)
            rows.append((i, None if age is None else now - timedelta(seconds=age), 1.0 if has_value else None,
                         quality, interval, 1 if worker else None, connected,
                         None if beat is None else now - timedelta(seconds=beat)))
        cols = [list(c) for c in zip(*rows)]
        got = owner_conn.execute(query, [*cols[:5], cols[0], *cols[5:]]).fetchall()
    assert len(got) == len(CASES)
    for (i, sql_current, sql_live, sql_stale_at), case in zip(got, CASES):
        name, age, interval, quality, has_value, worker, current, _ = case
        r = reading(age, interval, quality, has_value, worker)
        assert sql_current == current == r.is_current(NOW), name
        assert sql_live == (worker is not None and r.source_live(NOW)), name
        if current and sql_live:
            assert sql_stale_at is None, name                       # a live source vouches: no deadline
        elif current:
            assert sql_stale_at == rows[i][1] + timedelta(seconds=interval * STALE_AFTER_INTERVALS), name
