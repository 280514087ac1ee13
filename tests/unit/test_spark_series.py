"""A twin card's sparkline: settled minutes, then the live value (optria.twin.cards)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from optria.twin.cards import SPARK_SETTLED_S, settled_until, spark_series

T0 = datetime(2026, 12, 7, 6, 0, tzinfo=timezone.utc)


def _buckets(minutes: int, value: float = 2.0) -> list[tuple[float, float, float]]:
    return [((T0 + timedelta(minutes=m)).timestamp(), value + m, value + m) for m in range(minutes)]


def test_buckets_end_at_the_minute_that_held_a_settling_while_ago() -> None:
    assert SPARK_SETTLED_S >= 25 + 10    # the aggregate's policy: 10 s after a minute closes, every 15 s
    assert settled_until(T0 + timedelta(minutes=5, seconds=50)) == T0 + timedelta(minutes=5)
    assert settled_until(T0 + timedelta(minutes=5, seconds=39)) == T0 + timedelta(minutes=4)
    assert settled_until(T0 + timedelta(minutes=5)) == T0 + timedelta(minutes=4)


def test_a_dense_line_runs_on_to_the_live_value() -> None:
    now = (T0 + timedelta(minutes=10, seconds=20)).timestamp()
    live = (now - 0.4, 99.0)
    points, step, hold = spark_series(_buckets(9), before=None, role="vibration", current=True,
                                      since=now - 3600, now=now, interval_s=1, tail=live)
    assert not step and hold is None
    assert len(points) == 10 and points[-1] == live
    assert points[-2] == ((T0 + timedelta(minutes=8, seconds=30)).timestamp(), 10.0)   # the last settled minute
    older = spark_series(_buckets(9), before=None, role="vibration", current=True, since=now - 3600, now=now,
                         interval_s=1, tail=(T0.timestamp(), 5.0))[0]
    assert len(older) == 9                     # a sample no newer than the last bucket adds nothing
    alone = spark_series([], before=None, role="vibration", current=True, since=now - 3600, now=now,
                         interval_s=1, tail=live)[0]
    assert alone == [live]                     # a signal that just started: its one value
    assert spark_series(_buckets(3), before=None, role="vibration", current=False, since=now - 3600, now=now,
                        interval_s=1, tail=(now, None))[0][-1][1] == 4.0   # a sample without a value adds nothing


def test_steps_take_the_live_value_and_hold_it() -> None:
    now = (T0 + timedelta(minutes=10)).timestamp()
    changed = (now - 5, 1.0)
    points, step, hold = spark_series(_buckets(2, value=0.0), before=None, role="running", current=True,
                                      since=now - 3600, now=now, interval_s=60, tail=changed)
    assert step and hold == now and points[-1] == changed
