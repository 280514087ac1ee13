"""The live twin's feed paces its reads by their cost: quick reads at most every MIN_GAP_S, slow
ones so that reading takes at most one part in READ_SHARE of the feed's time."""

from __future__ import annotations

import pytest

from optria.twin.live import MIN_GAP_S, READ_SHARE, next_read_in


@pytest.mark.parametrize("read_s", [0.0, 0.001, 0.01, 0.025, 0.1, 0.5, 2.0])
def test_reads_start_min_gap_apart_and_take_at_most_their_share(read_s: float) -> None:
    wait = next_read_in(read_s)
    assert wait >= 0
    assert read_s + wait >= MIN_GAP_S - 1e-9
    assert read_s / (read_s + wait) <= 1 / READ_SHARE + 1e-9 if read_s > 0 else wait == MIN_GAP_S
    assert read_s + wait == pytest.approx(max(MIN_GAP_S, READ_SHARE * read_s))
