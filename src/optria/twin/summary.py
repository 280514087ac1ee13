"""What an asset's signals amount to, judged once by the scoring job for the card grid.

A twin card shows how many of its asset's signals have data and are current, the newest
sample, and when the first / last current value goes stale. Computing that on every page
reads every mapped signal of every card; the scoring job reads the same rows anyway, so it
judges them here with the one staleness rule and writes the result to
``asset_signal_summary`` (migration 0018 says when a row stops counting). The figures are
the same ones the grid's SQL computes (``optria.twin.store.with_cards``), which
``tests/web/test_twin_summary.py`` checks asset by asset.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from optria.timeseries import staleness
from optria.twin.store import ROLE_ORDER

# A summary older than this is not used: with the job running every couple of seconds a fresh
# one is always there, and a stopped job leaves no figures that look current for long.
MAX_AGE_S = 10.0
# How many of a card's mappings the summary lists in the card's order (a card shows 4).
SHOWN = 16
_RANK = {role: n for n, role in enumerate(ROLE_ORDER)}


def summarize(tenant_id: UUID, asset_id: int, rows: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The summary row of one asset from its enabled mappings' scoring rows (``store.SCORING_SIGNALS``)."""
    n_with_data = n_fresh = 0
    newest: datetime | None = None
    fresh_until: datetime | None = None
    last_stale: datetime | None = None
    vouched_any = False
    sources: set[int] = set()
    live: set[int] = set()
    valid_until = now + timedelta(seconds=MAX_AGE_S)
    for r in rows:
        reading = staleness.Reading(time=r["time"], has_value=r["value"] is not None, quality=r["quality"],
                                    expected_interval_s=r["expected_interval_s"], connected=r["source_connected"],
                                    heartbeat_at=r["source_seen"])
        sources.add(r["integration_id"])
        vouched = reading.source_live(now)
        if vouched:
            live.add(r["integration_id"])
        lapse = reading.lapse()
        if lapse is not None and lapse > now:
            valid_until = min(valid_until, lapse)   # a reporting worker that goes quiet makes its values stale
        if r["time"] is None:
            continue
        n_with_data += 1
        newest = r["time"] if newest is None else max(newest, r["time"])
        if not reading.is_current(now):
            continue
        n_fresh += 1
        stale_at = reading.age_limit()
        if vouched:
            vouched_any = True
        elif stale_at is not None:
            fresh_until = stale_at if fresh_until is None else min(fresh_until, stale_at)
        if stale_at is not None:
            last_stale = stale_at if last_stale is None else max(last_stale, stale_at)
    return {"tenant_id": tenant_id, "asset_id": asset_id, "computed_at": now, "valid_until": valid_until,
            "n_signals": len(rows), "n_with_data": n_with_data, "n_fresh": n_fresh, "newest": newest,
            "fresh_until": fresh_until, "all_stale_at": None if vouched_any else last_stale,
            "sources": sorted(sources), "live_sources": sorted(live),
            "shown": [r["mapping_id"] for r in sorted(rows, key=lambda r: (_RANK[r["metric_role"]], r["mapping_id"]))
                      ][:SHOWN]}
