"""The failure probability from stored data, end to end: six hours of minute samples written through the
ingest writer, the scoring job reading their trend from the aggregates, and the pages saying what the
figure means and over which horizon.

Three pumps with the demo plant's vibration limits (warning 7.1, critical 11 mm/s): one steady far below,
one rising towards its critical limit, one already past it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ingest.samples import Sample
from optria.twin.jobs import ScoringJob
from tests.twin_arrange import health_row, map_signals, write_samples
from tests.web.assets_setup import make_plant

HOURS = 6


def _minutes(mapped, role: str, value_at, *, now: datetime) -> list[Sample]:
    """One sample a minute for the last HOURS hours, valued by ``value_at(hours before now)``."""
    out = []
    for i in range(HOURS * 60, -1, -1):
        t = now - timedelta(minutes=i, seconds=5)
        out.append(Sample(mapped.tenant_id, mapped.signals[role], t, value_at(i / 60), 0))
    return out


async def test_probability_comes_from_the_trend_and_the_pages_say_what_it_means(web, accounts, db, db_dsn,
                                                                                 owner_conn) -> None:
    tenant = await accounts.tenant()
    plant = await make_plant(db, tenant[0], tag="PR", assets=3)
    steady, rising, breached = (plant.assets[f"PR-P-{n}"] for n in (1, 2, 3))
    now = datetime.now(timezone.utc)
    wiggle = lambda h: 0.1 * ((int(h * 60) * 7) % 5 - 2) / 2      # noqa: E731 - ±0.1 mm/s, deterministic
    series = {
        steady: lambda h: 2.2 + wiggle(h),                        # flat, far below 11 mm/s
        rising: lambda h: 9.8 - 0.7 * h + wiggle(h),              # 5.6 → 9.8 mm/s over 6 h: 0.7 mm/s per hour
        breached: lambda h: 12.0 + wiggle(h),                     # past the critical limit all along
    }
    for asset, value_at in series.items():
        m = map_signals(owner_conn, tenant[0], asset, ["vibration"])
        await write_samples(db_dsn, _minutes(m, "vibration", value_at, now=now))
    await ScoringJob(db, notify=False).run_once()
    p = {asset: health_row(owner_conn, asset)["failure_probability"] for asset in series}

    assert p[steady] is not None and p[steady] < 0.01, p          # steady and far: a crossing is all but impossible
    assert p[rising] > 0.5, p                                     # 0.7 mm/s per hour from 9.8: past 11 within hours
    assert p[breached] == 1.0 and p[breached] > p[rising] > p[steady], p   # past the limit: the highest
    contributing = health_row(owner_conn, rising)["contributing"]
    assert any(c.get("p24") and c["p24"] > 0.5 for c in contributing), contributing   # the page can say which signal

    await web.login(await accounts.user("viewer", tenant))
    page = (await web.get(f"/digital-twin/assets/{rising}")).text
    meaning = re.search(r'data-testid="probability-meaning">([^<]+)<', page).group(1)
    assert "24" in meaning and "6" in meaning and "احتمال العطل" in meaning      # what it means, over which horizon
    assert re.search(r'<span data-field="prob">(\d+)</span><span data-field="prob-sign">%</span>', page)
    english = (await web.get(f"/digital-twin/assets/{rising}?lang=en")).text
    assert "within the next 24 hours" in english and "last 6 hours" in english
    dashboard = (await web.get("/?lang=en")).text
    assert 'data-testid="probability-meaning"' in dashboard and "Failure probability (24 h)" in dashboard
