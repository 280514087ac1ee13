"""Figures of a signal's recent history that models need: a least-squares line through its
1-minute means (the twin's failure probability, :func:`optria.twin.scoring.crossing_probability`).

Platform scope (the scoring job reads many tenants at once); every row still carries and
filters by its tenant. The line's x axis is hours relative to now, so the sums stay small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

# Per (tenant, signal): how many minute means of the last %(hours)s hours, the regression sums of
# mean against time (hours), the typical spread inside a minute (raw units) and the hours the means span.
TREND_FIGURES = """
SELECT sig.tenant_id, sig.signal_id, st.buckets, st.sxx, st.syy, st.sxy, st.slope_per_h, st.rng, st.span_h
FROM unnest(%(tenants)s::uuid[], %(signals)s::int8[]) AS sig(tenant_id, signal_id)
CROSS JOIN LATERAL (
    SELECT count(*)::int AS buckets,
           regr_sxx(r.avg, extract(epoch FROM r.bucket - now()) / 3600.0) AS sxx,
           regr_syy(r.avg, extract(epoch FROM r.bucket - now()) / 3600.0) AS syy,
           regr_sxy(r.avg, extract(epoch FROM r.bucket - now()) / 3600.0) AS sxy,
           regr_slope(r.avg, extract(epoch FROM r.bucket - now()) / 3600.0) AS slope_per_h,
           avg(r.max - r.min) AS rng,
           extract(epoch FROM max(r.bucket) - min(r.bucket)) / 3600.0 AS span_h
    FROM signal_1m r
    WHERE r.tenant_id = sig.tenant_id AND r.signal_id = sig.signal_id AND r.n > 0 AND r.avg IS NOT NULL
      AND r.bucket >= now() - make_interval(hours => %(hours)s)
) st
"""


async def trend_figures(conn: AsyncConnection, signals: Sequence[tuple[UUID, int]], *, hours: int
                        ) -> list[dict[str, Any]]:
    """Regression figures of the 1-minute means of the last ``hours`` hours, one row per (tenant, signal)."""
    if not signals:
        return []
    cur = await conn.execute(TREND_FIGURES, {"tenants": [s[0] for s in signals], "signals": [s[1] for s in signals],
                                             "hours": hours})
    return await cur.fetchall()
